"""The constraint registry: every verifiable instruction under its id, and the single-check entry point.

A constraint is a check function registered with `@constraint`:

    @constraint("punctuation:no_comma", "Do not use a single comma anywhere in your response.",
                family=IFEVAL, aspects={"comma"})
    def no_comma(text: str, args: NoArgs) -> bool:
        '''No comma anywhere (ASCII, full-width, ideographic, Arabic).'''
        return not any(c in text for c in COMMAS)

- the id and keyword-argument names are those of the benchmark the constraint comes from, so its data
  plugs straight in; the docstring says what the check means;
- the annotation of `args` is the pydantic model of the kwargs: bad kwargs fail naming the field;
- the template is the instruction text, formatted with the kwargs (lists joined with ", "), or a function
  of the parsed kwargs where plain formatting does not do;
- `generate(rng, prompt) -> kwargs` draws arguments for procedural tasks (constraints without arguments
  need none); `standalone=True` marks constraints whose instruction is a whole task (IFBench's `custom:*`),
  never drawn for procedural tasks;
- `aspects` name what part of a response the constraint governs. Two constraints sharing an aspect
  conflict (procedural tasks never combine them); the aspect "whole" (the constraint dictates the entire
  response) conflicts with everything; `excludes` adds conflicts by id where aspects do not capture one.

A check function receives normalised text (see `text.normalize`) that is not blank, and must never raise.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .text import loose_variants, normalize

IFEVAL, IFTRAIN, IFBENCH = "ifeval", "iftrain", "ifbench"
FAMILIES = (IFEVAL, IFTRAIN, IFBENCH)
WHOLE = "whole"

Generate = Callable[[random.Random, str], dict[str, Any]]

# Field types shared by the kwargs models.
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Phrase = Annotated[str, Field(pattern=r"\S")]  # a string that is not blank


class Args(BaseModel):
    """Keyword arguments of a constraint; unknown names are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(Args):
    pass


class ConstraintError(ValueError):
    """An unknown instruction id, or kwargs that do not fit the constraint (the message names the field)."""


@dataclass(frozen=True)
class Constraint:
    id: str
    family: str
    doc: str
    args: type[Args]
    template: str | Callable[[Any], str]
    fn: Callable[[str, Any], bool]
    generate: Generate
    standalone: bool
    aspects: frozenset[str]
    excludes: frozenset[str]

    def parse(self, kwargs: dict[str, Any] | None) -> Args:
        """Validated arguments. Keys whose value is None are dropped first: IFEval-format files (the
        Hugging Face copies, IFBench) give every instruction every kwarg name, unused ones as null."""
        if not isinstance(kwargs, dict | None):
            raise ConstraintError(f"{self.id}: kwargs must be an object, got {type(kwargs).__name__}")
        present = {k: v for k, v in (kwargs or {}).items() if v is not None}
        try:
            return self.args.model_validate(present)
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'kwargs'}: {e['msg']}" for e in exc.errors())
            raise ConstraintError(f"{self.id}: {fields}") from None

    def describe(self, kwargs: dict[str, Any] | None = None) -> str:
        """The instruction text for these kwargs."""
        args = self.parse(kwargs)
        if callable(self.template):
            return self.template(args)
        values = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in args.model_dump().items()}
        return self.template.format(**values)

    def follows(self, args: Args, texts: Iterable[str]) -> bool:
        """Whether any of the texts (the response, or its loose variants) satisfies the constraint."""
        return any(t.strip() and self.fn(t, args) for t in texts)


CONSTRAINTS: dict[str, Constraint] = {}


def _no_kwargs(rng: random.Random, prompt: str) -> dict[str, Any]:
    return {}


def constraint(id: str, template: str | Callable[[Any], str], *, family: str, aspects: Iterable[str],
               generate: Generate | None = None, standalone: bool = False, excludes: Iterable[str] = ()) -> Callable:
    """Register the decorated check function under `id` (see the module docstring)."""

    def register(fn: Callable[[str, Any], bool]) -> Callable[[str, Any], bool]:
        if id in CONSTRAINTS:
            raise ValueError(f"constraint {id!r} registered twice")
        args = get_type_hints(fn)["args"]
        if generate is None and args.model_fields and not standalone:
            raise ValueError(f"constraint {id!r} takes kwargs but has no generator")
        CONSTRAINTS[id] = Constraint(
            id=id, family=family, doc=inspect.getdoc(fn) or "", args=args, template=template, fn=fn,
            generate=generate or _no_kwargs, standalone=standalone,
            aspects=frozenset(aspects) | ({WHOLE} if standalone else set()), excludes=frozenset(excludes))
        return fn

    return register


def get(instruction_id: str) -> Constraint:
    try:
        return CONSTRAINTS[instruction_id]
    except KeyError:
        raise ConstraintError(f"unknown instruction id {instruction_id!r}") from None


def compatible(a: str, b: str) -> bool:
    """Whether two constraints can be asked of one response (see the module docstring)."""
    ca, cb = get(a), get(b)
    if a == b or a in cb.excludes or b in ca.excludes:
        return False
    return WHOLE not in ca.aspects | cb.aspects and not ca.aspects & cb.aspects


def conflicts(instruction_id: str) -> frozenset[str]:
    """The ids a constraint is never combined with (itself included)."""
    return frozenset(other for other in CONSTRAINTS if not compatible(instruction_id, other))


def check(instruction_id: str, kwargs: dict[str, Any] | None, response: str, *, loose: bool = False) -> bool:
    """Whether `response` follows one instruction, strictly or (loose=True) as IFEval's loose metric.

    The prompt that `combination:repeat_prompt` and the copy constraints need comes from kwargs
    `prompt_to_repeat`, as in IFEval data. Raises ConstraintError for an unknown id or bad kwargs, never
    for anything in `response`. A blank response follows no instruction.
    """
    c = get(instruction_id)
    args = c.parse(kwargs)
    text = normalize(response)
    return c.follows(args, loose_variants(text) if loose else [text])
