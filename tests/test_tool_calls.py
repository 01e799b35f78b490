"""The tool-calling environment: Hermes parsing, the BFCL-style checker, task generation, multi-turn episodes
(locally and through a real server process)."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import environments
from env_server.client import EnvServerClient
from environments import EpisodeOver, make
from environments.tool_calls import KINDS, Call, FormatError, ToolCallsEnv, check, parse_calls, reference_actions
from environments.tool_calls.hermes import render_call, system_prompt
from environments.tool_calls.world import TOOLS, execute, make_world
from environments.types import Completion, Message, Score, Task, ToolCall

run = asyncio.run


@pytest.fixture(scope="module")
def env() -> ToolCallsEnv:
    return make("tool_calls")


@pytest.fixture(scope="module")
def partial_env() -> ToolCallsEnv:
    return make("tool_calls", reward="partial")


@pytest.fixture(scope="module")
def tasks(env) -> list[Task]:
    return list(env.tasks().iter("train", limit=150)) + list(env.tasks().iter("eval", limit=50))


def of_kind(tasks: list[Task], kind: str) -> list[Task]:
    return [t for t in tasks if t.verifier["kind"] == kind]


def tagged(*calls: tuple[str, dict]) -> str:
    return "\n".join(render_call(Call(name, args)) for name, args in calls)


async def play(env: ToolCallsEnv, task: Task, actions: list[Message]) -> list[tuple]:
    """Reset to `task`, take the actions, return every step's (observation, reward, terminated, truncated, info)."""
    await env.reset(options={"task": task.model_dump(mode="json")})
    return [await env.step(action) for action in actions]


# -- Hermes format: parsing -------------------------------------------------------------------------------


def test_parse_tagged_calls_with_text_around():
    text = ('Let me check.\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>'
            '<tool_call>{"arguments": {"y": [true, null]}, "name": "b"}</tool_call> done')
    assert parse_calls(text) == [Call("a", {"x": 1}), Call("b", {"y": [True, None]})]


@pytest.mark.parametrize(("text", "calls"), [
    ('[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]', [Call("a", {"x": 1}), Call("b", {})]),
    ('```json\n[{"name": "a", "arguments": {"x": 1}}]\n```', [Call("a", {"x": 1})]),
    ('{"name": "a", "arguments": {"x": 1}}', [Call("a", {"x": 1})]),
    ('[{"a": {"x": 1}}]', [Call("a", {"x": 1})]),  # BFCL's decoded form {name: {arguments}}
    ('<tool_call>{"name": "a", "arguments": "{\\"x\\": 1}"}</tool_call>', [Call("a", {"x": 1})]),  # OpenAI string
    ('<tool_call>{"name": "a"}</tool_call>', [Call("a", {})]),
    ("[]", []),
    ("The answer is 42.", []),
    ("", []),
])
def test_parse_accepted_forms(text, calls):
    assert parse_calls(text) == calls


@pytest.mark.parametrize(("text", "message"), [
    ('<tool_call>{"name": "a", "arguments": {}}', "tool call 1: <tool_call> is not closed"),
    ('{"name": "a"}</tool_call>', "tool call 1: </tool_call> without an opening"),
    ('<tool_call><tool_call>{"name": "a"}</tool_call>', "tool call 1: <tool_call> is not closed"),
    ('<tool_call>{"name": "a"}</tool_call><tool_call>{"name": "b",}</tool_call>', "tool call 2: invalid JSON"),
    ("<tool_call>{'name': 'a'}</tool_call>", "tool call 1: invalid JSON"),
    ('<tool_call>{"name": "a", "arguments": {"x": NaN}}</tool_call>', "invalid JSON (NaN is not JSON)"),
    ('<tool_call>["a"]</tool_call>', "tool call 1: expected a JSON object, got list"),
    ('<tool_call>{"arguments": {"x": 1}}</tool_call>', "tool call 1: the function name must be a non-empty string"),
    ('<tool_call>{"name": "", "arguments": {}}</tool_call>', "the function name must be a non-empty string"),
    ('<tool_call>{"name": 7, "arguments": {}}</tool_call>', "the function name must be a non-empty string"),
    ('<tool_call>{"name": "a", "arguments": [1]}</tool_call>', "arguments must be a JSON object, got list"),
    ('<tool_call>{"name": "a", "arguments": "{oops"}</tool_call>', "tool call 1 arguments: invalid JSON"),
    ('<tool_call>{"name": "a", "arguments": {}, "id": 3}</tool_call>', "unexpected keys ['id']"),
    ('[{"name": "a", "arguments": {}}, 5]', "call 2: expected a JSON object, got int"),
    ('[{"name": "a", "arguments": {}}', "the JSON answer: invalid JSON"),
    ("[" * 100_000, "invalid JSON"),
])
def test_parse_malformed(text, message):
    with pytest.raises(FormatError) as err:
        parse_calls(text)
    assert message in str(err.value)


def test_render_escapes_closing_tag_inside_strings():
    call = Call("note", {"text": "ends with </tool_call> and <think>"})
    rendered = render_call(call)
    assert rendered.count("</tool_call>") == 1 and "<think>" not in rendered
    assert parse_calls(rendered) == [call]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=10), st.dictionaries(st.text(max_size=10), json_values,
                                                                            max_size=3)), max_size=3))
def test_render_parse_round_trip(calls):
    calls = [Call(name, args) for name, args in calls]
    assert parse_calls("\n".join(map(render_call, calls))) == calls


@settings(max_examples=200, deadline=None)
@given(st.text() | st.lists(st.sampled_from(["<tool_call>", "</tool_call>", "{", "}", '"name"', ":", '"a"', "[",
                                             "]", ",", '"arguments"', "1", " ", "```", "\n"])).map("".join))
def test_parse_raises_only_format_errors(text):
    try:
        calls = parse_calls(text)
    except FormatError:
        return
    assert all(isinstance(c.name, str) and c.name and isinstance(c.arguments, dict) for c in calls)


# -- the checker: every rule, both ways -------------------------------------------------------------------

FUNCTIONS = [
    {"name": "get_weather", "description": "Weather.", "parameters": {"type": "dict", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"}}, "required": ["city"]}},
    {"type": "function", "function": {"name": "convert", "parameters": {"type": "object", "properties": {
        "amount": {"type": "float"}, "rate": {"type": "number"}, "to": {"type": "string"}},
        "required": ["amount", "to"]}}},
    {"name": "tag", "parameters": {"type": "object", "properties": {
        "labels": {"type": "array", "items": {"type": "string"}},
        "weights": {"type": "array", "items": {"type": "number"}},
        "flag": {"type": "boolean"}, "meta": {"type": "dict"}, "anything": {"type": "any"}}, "required": []}},
]
WEATHER = {"get_weather": {"city": ["New York"], "unit": ["", "celsius"], "days": [3]}}


def weather(**args) -> str:
    return tagged(("get_weather", args))


def failures(score: Score) -> list[tuple]:
    return [(f["expected_index"], f["call_index"], f["function"], f["argument"], f["reason"].split(" (")[0])
            for f in score.details["failures"]]


def test_exact_call_passes():
    score = check(FUNCTIONS, [WEATHER], weather(city="New York", unit="celsius", days=3))
    assert (score.reward, score.accepted, score.error) == (1.0, True, None)
    assert score.details == {"expected_calls": 1, "calls": 1, "matched": 1, "failures": []}


def test_wrong_function_name():
    score = check(FUNCTIONS, [WEATHER], tagged(("get_wether", {"city": "New York", "days": 3})))
    assert not score.accepted and score.reward == 0.0
    assert failures(score) == [(0, None, "get_weather", None, "missing call"),
                               (None, 0, "get_wether", None, "unknown function")]


def test_call_to_an_offered_but_unexpected_function():
    score = check(FUNCTIONS, [WEATHER], tagged(("convert", {"amount": 1.0, "to": "EUR"})))
    assert failures(score) == [(0, None, "get_weather", None, "missing call"),
                               (None, 0, "convert", None, "unexpected call")]


def test_missing_required_argument():
    score = check(FUNCTIONS, [WEATHER], weather(days=3))
    assert failures(score) == [(0, 0, "get_weather", "city", "missing required argument")]


def test_unknown_argument():
    score = check(FUNCTIONS, [WEATHER], weather(city="New York", days=3, country="US"))
    assert failures(score) == [(0, 0, "get_weather", "country", "unknown argument")]


def test_argument_the_expected_call_does_not_set():
    expected = {"get_weather": {"city": ["Oslo"]}}
    assert check(FUNCTIONS, [expected], weather(city="Oslo")).accepted
    score = check(FUNCTIONS, [expected], weather(city="Oslo", days=2))
    assert failures(score) == [(0, 0, "get_weather", "days", "unexpected argument")]


def test_optional_argument_may_be_left_out_only_when_marked():
    assert check(FUNCTIONS, [WEATHER], weather(city="New York", days=3)).accepted  # unit: ["", "celsius"]
    score = check(FUNCTIONS, [WEATHER], weather(city="New York", unit="celsius"))  # days: [3], no ""
    assert failures(score) == [(0, 0, "get_weather", "days", "missing argument")]


@pytest.mark.parametrize(("args", "argument", "reason"), [
    ({"city": 7, "days": 3}, "city", "expected type string, got integer"),
    ({"city": "New York", "days": 3.0}, "days", "expected type integer, got number"),
    ({"city": "New York", "days": True}, "days", "expected type integer, got boolean"),
    ({"city": "New York", "days": "3"}, "days", "expected type integer, got string"),
    ({"city": ["New York"], "days": 3}, "city", "expected type string, got array"),
])
def test_wrong_types(args, argument, reason):
    score = check(FUNCTIONS, [WEATHER], weather(**args))
    assert failures(score) == [(0, 0, "get_weather", argument, reason)]


def test_integer_accepted_for_float_and_number_but_not_boolean():
    expected = {"convert": {"amount": [5.0], "rate": [2.0, ""], "to": ["EUR"]}}
    assert check(FUNCTIONS, [expected], tagged(("convert", {"amount": 5, "rate": 2, "to": "EUR"}))).accepted
    assert check(FUNCTIONS, [expected], tagged(("convert", {"amount": 5.0, "to": "EUR"}))).accepted
    score = check(FUNCTIONS, [expected], tagged(("convert", {"amount": True, "to": "EUR"})))
    assert failures(score) == [(0, 0, "convert", "amount", "expected type float, got boolean")]


def test_array_items_and_boolean_types():
    expected = {"tag": {"labels": [["a", "b"]], "flag": [True]}}
    assert check(FUNCTIONS, [expected], tagged(("tag", {"labels": ["a", "b"], "flag": True}))).accepted
    score = check(FUNCTIONS, [expected], tagged(("tag", {"labels": ["a", 2], "flag": "true"})))
    assert failures(score) == [(0, 0, "tag", "labels", "item 1: expected type string, got integer"),
                               (0, 0, "tag", "flag", "expected type boolean, got string")]
    weights = {"tag": {"weights": [[1.0, 2.5]]}}
    assert check(FUNCTIONS, [weights], tagged(("tag", {"weights": [1, 2.5]}))).accepted  # ints in a number array


def test_value_not_accepted():
    score = check(FUNCTIONS, [WEATHER], weather(city="Boston", days=3))
    assert failures(score) == [(0, 0, "get_weather", "city", '"Boston" is not an accepted value')]
    assert "accepted: [\"New York\"]" in score.details["failures"][0]["reason"]
    assert not check(FUNCTIONS, [WEATHER], weather(city="New York", days=4)).accepted
    assert not check(FUNCTIONS, [WEATHER], weather(city="New York", days=3, unit="fahrenheit")).accepted


def test_strings_compare_like_bfcl():
    # case, spaces and ,./-_*^ are ignored, as BFCL's standardisation does
    assert check(FUNCTIONS, [WEATHER], weather(city="new-york", days=3)).accepted
    assert check(FUNCTIONS, [WEATHER], weather(city="NEW YORK.", days=3)).accepted
    assert not check(FUNCTIONS, [WEATHER], weather(city="New Yorkk", days=3)).accepted


def test_lists_compare_in_order():
    expected = {"tag": {"labels": [["a", "b"], ["x"]]}}
    assert check(FUNCTIONS, [expected], tagged(("tag", {"labels": ["A", "b"]}))).accepted
    assert check(FUNCTIONS, [expected], tagged(("tag", {"labels": ["x"]}))).accepted
    assert not check(FUNCTIONS, [expected], tagged(("tag", {"labels": ["b", "a"]}))).accepted
    assert not check(FUNCTIONS, [expected], tagged(("tag", {"labels": ["a"]}))).accepted


def test_dicts_compare_key_by_key():
    expected = {"tag": {"meta": [{"owner": ["ana"], "size": [1, 2], "note": ["", "hi"]}]}}
    assert check(FUNCTIONS, [expected], tagged(("tag", {"meta": {"owner": "Ana", "size": 2}}))).accepted
    assert check(FUNCTIONS, [expected], tagged(("tag", {"meta": {"owner": "ana", "size": 1, "note": "hi"}}))).accepted
    for bad in ({"owner": "ana"}, {"owner": "ana", "size": 3}, {"owner": "ana", "size": 1, "extra": 0}, {"size": 1}):
        assert not check(FUNCTIONS, [expected], tagged(("tag", {"meta": bad}))).accepted, bad


def test_booleans_are_not_numbers_in_values():
    expected = {"tag": {"anything": [1]}}  # "any" skips the type check, so only equality can tell them apart
    assert check(FUNCTIONS, [expected], tagged(("tag", {"anything": 1}))).accepted
    assert not check(FUNCTIONS, [expected], tagged(("tag", {"anything": True}))).accepted
    assert not check(FUNCTIONS, [{"tag": {"anything": [[0]]}}], tagged(("tag", {"anything": [False]}))).accepted


def test_parallel_calls_in_any_order():
    expected = [{"get_weather": {"city": ["Oslo"], "days": ["", 1]}}, {"get_weather": {"city": ["Lima"]}},
                {"convert": {"amount": [10.0], "to": ["EUR"]}}]
    calls = [("convert", {"amount": 10, "to": "EUR"}), ("get_weather", {"city": "Lima"}),
             ("get_weather", {"city": "Oslo"})]
    for order in (calls, calls[::-1], calls[1:] + calls[:1]):
        score = check(FUNCTIONS, expected, tagged(*order))
        assert score.accepted and score.details["matched"] == 3


def test_parallel_matching_is_an_assignment_not_greedy():
    # The first expected call fits both calls; taking call 0 for it (as greedy pairing does) would leave the
    # second expected call, which only Oslo fits, without a partner.
    expected = [{"get_weather": {"city": ["Oslo", "Lima"]}}, {"get_weather": {"city": ["Oslo"]}}]
    score = check(FUNCTIONS, expected, tagged(("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Lima"})))
    assert score.accepted and score.details["matched"] == 2


def test_parallel_failures_name_the_closest_call():
    expected = [{"get_weather": {"city": ["Oslo"]}}, {"get_weather": {"city": ["Lima"], "unit": ["fahrenheit"]}}]
    text = tagged(("get_weather", {"city": "Lima", "unit": "celsius"}), ("get_weather", {"city": "Oslo"}))
    score = check(FUNCTIONS, expected, text)
    assert not score.accepted and score.details["matched"] == 1
    assert failures(score) == [(1, 0, "get_weather", "unit", '"celsius" is not an accepted value')]


def test_wrong_number_of_calls():
    expected = [{"get_weather": {"city": ["Oslo"]}}, {"get_weather": {"city": ["Lima"]}}]
    one = check(FUNCTIONS, expected, weather(city="Oslo"))
    assert not one.accepted and failures(one) == [(1, None, "get_weather", None, "missing call")]
    three = check(FUNCTIONS, expected, tagged(*[("get_weather", {"city": c}) for c in ("Oslo", "Lima", "Oslo")]))
    assert not three.accepted and failures(three) == [(None, 2, "get_weather", None, "unexpected call")]
    twice = tagged(("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Oslo"}))
    one_expected = check(FUNCTIONS, expected[:1], twice)
    assert not one_expected.accepted and one_expected.details["matched"] == 1


def test_partial_reward():
    expected = [{"get_weather": {"city": [c]}} for c in ("Oslo", "Lima", "Perth")]
    two_of_three = tagged(*[("get_weather", {"city": c}) for c in ("Oslo", "Lima", "X")])
    assert check(FUNCTIONS, expected, two_of_three).reward == 0.0
    score = check(FUNCTIONS, expected, two_of_three, reward="partial")
    assert not score.accepted and score.reward == pytest.approx(2 / 3)
    extra = tagged(*[("get_weather", {"city": c}) for c in ("Oslo", "Lima", "Perth", "Oslo")])
    assert check(FUNCTIONS, expected, extra, reward="partial").reward == pytest.approx(3 / 4)
    assert check(FUNCTIONS, expected, "no calls", reward="partial").reward == 0.0


def test_no_call_expected():
    assert check(FUNCTIONS, [], "I cannot help with that using these tools.").accepted
    assert check(FUNCTIONS, [], "[]").accepted
    score = check(FUNCTIONS, [], weather(city="Oslo"))
    assert not score.accepted and failures(score) == [(None, 0, "get_weather", None, "unexpected call")]


def test_json_list_and_think_block_in_check():
    text = ('<think>maybe <tool_call> here?</think>'
            '[{"name": "get_weather", "arguments": {"city": "New York", "days": 3}}]')
    assert check(FUNCTIONS, [WEATHER], text).accepted


def test_malformed_output_is_an_error_score():
    score = check(FUNCTIONS, [WEATHER], '<tool_call>{"name": "get_weather", "arguments": {"city": }}</tool_call>')
    assert (score.accepted, score.reward) == (False, 0.0)
    assert score.error.startswith("tool call 1: invalid JSON")


def test_check_rejects_malformed_inputs_of_the_caller():
    with pytest.raises(ValueError, match="not among the functions"):
        check(FUNCTIONS, [{"nope": {}}], "")
    with pytest.raises(ValueError, match="must be"):
        check(FUNCTIONS, [{"get_weather": {}, "convert": {}}], "")
    with pytest.raises(ValueError, match="list of accepted values"):
        check(FUNCTIONS, [{"get_weather": {"city": "Oslo"}}], "")
    with pytest.raises(ValueError, match="reward"):
        check(FUNCTIONS, [], "", reward="graded")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300)
       | st.builds(lambda args: tagged(("get_weather", args)), st.dictionaries(st.text(max_size=8), json_values)))
def test_check_never_raises_on_model_output(text):
    score = check(FUNCTIONS, [WEATHER, {"convert": {"amount": [1.0], "to": ["EUR"]}}], text, reward="partial")
    assert 0.0 <= score.reward <= 1.0 and (score.error is None or not score.accepted)


# -- task generation --------------------------------------------------------------------------------------


def test_tasks_are_deterministic_and_splits_disjoint(env, tasks):
    again = make("tool_calls")
    assert [again.tasks().get("train", i) for i in range(20)] == tasks[:20]
    train = {t.task_id for t in env.tasks().iter("train", limit=300)}
    assert train.isdisjoint(t.task_id for t in tasks[150:])  # the first 50 of the eval split


def test_every_kind_is_generated_with_tools_in_the_prompt(tasks):
    assert {t.verifier["kind"] for t in tasks} == set(KINDS)
    for t in tasks:
        system, user = t.prompt
        assert (system.role, user.role) == ("system", "user")
        assert t.tools and system.content == system_prompt(t.tools)
        offered = system.content.split("<tools>\n")[1].split("\n</tools>")[0].splitlines()
        assert [json.loads(line)["function"]["name"] for line in offered] == [tool.name for tool in t.tools]
        assert all(json.loads(line)["type"] == "function" for line in offered)


def test_kind_shapes(tasks):
    for t in tasks:
        v, names = t.verifier, {tool.name for tool in t.tools}
        if v["kind"] == "single":
            assert len(t.tools) == 1 and len(v["calls"]) == 1
        elif v["kind"] == "parallel":
            assert 2 <= len(v["calls"]) <= 3
        elif v["kind"] == "distractor":
            assert len(v["calls"]) == 1 and len(t.tools) >= 4
        elif v["kind"] == "no_call":
            assert "calls" not in v and isinstance(v["answer"], int)
        else:
            assert {"get_weather", "get_product", "list_events", "convert_currency"} <= names
            assert 1 <= len(v["reference"]) <= 2 and "Answer:" in t.prompt[1].content
        assert all(next(iter(call)) in names for call in v.get("calls", []))


def test_config_selects_kinds_and_is_validated():
    only = make("tool_calls", kinds=["no_call", "multi_turn"])
    assert {t.verifier["kind"] for t in only.tasks().iter("eval", limit=40)} == {"no_call", "multi_turn"}
    assert all(t.reasoning for t in make("tool_calls", reasoning=True).tasks().iter("eval", limit=5))
    for bad in ({"kinds": []}, {"kinds": ["essay"]}, {"reward": "graded"}, {"max_turns": 0}):
        with pytest.raises(ValueError):
            make("tool_calls", **bad)


def test_registered_with_gymnasium():
    assert environments.spec("tool_calls").gym_id == "lachesis/ToolCalls-v0"
    assert environments.spec("tool_calls").cls.multi_turn


# -- reference solutions pass; episodes ---------------------------------------------------------------------


def test_reference_solutions_pass(env, tasks):
    for t in tasks:
        steps = run(play(env, t, reference_actions(t)))
        *middle, (_, reward, terminated, truncated, info) = steps
        assert (reward, terminated, truncated) == (1.0, True, False), (t.verifier, info)
        assert all(not term and not trunc and r == 0.0 for _, r, term, trunc, _ in middle)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["train", "eval"]), st.integers(0, 499), st.booleans())
def test_reference_solution_of_any_task_passes(split, index, reasoning):
    env = make("tool_calls", reasoning=reasoning)
    task = env.tasks().get(split, index)
    *_, (_, reward, terminated, _, info) = run(play(env, task, reference_actions(task)))
    assert (reward, terminated) == (1.0, True), info


def test_single_turn_kinds_end_after_one_step(env, tasks):
    call = Message(role="assistant", content=tagged(("get_weather", {"city": "Oslo"})))
    for t in [*of_kind(tasks, "single")[:3], *of_kind(tasks, "parallel")[:3], *of_kind(tasks, "no_call")[:3]]:
        (obs, _, terminated, truncated, _), = run(play(env, t, [call]))
        assert (terminated, truncated) == (True, False) and obs.messages[-1].role == "assistant"
        with pytest.raises(EpisodeOver):
            run(env.step(Message(role="assistant", content="again")))


def test_multi_turn_tool_responses_in_the_observation(env, tasks):
    task = next(t for t in of_kind(tasks, "multi_turn") if len(t.verifier["reference"][0]) > 1)  # parallel round
    first = reference_actions(task)[0]
    (obs, reward, terminated, truncated, info), = run(play(env, task, [first]))
    assert (reward, terminated, truncated) == (0.0, False, False) and info["turns"] == 1
    responses = obs.messages[len(task.prompt) + 1:]
    calls = task.verifier["reference"][0]
    assert [m.role for m in responses] == ["tool"] * len(calls)
    assert [m.name for m in responses] == [c["name"] for c in calls]
    for message, call in zip(responses, calls):
        assert message.content.startswith("<tool_response>\n") and message.content.endswith("\n</tool_response>")
        body = json.loads(message.content.removeprefix("<tool_response>").removesuffix("</tool_response>"))
        assert body["name"] == call["name"] and "error" not in body["content"]
        assert body["content"] == TOOLS[call["name"]].run(task.verifier["world"], **call["arguments"])
    assert obs.tools == task.tools


def test_multi_turn_with_openai_tool_calls_and_separate_reasoning(tasks):
    env = make("tool_calls", reasoning=True)
    task = of_kind(tasks, "multi_turn")[0].model_copy(update={"reasoning": True})
    actions = [Message(role="assistant", content="", reasoning="Look it up.",
                       tool_calls=[ToolCall(id=f"c{i}", name=c["name"], arguments=c["arguments"])
                                   for i, c in enumerate(calls)])
               for calls in task.verifier["reference"]]
    answer = f"Answer: {task.verifier['answer']}"
    actions.append(Message(role="assistant", content=answer, reasoning="Read the results."))
    steps = run(play(env, task, actions))
    assert [s[2] for s in steps] == [False] * (len(actions) - 1) + [True] and steps[-1][1] == 1.0
    no_think = Message(role="assistant", content="", tool_calls=actions[0].tool_calls)
    (_, reward, terminated, _, info), = run(play(env, task, [no_think]))
    assert (reward, terminated, info["score"]["error"]) == (0.0, True, "missing <think> block")


def test_multi_turn_bad_calls_get_error_responses(env, tasks):
    task = of_kind(tasks, "multi_turn")[0]
    offered = {tool.name for tool in task.tools}
    not_offered = next(name for name in TOOLS if name not in offered)  # implemented, but not in this task
    text = tagged(("get_weather", {"city": "Atlantis"}), ("get_weather", {"city": "Oslo", "unit": "kelvin"}),
                  ("convert_currency", {"amount": "ten", "from_currency": "USD", "to_currency": "EUR"}),
                  ("launch_rocket", {}), (not_offered, {}))
    (obs, reward, terminated, truncated, _), = run(play(env, task, [Message(role="assistant", content=text)]))
    assert (reward, terminated, truncated) == (0.0, False, False)
    errors = [json.loads(m.content.split("\n")[1])["content"]["error"] for m in obs.messages[-5:]]
    assert errors[0] == "no weather data for 'Atlantis'"
    assert errors[1] == "unit: must be one of ['celsius', 'fahrenheit']"
    assert errors[2] == "amount: expected type number, got string"
    assert errors[3] == "unknown function 'launch_rocket'"
    assert errors[4] == f"unknown function {not_offered!r}"


def test_multi_turn_truncates_after_max_turns(tasks):
    env = make("tool_calls", max_turns=2)
    task = of_kind(tasks, "multi_turn")[0]
    call = Message(role="assistant", content=tagged(("get_product", {"product": "desk lamp"})))
    steps = run(play(env, task, [call, call]))
    assert [(r, term, trunc) for _, r, term, trunc, _ in steps] == [(0.0, False, False), (0.0, False, True)]
    with pytest.raises(EpisodeOver):
        run(env.step(Message(role="assistant", content="Answer: 1")))


def test_multi_turn_malformed_call_ends_the_episode(env, tasks):
    task = of_kind(tasks, "multi_turn")[0]
    (_, reward, terminated, _, info), = run(play(env, task, [Message(role="assistant", content="<tool_call>{")]))
    assert (reward, terminated) == (0.0, True) and info["score"]["error"] == "tool call 1: <tool_call> is not closed"


# -- verify: calls, answers, reasoning ------------------------------------------------------------------------


def verify(env: ToolCallsEnv, task: Task, text: str, tool_calls: list[ToolCall] | None = None) -> Score:
    return env.verify(task, Completion(text=text, tool_calls=tool_calls))


def test_verify_openai_tool_calls(env, tasks):
    task = of_kind(tasks, "parallel")[0]
    calls = parse_calls(reference_actions(task)[0].content)
    structured = [ToolCall(name=c.name, arguments=c.arguments) for c in reversed(calls)]
    assert verify(env, task, "", structured).accepted
    assert not verify(env, task, "", structured[:1]).accepted


def test_verify_wrong_calls_say_what_failed(env, tasks):
    task = of_kind(tasks, "distractor")[0]
    ((name, accepted),) = task.verifier["calls"][0].items()
    required = TOOLS[name].spec.parameters["required"][0]
    call = parse_calls(reference_actions(task)[0].content)[0]
    del call.arguments[required]
    score = verify(env, task, render_call(call))
    assert not score.accepted and score.details["kind"] == "distractor"
    assert score.details["failures"][0]["argument"] == required
    assert score.details["failures"][0]["reason"] == "missing required argument"


def test_verify_partial_reward_config(tasks):
    partial = make("tool_calls", reward="partial")
    task = next(t for t in of_kind(tasks, "parallel") if len(t.verifier["calls"]) == 2)
    first, _ = parse_calls(reference_actions(task)[0].content)
    assert verify(partial, task, render_call(first)).reward == 0.5
    assert verify(make("tool_calls"), task, render_call(first)).reward == 0.0


def test_verify_no_call_tasks(env, tasks):
    task = of_kind(tasks, "no_call")[0]
    answer = task.verifier["answer"]
    assert verify(env, task, f"Easy.\nAnswer: {answer}").accepted
    assert verify(env, task, f"**Answer:** {answer:,}").accepted
    wrong = verify(env, task, f"Answer: {answer + 1}")
    assert not wrong.accepted and wrong.details["extracted"] == str(answer + 1)
    called = verify(env, task, tagged(("get_weather", {"city": "Oslo"})) + f"\nAnswer: {answer}")
    assert not called.accepted and called.details["reason"] == "1 tool call(s) where a final answer was due"
    missing = verify(env, task, str(answer))
    assert not missing.accepted and missing.error == "no 'Answer:' line"


def test_verify_multi_turn_final_answer(env, tasks):
    task = next(t for t in of_kind(tasks, "multi_turn") if t.verifier["tolerance"] == 0.01)  # a price abroad
    answer = task.verifier["answer"]
    assert verify(env, task, f"The conversion is done.\nAnswer: {answer + 0.01:.2f} in local currency").accepted
    assert not verify(env, task, f"Answer: {answer + 0.05:.2f}").accepted
    freezing = task.model_copy(update={"verifier": {**task.verifier, "answer": -3, "tolerance": 0}})
    assert verify(env, freezing, "Answer: \u22123 °C").accepted  # a typographic minus sign
    assert not verify(env, freezing, "Answer: 3 °C").accepted
    assert verify(env, freezing.model_copy(update={"verifier": {**freezing.verifier, "answer": 1234.5}}),
                  "Answer: 1,234.50").accepted


def test_verify_reasoning_mode(tasks):
    env = make("tool_calls", reasoning=True)
    task = of_kind(tasks, "single")[0].model_copy(update={"reasoning": True})
    calls = render_call(parse_calls(reference_actions(task)[0].content)[0])
    assert verify(env, task, f"<think>I'd write <tool_call>{{broken</tool_call>.</think>\n{calls}").accepted
    assert verify(env, task, calls).error == "missing <think> block"
    assert verify(env, task, f"{calls}<think>late</think>").error == "text before the <think> block"
    plain = of_kind(tasks, "single")[0]
    assert verify(make("tool_calls"), plain, f"<think>\n\n</think>{calls}").accepted  # empty block in direct mode
    direct = verify(make("tool_calls"), plain, f"<think>hmm</think>{calls}")
    assert direct.error == "reasoning block in direct (non-reasoning) mode"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 39), st.text(max_size=400), st.booleans(),
       st.lists(st.builds(ToolCall, name=st.text(min_size=1, max_size=12),
                          arguments=st.dictionaries(st.text(max_size=8), json_values, max_size=3)), max_size=2))
def test_verify_never_raises(partial_env, tasks, index, text, reasoning, tool_calls):
    task = tasks[150 + index].model_copy(update={"reasoning": reasoning})
    score = partial_env.verify(task, Completion(text=text, tool_calls=tool_calls or None))
    assert 0.0 <= score.reward <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(TOOLS)), st.dictionaries(st.sampled_from(["city", "unit", "amount", "from_currency",
       "to_currency", "product", "quantity", "date", "x"]), json_values | st.integers(-10**30, 10**30), max_size=4))
def test_tool_execution_never_raises(name, arguments):
    result = execute(make_world(random.Random(0)), set(TOOLS), Call(name, arguments))
    assert isinstance(result, dict)
    json.dumps(result)


# -- through a real server process ----------------------------------------------------------------------------


def test_multi_turn_episode_through_the_server(shared_server, env):
    index = next(i for i in range(100) if env.tasks().get("train", i).verifier["kind"] == "multi_turn")
    task = env.tasks().get("train", index)
    actions = reference_actions(task)
    structured = [Message(role="assistant", content="",
                          tool_calls=[ToolCall(name=c.name, arguments=c.arguments) for c in parse_calls(a.content)])
                  for a in actions[:-1]]

    async def episode(client: EnvServerClient):
        first = await client.reset("tool_calls", options={"split": "train", "index": index})
        assert first["info"]["task_id"] == task.task_id
        assert [t["name"] for t in first["observation"]["tools"]] == [t.name for t in task.tools]
        seen = len(task.prompt)
        for action in structured:
            result = await client.step(first["session_id"], action)
            assert (result["reward"], result["terminated"], result["truncated"]) == (0.0, False, False)
            new = result["observation"]["messages"][seen:]
            assert new[0]["tool_calls"] and [m["role"] for m in new[1:]] == ["tool"] * len(action.tool_calls)
            assert all("<tool_response>" in m["content"] and "error" not in m["content"] for m in new[1:])
            seen += len(new)
        final = await client.step(first["session_id"], actions[-1].content)
        assert (final["reward"], final["terminated"], final["truncated"]) == (1.0, True, False)
        assert final["info"]["score"]["accepted"] is True
        await client.close_session(first["session_id"])

        items = [(t, Completion(text=reference_actions(t)[0].content)) for t in env.tasks().iter("eval", limit=30)
                 if t.verifier["kind"] != "multi_turn"]
        remote = await client.verify("tool_calls", items)
        assert [s["accepted"] for s in remote] == [True] * len(items)

    async def main():
        async with EnvServerClient(shared_server.url) as client:
            await episode(client)

    run(main())
