"""The typed state of one datapoint, and the facts a graph plans with, derived from the types.

A datapoint grows as a walk moves through the graph: a seed, then a transformed passage, a persona, an
instruction, an answer, judge verdicts. Nodes never name facts they invented: every fact is read off these
types. A present optional part gives its field name as a fact ("passage"); a Literal or bool field of a
present part gives "part.field=value" ("instruction.mode=contextual", "answer.refined=false"). Free-text
properties ("long passage") become such fields set by a cheap node, which keeps the vocabulary finite.
"""

from __future__ import annotations

import types
import typing
from difflib import get_close_matches
from typing import Any, Literal, Self, Union

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields replaced, validated (unlike `model_copy`, which is also slower; a walk
        makes several of these per node)."""
        return type(self)(**{**self.__dict__, **changes})


class Seed(Part):
    seed_id: str = Field(min_length=1)
    kind: Literal["passage", "domain"] = "passage"  # a text to work from, or a domain to expand into prompts
    text: str = Field(min_length=1)
    source: str = ""
    license: str = "unknown"  # carried to every walk, sample and exported conversation
    meta: dict[str, JsonValue] = Field(default_factory=dict)


class Passage(Part):
    text: str
    form: str  # the transformation that made it ("original": the seed as it is)


class Persona(Part):
    name: str
    description: str


class Topic(Part):
    path: list[str]  # root domain → … → the leaf a prompt was written for


class Instruction(Part):
    kind: str  # an instruction kind of the catalog
    mode: Literal["contextual", "standalone"]  # contextual: answered with the passage in view
    text: str


class Answer(Part):
    text: str
    style: str  # the answer generator of the catalog
    refined: bool = False


class Verdict(Part):
    node: str
    rubric: str
    attempt: int
    scores: dict[str, int]
    passed: bool
    feedback: str = ""


class Datapoint(Part):
    seed: Seed
    passage: Passage | None = None
    persona: Persona | None = None
    topic: Topic | None = None
    instruction: Instruction | None = None
    answer: Answer | None = None
    verdicts: tuple[Verdict, ...] = ()


# -- facts ----------------------------------------------------------------------------------------------
def _values(annotation: Any) -> tuple[str, ...] | None:
    """The finite values a field can take, as fact strings, or None for free-valued fields."""
    if annotation is bool:
        return ("false", "true")
    if typing.get_origin(annotation) is Literal:
        return tuple(str(v) for v in typing.get_args(annotation))
    return None


def _part_type(annotation: Any) -> type[Part] | None:
    """The Part class of a `Part` or `Part | None` field."""
    if isinstance(annotation, type) and issubclass(annotation, Part):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        parts = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, Part)]
        return parts[0] if len(parts) == 1 else None
    return None


def _plan() -> list[tuple[str, type[Part], list[tuple[str, tuple[str, ...]]]]]:
    """Per part of a Datapoint: its field name, its class, and its finite-valued fields with their values."""
    plan = []
    for name, field in Datapoint.model_fields.items():
        part = _part_type(field.annotation)
        if part is not None:
            finite = [(f, values) for f, info in part.model_fields.items()
                      if (values := _values(info.annotation)) is not None]
            plan.append((name, part, finite))
    return plan


_PLAN = _plan()
VOCABULARY: frozenset[str] = frozenset(
    [name for name, _, _ in _PLAN] + [f"{name}.{f}={v}" for name, _, finite in _PLAN for f, values in finite for v in values])


def facts(dp: Datapoint) -> frozenset[str]:
    """The facts that hold for a datapoint (its abstract state)."""
    out = []
    for name, _, finite in _PLAN:
        part = getattr(dp, name)
        if part is None:
            continue
        out.append(name)
        for f, _ in finite:
            value = getattr(part, f)
            out.append(f"{name}.{f}={str(value).lower() if isinstance(value, bool) else value}")
    return frozenset(out)


def check_facts(names: typing.Iterable[str], where: str) -> frozenset[str]:
    """The given fact names, or a ValueError naming an unknown one (a typo fails when the node is built)."""
    names = frozenset(names)
    for name in sorted(names - VOCABULARY):
        close = get_close_matches(name, VOCABULARY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known facts: {', '.join(sorted(VOCABULARY))}"
        raise ValueError(f"{where}: unknown fact {name!r}{hint}")
    return names


def start_states(requires: frozenset[str], forbids: frozenset[str]) -> list[frozenset[str]]:
    """Every abstract state a datapoint can be in that satisfies a source condition: the required parts (and
    the seed, which is always there) present, each of their finite fields at each of its values."""
    present = {f.split(".")[0] for f in requires} | {"seed"}
    states: list[frozenset[str]] = [frozenset()]
    for name, _, finite in _PLAN:
        if name not in present:
            continue
        states = [s | {name} for s in states]
        for f, values in finite:
            states = [s | {f"{name}.{f}={v}"} for s in states for v in values]
    return [s for s in states if requires <= s and not (forbids & s)]
