"""DataForge core: facts from types, graph validation and nesting, seeded walks (property tests), the judge
loop (with a scripted test double of the model), the call cache, the catalog and the drawings."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from datagen.calls import LLM, CallCache
from datagen.catalog import load_catalog
from datagen.draw import to_dot, to_mermaid
from datagen.graph import Graph, GraphError
from datagen.judge import Criterion, Judged, Rubric
from datagen.nodes import FnNode, LLMNode, Node
from datagen.pipeline import GraphOptions, build_graph
from datagen.state import VOCABULARY, Answer, Datapoint, Instruction, Passage, Persona, Seed, check_facts, facts
from datagen.walk import Coverage, run_walk, walk_id
from environments.types import Completion, Message, Usage
from rollout.policies import Sampling


# -- graph builders from plain Python nodes --------------------------------------------------------------
def transform(name: str, weight: float = 1.0) -> Node:
    return FnNode(name, lambda dp, rng: dp.model_copy(update={"passage": Passage(text=dp.seed.text, form=name)}),
                  requires={"seed.kind=passage"}, forbids={"passage"}, adds={"passage"}, weight=weight)


def persona(name: str, weight: float = 1.0) -> Node:
    return FnNode(name, lambda dp, rng: dp.model_copy(update={"persona": Persona(name=name, description="d")}),
                  requires={"passage"}, forbids={"persona", "instruction"}, adds={"persona"}, weight=weight)


def instruct(name: str, mode: str, weight: float = 1.0) -> Node:
    def fn(dp: Datapoint, rng: random.Random) -> Datapoint:
        return dp.model_copy(update={"instruction": Instruction(kind=name, mode=mode, text="q")})
    needs = {"passage"} if mode == "contextual" else {"passage", "persona"}
    return FnNode(name, fn, requires=needs, forbids={"instruction"}, adds={"instruction", f"instruction.mode={mode}"},
                  weight=weight)


def answer(name: str, weight: float = 1.0) -> Node:
    return FnNode(name, lambda dp, rng: dp.model_copy(update={"answer": Answer(text="a", style=name)}),
                  requires={"instruction"}, forbids={"answer"}, adds={"answer", "answer.refined=false"}, weight=weight)


def refine(weight: float = 1.0) -> Node:
    def fn(dp: Datapoint, rng: random.Random) -> Datapoint:
        return dp.model_copy(update={"answer": dp.answer.model_copy(update={"refined": True})})
    return FnNode("refine", fn, requires={"answer.refined=false"}, adds={"answer.refined=true"},
                  deletes={"answer.refined=false"}, weight=weight)


def pipeline(t: list[float], personas: list[float], contextual: list[float], standalone: list[float],
             answers: list[float], refine_weight: float | None, finish: float, nested: bool) -> Graph:
    nodes = [transform(f"t{i}", w) for i, w in enumerate(t)] + [persona(f"p{i}", w) for i, w in enumerate(personas)]
    nodes += [instruct(f"c{i}", "contextual", w) for i, w in enumerate(contextual)]
    nodes += [instruct(f"s{i}", "standalone", w) for i, w in enumerate(standalone)]
    tail = [answer(f"a{i}", w) for i, w in enumerate(answers)] + ([refine(refine_weight)] if refine_weight else [])
    if nested:
        nodes.append(Graph("respond", tail, source=["instruction"], source_forbids=["answer"], sink=["answer"],
                           finish_weight=finish))
        return Graph("g", nodes, source=["seed.kind=passage"], sink=["answer"])
    return Graph("g", nodes + tail, source=["seed.kind=passage"], sink=["answer"], finish_weight=finish)


def walks(graph: Graph, n: int, llm: LLM | None = None) -> list:
    async def go():
        return [await run_walk(graph, Seed(seed_id=f"s{i}", text="a passage"), 0, llm) for i in range(n)]
    return asyncio.run(go())


def on_some_path(graph: Graph) -> set[str]:
    """Nodes with a transition from a reachable state into a state from which a sink state is reachable."""
    reaches_sink = {s for s in graph.transitions if graph.at_sink(s)}
    changed = True
    while changed:
        changed = False
        for s, out in graph.transitions.items():
            if s not in reaches_sink and any(t in reaches_sink for _, t in out):
                reaches_sink.add(s)
                changed = True
    return {n.name for s, out in graph.transitions.items() for n, t in out if t in reaches_sink}


weights = st.lists(st.floats(0.25, 4.0), min_size=1, max_size=3)
pipelines = st.builds(
    lambda t, p, c, s, a, r, f, nested: pipeline(t, p, c, s if p else [], a, r, f, nested),
    weights, st.lists(st.floats(0.25, 4.0), max_size=2), weights, st.lists(st.floats(0.25, 4.0), max_size=2), weights,
    st.none() | st.floats(0.25, 4.0), st.floats(0.25, 4.0), st.booleans())


# -- facts -----------------------------------------------------------------------------------------------
def test_facts_come_from_the_types():
    dp = Datapoint(seed=Seed(seed_id="x", text="t"))
    assert facts(dp) == {"seed", "seed.kind=passage"}
    dp = dp.replace(instruction=Instruction(kind="k", mode="standalone", text="q"), answer=Answer(text="a", style="s"))
    assert facts(dp) == {"seed", "seed.kind=passage", "instruction", "instruction.mode=standalone", "answer",
                         "answer.refined=false"}
    assert VOCABULARY == {  # presence of each part, and its Literal/bool fields; free text never becomes a fact
        "seed", "seed.kind=passage", "seed.kind=domain", "passage", "persona", "topic", "instruction",
        "instruction.mode=contextual", "instruction.mode=standalone", "answer", "answer.refined=false",
        "answer.refined=true"}
    with pytest.raises(ValueError, match=r"unknown fact 'instruction.mode=contxtual'.*instruction.mode=contextual"):
        check_facts(["instruction.mode=contxtual"], "node n: requires")


def test_replace_validates_the_new_parts():
    dp = Datapoint(seed=Seed(seed_id="x", text="t"))
    assert dp.replace(passage=Passage(text="p", form="f")).passage == Passage(text="p", form="f")
    assert dp.passage is None  # parts are immutable: replace returns a new datapoint
    with pytest.raises(ValueError, match="answer"):
        dp.replace(answer="not an Answer")


# -- validation ------------------------------------------------------------------------------------------
def test_validation_reports_every_problem_clearly():
    a = answer("a")
    loop = FnNode("loop", lambda dp, rng: dp, requires={"answer"}, adds={"answer"})  # changes nothing: a cycle
    lonely = FnNode("lonely", lambda dp, rng: dp, requires={"topic"}, adds={"persona"})
    with pytest.raises(GraphError) as err:
        Graph("bad", [transform("t"), transform("t"), instruct("c", "contextual"), a, loop, lonely], sink=["answer"])
    problems = err.value.problems
    assert "duplicate node name 't'" in problems
    assert any(p.startswith("cycle after source → t → c → a: loop returns to the same state") for p in problems)
    assert any(p.startswith("node lonely is unreachable: no reachable state has ['topic']") for p in problems)
    assert any(p.startswith("dead end after source: no node applies to ['seed', 'seed.kind=domain']") for p in problems)
    assert "graph bad: 4 problem(s)" in str(err.value)


def test_dead_end_and_unreachable_sink_and_longer_cycles():
    with pytest.raises(GraphError, match=r"dead end after source → t → c: no node applies.*sink \['answer'\] does not"):
        Graph("g", [transform("t"), instruct("c", "contextual")], source=["seed.kind=passage"], sink=["answer"])
    with pytest.raises(GraphError, match=r"the sink \['topic'\] is unreachable from the source"):
        Graph("g", [transform("t")], source=["seed.kind=passage"], sink=["topic"])
    there = FnNode("there", lambda dp, rng: dp, requires={"passage"}, forbids={"persona"}, adds={"persona"},
                   deletes={"passage"})
    back = FnNode("back", lambda dp, rng: dp, requires={"persona"}, forbids={"passage"}, adds={"passage"},
                  deletes={"persona"})
    with pytest.raises(GraphError, match=r"cycle after source → t: there → back returns to the same state"):
        Graph("g", [transform("t"), there, back], source=["seed.kind=passage"], sink=["passage"], finish_weight=1)


def test_bad_node_definitions_fail_when_built():
    with pytest.raises(ValueError, match="weight must be a finite number > 0"):
        transform("t", weight=0)
    with pytest.raises(ValueError, match="node x: adds: unknown fact 'answers'"):
        FnNode("x", lambda dp, rng: dp, adds={"answers"})
    with pytest.raises(ValueError, match="bad template"):
        LLMNode("x", role="r", system="", prompt="{{ seed.text ", apply=lambda dp, v: dp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(*(st.sets(st.sampled_from(sorted(VOCABULARY)), max_size=2) for _ in range(4))),
                min_size=1, max_size=6))
def test_any_graph_is_either_rejected_with_reasons_or_fully_walkable(specs):
    """Arbitrary node conditions: construction either reports problems of the known kinds, or every node
    lies on some source → sink path."""
    nodes = [FnNode(f"n{i}", lambda dp, rng: dp, requires=r, forbids=f, adds=a, deletes=d)
             for i, (r, f, a, d) in enumerate(specs)]
    try:
        graph = Graph("g", nodes, sink=["answer"])
    except GraphError as exc:
        kinds = ("duplicate node name", "cycle after", "dead end after", "node ", "the sink", "more than")
        assert exc.problems and all(p.startswith(kinds) for p in exc.problems)
        return
    assert on_some_path(graph) == {n.name for n in nodes}


# -- walks -----------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines)
def test_every_node_is_on_a_path_and_walks_end_at_the_sink(graph):
    assert on_some_path(graph) == {n.name for n in graph.nodes}
    for result in walks(graph, 15):
        assert result.status == "accepted", result.error
        assert graph.at_sink(facts(result.datapoint))
        assert result.path[0].startswith("t") and any(p.split(">")[-1].startswith("a") for p in result.path)


def expected_paths(graph: Graph, state: frozenset, prefix: str = "") -> list[tuple[tuple[str, ...], float, frozenset]]:
    """Every (path, probability, end state) of a walk from `state`, from the weights alone."""
    nodes, cumulative = graph.options(state)
    total, out, previous = cumulative[-1], [], 0.0
    for node, c in zip(nodes, cumulative):
        p, previous = (c - previous) / total, c
        if node is None:
            out.append(((), p, state))
            continue
        if isinstance(node, Graph):
            heads = expected_paths(node, state, f"{prefix}{node.name}>")
        else:
            [after] = node.successors(state)
            heads = [((prefix + node.name,), 1.0, after)]
        for head, q, mid in heads:
            out += [(head + tail, p * q * r, end) for tail, r, end in expected_paths(graph, mid, prefix)]
    return out


@pytest.mark.parametrize("nested", [False, True])
def test_path_frequencies_match_the_weights(nested):
    graph = pipeline([1, 2, 3], [1.5], [1, 3], [2], [1, 3], 1.0, 2.0, nested)
    start = facts(Datapoint(seed=Seed(seed_id="x", text="t")))
    expected = {path: p for path, p, _ in expected_paths(graph, start)}
    assert math.isclose(sum(expected.values()), 1.0) and len(expected) == 3 * (2 + 3) * 2 * 2
    n = 4000
    observed = Counter(tuple(r.path) for r in walks(graph, n))
    assert set(observed) <= set(expected)
    paths = sorted(expected)
    stat = chisquare([observed[p] for p in paths], [expected[p] * n for p in paths])
    assert stat.pvalue > 1e-3, stat  # walks are seeded: this is the same draw on every run


def test_walks_are_deterministic_and_replicates_differ():
    graph = pipeline([1, 1, 1], [], [1, 1, 1], [], [1, 1], 1.0, 1.0, False)
    first, again = walks(graph, 50), walks(graph, 50)
    assert [r.path for r in first] == [r.path for r in again]
    assert len({tuple(r.path) for r in first}) > 5
    assert walk_id(graph.fingerprint, "s0", 0) != walk_id(graph.fingerprint, "s0", 1)
    changed = pipeline([1, 1, 2], [], [1, 1, 1], [], [1, 1], 1.0, 1.0, False)  # a weight is part of the graph
    assert changed.fingerprint != graph.fingerprint


def test_nested_graph_is_a_node():
    graph = pipeline([1], [], [1], [], [1, 1], 1.0, 1.0, True)
    respond = graph.by_name["respond"]
    assert respond.requires == {"instruction"} and respond.forbids == {"answer"}
    assert {frozenset(e.adds) for e in respond.outcomes} == {
        frozenset({"answer", "answer.refined=false"}), frozenset({"answer", "answer.refined=true"})}
    paths = {tuple(r.path) for r in walks(graph, 40)}
    assert ("t0", "c0", "respond>a1", "respond>refine") in paths and ("t0", "c0", "respond>a0") in paths
    assert ("source", "t0") in graph.edges() and ("c0", "respond") in graph.edges() and ("respond", "sink") in graph.edges()


def test_a_node_that_breaks_its_declared_effects_fails_the_walk():
    liar = FnNode("liar", lambda dp, rng: dp.model_copy(update={"persona": Persona(name="p", description="d")}),
                  requires={"seed"}, forbids={"passage"}, adds={"passage"})
    graph = Graph("g", [liar], sink=["passage"])
    [result] = walks(graph, 1)
    assert result.status == "node_failed" and result.datapoint is None
    assert "liar left the state" in result.error and "declared effects do not allow" in result.error
    domain = asyncio.run(run_walk(graph, Seed(seed_id="d", kind="domain", text="Cooking"), 0, None))
    assert domain.status == "node_failed"  # the domain start state is valid here, but liar still lies


# -- the judge loop, with a scripted model ---------------------------------------------------------------
class ScriptedPolicy:
    """Test double of a Policy: answers with `script(chat, sampling)`, recording every request."""

    def __init__(self, script: Callable[[list[Message], Sampling], str]):
        self.name, self.version, self.script, self.requests = "scripted", 0, script, []

    async def generate(self, chat, tools, sampling, n):
        self.requests.append((chat, sampling))
        return [Completion(text=self.script(chat, sampling), usage=Usage(prompt_tokens=5, completion_tokens=3))]

    async def close(self):
        pass


RUBRIC = Rubric(name="t", system="You judge rewrites.", prompt="{{ passage.text }}", pass_mean=3.5,
                criteria=[Criterion(name="coherence", description="reads well"),
                          Criterion(name="relevance", description="faithful", min_score=4)])


def make_llm(tmp_path: Path, policy: ScriptedPolicy) -> LLM:
    return LLM(policies={"p": policy}, identities={"p": "scripted"}, roles={"default": "p"},
               sampling={"default": Sampling(max_tokens=32)}, cache=CallCache(tmp_path / "calls.sqlite"))


def judged_graph(max_attempts: int = 3) -> Graph:
    node = LLMNode("transform/x", role="transform", system="You rewrite.", prompt="Rewrite: {{ seed.text }}",
                   apply=lambda dp, text: dp.model_copy(update={"passage": Passage(text=text, form="x")}),
                   requires={"seed"}, forbids={"passage"}, adds={"passage"})
    return Graph("g", [Judged(node, RUBRIC, max_attempts=max_attempts)], sink=["passage"])


def verdicts(*replies: str) -> Callable[[list[Message], Sampling], str]:
    """Generator calls answer "draft N"; judge calls answer the given replies in turn."""
    state = {"drafts": 0, "verdicts": iter(replies)}

    def script(chat, sampling):
        if "Score each criterion" in chat[0].content:
            return next(state["verdicts"])
        state["drafts"] += 1
        return f"draft {state['drafts']}"
    return script


FAIL = json.dumps({"scores": {"coherence": 4, "relevance": 2}, "feedback": "keep the numbers"})
PASS = json.dumps({"scores": {"coherence": 5, "relevance": 4}})


def test_judge_retries_with_feedback_and_a_new_seed_until_it_passes(tmp_path):
    policy = ScriptedPolicy(verdicts(FAIL, PASS))
    [result] = walks(judged_graph(), 1, make_llm(tmp_path, policy))
    assert result.status == "accepted" and result.datapoint.passage.text == "draft 2"
    calls = result.calls
    assert [(c.role, c.attempt, c.accepted) for c in calls] == [
        ("transform", 0, False), ("judge", 0, False), ("transform", 1, True), ("judge", 1, True)]
    first, retry = calls[0].messages[-1]["content"], calls[2].messages[-1]["content"]
    assert "keep the numbers" not in first and "keep the numbers" in retry and "rejected your previous" in retry
    assert json.loads(calls[0].sampling)["seed"] != json.loads(calls[2].sampling)["seed"]
    assert calls[0].judge_scores == {"coherence": 4, "relevance": 2} and calls[1].parsed["passed"] is False
    [verdict] = result.datapoint.verdicts
    assert verdict.passed and verdict.attempt == 1 and verdict.scores == {"coherence": 5, "relevance": 4}
    coverage = Coverage()
    coverage.add(result)
    assert coverage.judged["transform/x"] == 2 and coverage.passed["transform/x"] == 1


def test_pass_is_computed_in_code_and_the_cap_holds(tmp_path):
    claims = json.dumps({"scores": {"coherence": 5, "relevance": 3}, "passed": True})  # relevance < 4: fails
    policy = ScriptedPolicy(verdicts(claims, "coherence: 1\nrelevance: 1", "no verdict here"))
    [result] = walks(judged_graph(max_attempts=3), 1, make_llm(tmp_path, policy))
    assert result.status == "judge_exhausted" and "rejected all 3 attempts" in result.error
    assert len(result.calls) == 6 and not any(c.accepted for c in result.calls)
    assert [c.judge_scores for c in result.calls if c.role == "judge"] == [
        {"coherence": 5, "relevance": 3}, {"coherence": 1, "relevance": 1}, {}]
    # the feedback of a verdict without any is made from the failing criteria
    assert "relevance scored 3: faithful" in result.calls[2].messages[-1]["content"]


def test_unusable_output_is_retried_then_fails_the_node(tmp_path):
    policy = ScriptedPolicy(lambda chat, sampling: "   " if "Score" not in chat[0].content else PASS)
    [result] = walks(judged_graph(max_attempts=2), 1, make_llm(tmp_path, policy))
    assert result.status == "node_failed" and "empty response" in result.error
    assert len(policy.requests) == 2  # two generations, never judged


def test_calls_replay_from_the_cache(tmp_path):
    llm = make_llm(tmp_path, ScriptedPolicy(verdicts(FAIL, PASS)))
    [first] = walks(judged_graph(), 1, llm)
    asyncio.run(llm.close())  # the cache writes its pending batch

    def refuse(chat, sampling):
        raise AssertionError("a cached call reached the model")
    [again] = walks(judged_graph(), 1, make_llm(tmp_path, ScriptedPolicy(refuse)))
    assert all(c.cache_hit for c in again.calls) and not any(c.cache_hit for c in first.calls)
    assert [(c.response, c.accepted) for c in again.calls] == [(c.response, c.accepted) for c in first.calls]
    assert again.datapoint == first.datapoint


def test_rubric_parsing():
    assert RUBRIC.parse('Sure! {"scores": {"Coherence": 4, "relevance": 5}, "feedback": "ok"}') == (
        {"coherence": 4, "relevance": 5}, "ok")
    assert RUBRIC.parse("Coherence: 3/5\nRelevance - 4\nFeedback: tighten it") == (
        {"coherence": 3, "relevance": 4}, "tighten it")
    assert RUBRIC.parse('{"scores": {"coherence": 4}}') is None  # a criterion missing
    assert RUBRIC.parse('{"scores": {"coherence": 9, "relevance": 4}}') is None  # off the scale
    assert RUBRIC.reward({"coherence": 5, "relevance": 5}) == 1.0 and RUBRIC.reward({"coherence": 1, "relevance": 1}) == 0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300) | st.builds(json.dumps, st.dictionaries(st.text(max_size=12), st.integers() | st.text(max_size=5))))
def test_rubric_parse_never_raises(text):
    parsed = RUBRIC.parse(text)
    assert parsed is None or set(parsed[0]) == {"coherence", "relevance"}


# -- catalog and drawings --------------------------------------------------------------------------------
def test_catalog_is_data_and_extends_without_code(tmp_path):
    catalog = load_catalog()
    assert len(catalog.transformations.items) >= 20 and len(catalog.instructions.items) >= 30
    assert {k.mode for k in catalog.instructions.items} == {"contextual", "standalone"}
    assert {"transform", "instruction", "answer"} <= set(catalog.rubrics)
    (tmp_path / "transformations.yaml").write_text(
        "items:\n  - {id: haiku, form: a haiku}\n  - {id: poem, form: an epic poem, weight: 3}\n")
    extended = load_catalog(tmp_path)
    by_id = {t.id: t for t in extended.transformations.items}
    assert by_id["haiku"].form == "a haiku" and by_id["poem"].weight == 3
    assert len(by_id) == len(catalog.transformations.items) + 1
    graph = build_graph(extended, GraphOptions(transformations=["haiku", "poem"], judge=None))
    assert {"transform/haiku", "transform/poem", "transform/original"} == {
        n.name for n in graph.nodes if n.name.startswith("transform/")}
    (tmp_path / "answerers.yaml").write_text("items:\n  - {id: terse}\n")
    with pytest.raises(ValueError, match=r"answerers.items.*system: Field required"):
        load_catalog(tmp_path)
    with pytest.raises(ValueError, match=r"graph.instructions: unknown ids \['nope'\]"):
        build_graph(catalog, GraphOptions(instructions=["nope"]))
    with pytest.raises(ValueError, match=r"graph.weights: no node named \['refin'\]"):
        build_graph(catalog, GraphOptions(weights={"refin": 2}))


def test_the_catalog_graph_validates_and_draws():
    graph = build_graph()
    names = {n.name for n in graph.nodes}
    assert {"transform/debate", "persona/catalog", "instruct/multiple_choice", "taxonomy/expand", "respond"} <= names
    assert isinstance(graph.by_name["transform/debate"], Judged) and not isinstance(graph.by_name["persona/catalog"], Judged)
    assert graph.fingerprint == build_graph().fingerprint  # a pure function of catalog and options
    assert on_some_path(graph) == names
    mermaid = to_mermaid(graph, collapse=3)
    assert mermaid.startswith("flowchart LR") and 'subgraph respond ["respond (nested graph)"]' in mermaid
    assert "transform____25 --> instruct____39" in mermaid and "respond --> sink" in mermaid
    dot = to_dot(graph)
    assert dot.startswith('digraph "dataforge"') and "subgraph cluster_respond" in dot
    assert 'instruct_multiple_choice [label="instruct/multiple_choice (judged)"]' in dot
    assert "instruct_multiple_choice -> respond__source;" in dot and dot.rstrip().endswith("}")
