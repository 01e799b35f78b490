"""Node kinds: each a Datapoint → Datapoint step with PDDL-style preconditions and effects over facts.

A node applies to a state (a set of facts, see state.py) when every fact it requires holds and none it
forbids does; running it moves the state by one of its declared outcomes (facts added and removed). Edges
between nodes are never wired: one node can follow another when the state the first leaves satisfies the
second. The walk checks each outcome at run time, so a node that does not do what it declares fails loudly.

Kinds: `FnNode` (plain Python), `LLMNode` (a prompt template, a system prompt and a parser), `Refine`
(suggest → edit). `Judged` (judge.py) wraps a node with a rubric judge; a `Graph` (graph.py) is a node too.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.runtime import new_context
from pydantic import BaseModel, ValidationError

from .state import Answer, Datapoint, check_facts

if TYPE_CHECKING:
    from .walk import WalkContext

State = frozenset[str]
_TEMPLATES = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
RETRY_NOTE = ("A reviewer rejected your previous attempt with this feedback:\n{feedback}\n"
              "Write a new version that fixes these problems.")


def strip_retry_note(prompt: str) -> str:
    """A prompt without the feedback a retry appended (the training conversation never shows it)."""
    return prompt.split("\n\n" + RETRY_NOTE.split("{feedback}")[0], 1)[0]


class NodeFailed(Exception):
    """A node could not produce its output (unusable model output, a broken postcondition, a judge that
    never passed). The walk ends with `status`; this is data about the datapoint, not an infrastructure error."""

    def __init__(self, reason: str, status: str = "node_failed"):
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Effect:
    adds: frozenset[str]
    deletes: frozenset[str] = frozenset()

    def apply(self, state: State) -> State:
        return (state - self.deletes) | self.adds


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def template(source: str, where: str) -> jinja2.Template:
    try:
        return _TEMPLATES.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"{where}: bad template (line {exc.lineno}): {exc.message}") from exc


def render(tmpl: jinja2.Template, variables: dict[str, Any]) -> str:
    """`tmpl.render(**variables)` at a fraction of the cost: the variables are the context as they are, with
    no copy of Jinja's globals (the catalog's templates use filters and tests, never globals)."""
    context = new_context(_TEMPLATES, tmpl.name, tmpl.blocks, variables, shared=True)
    return _TEMPLATES.concat(tmpl.root_render_func(context))  # type: ignore[attr-defined]


class Node(ABC):
    """A step of the graph. `requires`/`forbids` are facts; each outcome is an Effect (most nodes have one)."""

    def __init__(self, name: str, *, requires: Iterable[str] = (), forbids: Iterable[str] = (),
                 adds: Iterable[str] = (), deletes: Iterable[str] = (), outcomes: Sequence[Effect] | None = None,
                 weight: float = 1.0, family: str = ""):
        if not name or any(c in name for c in " >\n"):
            raise ValueError(f"node name {name!r}: must be non-empty without spaces or '>'")
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"node {name}: weight must be a finite number > 0, got {weight}")
        self.name, self.weight, self.family = name, float(weight), family or name.split("/")[0]
        self.requires = check_facts(requires, f"node {name}: requires")
        self.forbids = check_facts(forbids, f"node {name}: forbids")
        if outcomes is None:
            outcomes = [Effect(frozenset(adds), frozenset(deletes))]
        self.outcomes = tuple(Effect(check_facts(e.adds, f"node {name}: adds"),
                                     check_facts(e.deletes, f"node {name}: deletes")) for e in outcomes)
        if not self.outcomes:
            raise ValueError(f"node {name}: needs at least one outcome")

    def applies(self, state: State) -> bool:
        return self.requires <= state and not (self.forbids & state)

    def successors(self, state: State) -> tuple[State, ...]:
        """The states this node can leave behind when run from `state`."""
        return tuple(dict.fromkeys(e.apply(state) for e in self.outcomes))

    def identity(self) -> dict[str, Any]:
        """Everything that determines the node's behaviour; its hash is the node's version."""
        return {"kind": type(self).__name__, "name": self.name, "weight": self.weight,
                "requires": sorted(self.requires), "forbids": sorted(self.forbids),
                "outcomes": [[sorted(e.adds), sorted(e.deletes)] for e in self.outcomes]}

    @cached_property
    def version(self) -> str:
        return fingerprint(self.identity())

    @abstractmethod
    async def run(self, dp: Datapoint, ctx: WalkContext) -> Datapoint:
        """Produce the next datapoint; raise NodeFailed when the output is unusable."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class FnNode(Node):
    """Plain Python: `fn(datapoint, rng) -> datapoint`, e.g. sampling a persona or classifying a passage."""

    def __init__(self, name: str, fn: Callable[[Datapoint, random.Random], Datapoint], **schema: Any):
        super().__init__(name, **schema)
        self.fn = fn

    def identity(self) -> dict[str, Any]:
        fn, bound = self.fn, []
        while isinstance(fn, partial):  # the function's source and the arguments bound to it
            bound.append(repr((fn.args, fn.keywords)))
            fn = fn.func
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = fn.__qualname__
        return {**super().identity(), "fn": source, "bound": bound}

    async def run(self, dp: Datapoint, ctx: WalkContext) -> Datapoint:
        return self.fn(dp, ctx.rng)


# -- parsers of model output ----------------------------------------------------------------------------
_FENCE = re.compile(r"^```[a-zA-Z]*\n?|\n?```$")


def parse_text(text: str) -> str:
    """The response as plain text (code fences around the whole answer dropped); empty is a failure."""
    out = _FENCE.sub("", text.strip()).strip()
    if not out:
        raise NodeFailed("the model returned an empty response")
    return out


def parse_json(text: str, model: type[BaseModel]) -> BaseModel:
    """The first JSON object in the response, validated by `model`."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise NodeFailed(f"no JSON object in the response (expected {model.__name__})")
    try:
        return model.model_validate_json(text[start:end + 1])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3])
        raise NodeFailed(f"structured output does not fit {model.__name__}: {problems}") from None


class LLMNode(Node):
    """One model call: a system prompt and a Jinja user template rendered from the datapoint's parts (and
    `params`), the response parsed as text or as `response_model` JSON, and `apply(datapoint, parsed)`.

    On a retry (inside `Judged`) the judge's feedback is appended to the prompt and the sampling seed
    changes with the attempt number."""

    def __init__(self, name: str, *, role: str, system: str, prompt: str,
                 apply: Callable[[Datapoint, Any], Datapoint], response_model: type[BaseModel] | None = None,
                 params: dict[str, Any] | None = None, **schema: Any):
        super().__init__(name, **schema)
        self.role, self.system, self.prompt = role, system, prompt
        self._template = template(prompt, f"node {name}: prompt")
        self.apply, self.response_model, self.params = apply, response_model, dict(params or {})

    def identity(self) -> dict[str, Any]:
        schema = self.response_model.model_json_schema() if self.response_model else None
        return {**super().identity(), "role": self.role, "system": self.system, "prompt": self.prompt,
                "params": self.params, "response_schema": schema}

    def render(self, dp: Datapoint, ctx: WalkContext) -> str:
        try:
            text = render(self._template, {**dp.__dict__, **self.params})
        except jinja2.UndefinedError as exc:
            raise NodeFailed(f"prompt of {self.name}: {exc.message}") from None
        if ctx.feedback:
            text += "\n\n" + RETRY_NOTE.format(feedback=ctx.feedback)
        return text

    async def run(self, dp: Datapoint, ctx: WalkContext) -> Datapoint:
        record = await ctx.llm.complete(ctx, self, self.role, self.system, self.render(dp, ctx))
        if self.response_model is None:
            return self.apply(dp, parse_text(record.response))
        parsed = parse_json(record.response, self.response_model)
        record.parsed = parsed.model_dump(mode="json")
        return self.apply(dp, parsed)


class Refine(Node):
    """Suggest → edit on the answer: one call lists concrete improvements, a second rewrites the answer
    applying them. Runs once per answer (answer.refined goes from false to true)."""

    def __init__(self, name: str, *, suggest_system: str, suggest_prompt: str, edit_system: str, edit_prompt: str,
                 weight: float = 1.0, role: str = "refine"):
        super().__init__(name, requires={"answer.refined=false"}, adds={"answer.refined=true"},
                         deletes={"answer.refined=false"}, weight=weight, family="refine")
        self.role = role
        self.suggest_system, self.edit_system = suggest_system, edit_system
        self.suggest_prompt, self.edit_prompt = suggest_prompt, edit_prompt
        self._suggest = template(suggest_prompt, f"node {name}: suggest_prompt")
        self._edit = template(edit_prompt, f"node {name}: edit_prompt")

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "role": self.role, "suggest": [self.suggest_system, self.suggest_prompt],
                "edit": [self.edit_system, self.edit_prompt]}

    async def run(self, dp: Datapoint, ctx: WalkContext) -> Datapoint:
        parts = dp.__dict__
        suggest = await ctx.llm.complete(ctx, self, self.role, self.suggest_system, render(self._suggest, parts))
        suggestions = parse_text(suggest.response)
        edit = await ctx.llm.complete(ctx, self, self.role, self.edit_system,
                                      render(self._edit, {**parts, "suggestions": suggestions}))
        text = parse_text(edit.response)
        answer: Answer = dp.answer  # type: ignore[assignment]  # guaranteed by the precondition
        return dp.replace(answer=answer.replace(text=text, refined=True))
