"""The DataForge graph built from the catalog: seed → transformation → (persona) → instruction → answer
(→ refinement), with taxonomy expansion for domain seeds. Which catalog items are used, their weights and
which families are judged come from `GraphOptions`; building is a pure function of (catalog, options).

    source ─┬─ transform/* ──┬─ instruct/<contextual> ─────────────┬─ respond ─ sink
            │ (seed.kind=    └─ persona/* ─ instruct/<any kind> ────┤  (answer/* → refine?)
            │  passage)                                             │
            └─ taxonomy/expand (seed.kind=domain) ──────────────────┘

`respond` is a nested graph (answer, then optionally refine); standalone instructions are always written
in a persona's voice, which is how persona-grounded prompts enter the data.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .catalog import Catalog, load_catalog
from .graph import Graph
from .judge import Judged
from .nodes import FnNode, LLMNode, Node, Refine
from .state import Answer, Datapoint, Instruction, Passage, Persona
from .taxonomy import TaxonomyNode

Family = Literal["transform", "instruct", "taxonomy", "answer"]
RUBRIC_OF = {"transform": "transform", "instruct": "instruction", "taxonomy": "instruction",
             "answer": "answer"}


class JudgeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    families: list[Family] = ["transform", "instruct", "taxonomy", "answer"]
    max_attempts: int = Field(default=3, ge=1, le=10)


class GraphOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transformations: list[str] | None = None  # catalog ids; None: all
    instructions: list[str] | None = None
    answerers: list[str] | None = None
    original_weight: float = Field(default=2.0, gt=0)  # transform/original: the seed passage as it is
    personas: bool = True  # off: no standalone instructions from passages
    taxonomy: bool = True  # off: domain seeds are not accepted
    taxonomy_depth: int = Field(default=2, ge=1, le=5)
    taxonomy_breadth: int = Field(default=5, ge=1, le=20)
    refine: bool = True
    finish_weight: float = Field(default=1.0, gt=0)  # after an answer: finish (this) or refine (its weight)
    weights: dict[str, float] = Field(default_factory=dict)  # node name → weight
    judge: JudgeOptions | None = Field(default_factory=JudgeOptions)


class PersonaReply(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=500)


def _pick(items: list, wanted: list[str] | None, field: str) -> list:
    if wanted is None:
        return items
    known = {i.id: i for i in items}
    if unknown := [w for w in wanted if w not in known]:
        raise ValueError(f"graph.{field}: unknown ids {unknown}; known: {', '.join(sorted(known))}")
    return [known[w] for w in wanted]


def _set_passage(form: str, dp: Datapoint, text: str) -> Datapoint:
    return dp.replace(passage=Passage(text=text, form=form))


def _original(dp: Datapoint, rng: random.Random) -> Datapoint:
    return dp.replace(passage=Passage(text=dp.seed.text, form="original"))


def _set_persona(dp: Datapoint, reply: PersonaReply) -> Datapoint:
    return dp.replace(persona=Persona(name=reply.name, description=reply.description))


def _sample_persona(personas: list[Persona], dp: Datapoint, rng: random.Random) -> Datapoint:
    return dp.replace(persona=rng.choice(personas))


def _set_instruction(kind: str, mode: str, dp: Datapoint, text: str) -> Datapoint:
    return dp.replace(instruction=Instruction(kind=kind, mode=mode, text=text))


def _set_answer(style: str, dp: Datapoint, text: str) -> Datapoint:
    return dp.replace(answer=Answer(text=text, style=style))


def build_graph(catalog: Catalog | None = None, options: GraphOptions | None = None) -> Graph:
    """The DataForge graph of a catalog (default: the built-in one) under `options` (default: all of it)."""
    catalog, opts = catalog or load_catalog(), options or GraphOptions()
    used: set[str] = set()

    def weight(name: str, default: float) -> float:
        used.add(name)
        return opts.weights.get(name, default)

    def judged(node: Node) -> Node:
        if opts.judge is None or node.family not in opts.judge.families:
            return node
        return Judged(node, catalog.rubrics[RUBRIC_OF[node.family]], max_attempts=opts.judge.max_attempts)

    t = catalog.transformations
    nodes: list[Node] = [FnNode("transform/original", _original, requires={"seed.kind=passage"}, forbids={"passage"},
                                adds={"passage"}, weight=weight("transform/original", opts.original_weight),
                                family="transform")]
    nodes += [judged(LLMNode(
        f"transform/{item.id}", role="transform", family="transform", system=t.system, prompt=item.prompt or t.prompt,
        params={"form": item.form, "guidance": item.guidance}, apply=partial(_set_passage, item.id),
        requires={"seed.kind=passage"}, forbids={"passage"}, adds={"passage"},
        weight=weight(f"transform/{item.id}", item.weight))) for item in _pick(t.items, opts.transformations, "transformations")]

    if opts.personas:
        personas = [Persona(name=p.name, description=p.description) for p in catalog.personas.items]
        p = catalog.prompts.persona_from_passage
        condition = {"requires": {"passage"}, "forbids": {"persona", "instruction"}, "adds": {"persona"}}
        nodes.append(FnNode("persona/catalog", partial(_sample_persona, personas), family="persona",
                            weight=weight("persona/catalog", 4.0), **condition))
        nodes.append(judged(LLMNode("persona/from_passage", role="persona", family="persona", system=p.system,
                                    prompt=p.prompt, response_model=PersonaReply, apply=_set_persona,
                                    weight=weight("persona/from_passage", 2.0), **condition)))

    ins = catalog.instructions
    for kind in _pick(ins.items, opts.instructions, "instructions"):
        if kind.mode == "standalone" and not opts.personas:
            continue
        nodes.append(judged(LLMNode(
            f"instruct/{kind.id}", role="instruct", family="instruct", system=ins.system,
            prompt=ins.contextual_prompt if kind.mode == "contextual" else ins.standalone_prompt,
            params={"description": kind.description, "guidance": kind.guidance},
            apply=partial(_set_instruction, kind.id, kind.mode),
            requires={"passage"} if kind.mode == "contextual" else {"passage", "persona"}, forbids={"instruction"},
            adds={"instruction", f"instruction.mode={kind.mode}"}, weight=weight(f"instruct/{kind.id}", kind.weight))))

    if opts.taxonomy:
        pr = catalog.prompts
        nodes.append(judged(TaxonomyNode(
            "taxonomy/expand", expand_system=pr.taxonomy_expand.system, expand_prompt=pr.taxonomy_expand.prompt,
            prompt_system=pr.taxonomy_prompt.system, prompt_prompt=pr.taxonomy_prompt.prompt, depth=opts.taxonomy_depth,
            breadth=opts.taxonomy_breadth, weight=weight("taxonomy/expand", 1.0))))

    ans = catalog.answerers
    respond: list[Node] = [judged(LLMNode(
        f"answer/{a.id}", role="answer", family="answer", system=a.system, prompt=ans.prompt,
        apply=partial(_set_answer, a.id), requires={"instruction"}, forbids={"answer"},
        adds={"answer", "answer.refined=false"}, weight=weight(f"answer/{a.id}", a.weight)))
        for a in _pick(ans.items, opts.answerers, "answerers")]
    if opts.refine:
        s, e = catalog.prompts.refine_suggest, catalog.prompts.refine_edit
        respond.append(Refine("refine", suggest_system=s.system, suggest_prompt=s.prompt, edit_system=e.system,
                              edit_prompt=e.prompt, weight=weight("refine", 1.0)))
    nodes.append(Graph("respond", respond, source=["instruction"], source_forbids=["answer"], sink=["answer"],
                       finish_weight=opts.finish_weight))

    if unknown := sorted(set(opts.weights) - used):
        raise ValueError(f"graph.weights: no node named {unknown}")
    source = ["seed"] if opts.taxonomy else ["seed", "seed.kind=passage"]
    return Graph("dataforge", nodes, source=source, sink=["answer"])
