"""The rubric judge loop: a judge model scores a node's output on a rubric, code decides pass or fail from
thresholds, and a rejected output is regenerated with the judge's feedback and a new seed, up to a cap.

Rubrics are data (catalog/rubrics.yaml), one per node family, so the judge of a transformation checks
faithfulness to the source while the judge of an answer checks that it answers the instruction. The judge
replies with JSON scores per criterion (or, from small models, "criterion: N" lines); pass/fail is never
taken from the model.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

import jinja2
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .nodes import Node, NodeFailed, render, template
from .state import Datapoint, Verdict

if TYPE_CHECKING:
    from .walk import WalkContext


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z_]+$")
    description: str
    min_score: int = Field(default=3, ge=1)  # a score below this fails the verdict


class Rubric(BaseModel):
    """What a judge is told and how its scores are turned into a verdict."""

    model_config = ConfigDict(extra="forbid")
    name: str
    system: str  # who the judge is and what it checks
    prompt: str  # Jinja template of what is judged, rendered from the datapoint's parts
    criteria: list[Criterion] = Field(min_length=1)
    scale: int = Field(default=5, ge=2)
    pass_mean: float = 3.5  # and the mean score must reach this

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise ValueError(f"rubric {self.name}: duplicate criteria in {names}")
        for c in self.criteria:
            if c.min_score > self.scale:
                raise ValueError(f"rubric {self.name}: {c.name}.min_score {c.min_score} exceeds the scale {self.scale}")
        self._template  # a bad template fails when the catalog loads
        return self

    # Built once per rubric, as cached properties: plain attribute reads (pydantic's private attributes cost
    # microseconds each, on every judge call).
    @cached_property
    def _template(self) -> jinja2.Template:
        return template(self.prompt, f"rubric {self.name}: prompt")

    @cached_property
    def system_prompt(self) -> str:
        lines = "\n".join(f"- {c.name}: {c.description}" for c in self.criteria)
        example = json.dumps({"scores": {c.name: self.scale for c in self.criteria}, "feedback": "..."})
        return (f"{self.system}\n\nScore each criterion from 1 (worst) to {self.scale} (best):\n{lines}\n\n"
                f"Then give one or two sentences of feedback saying what to fix. Reply with JSON only, like:\n"
                f"{example}")

    def user_prompt(self, parts: dict[str, Any]) -> str:
        return render(self._template, parts)

    def parse(self, text: str) -> tuple[dict[str, int], str] | None:
        """Scores for every criterion and the feedback, from JSON or "criterion: N" lines; None if any
        criterion is missing or off the scale."""
        scores: dict[str, Any] = {}
        feedback = ""
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                doc = orjson.loads(text[start:end + 1])
                if isinstance(doc, dict):
                    raw = doc.get("scores", doc)
                    scores = {str(k).lower(): v for k, v in raw.items()} if isinstance(raw, dict) else {}
                    feedback = str(doc.get("feedback", ""))
            except orjson.JSONDecodeError:
                pass
        out: dict[str, int] = {}
        for c in self.criteria:
            value = scores.get(c.name)
            if value is None and (m := re.search(rf"\b{c.name}\b\W{{0,6}}(\d+)", text, re.IGNORECASE)):
                value = int(m[1])
            if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= self.scale:
                return None
            out[c.name] = int(value)
        if not feedback and (m := re.search(r"feedback\W{0,6}(.+)", text, re.IGNORECASE)):
            feedback = m[1].strip().strip('"')
        return out, feedback

    def passes(self, scores: dict[str, int]) -> bool:
        mean = sum(scores.values()) / len(scores)
        return all(scores[c.name] >= c.min_score for c in self.criteria) and mean >= self.pass_mean

    def reward(self, scores: dict[str, int]) -> float:
        """The mean score mapped onto [0, 1]."""
        return (sum(scores.values()) / len(scores) - 1) / (self.scale - 1)

    def verdict(self, text: str, node: str, attempt: int) -> Verdict:
        parsed = self.parse(text)
        if parsed is None:  # an unreadable verdict rejects the attempt; there is no feedback to pass on
            return Verdict(node=node, rubric=self.name, attempt=attempt, scores={}, passed=False)
        scores, feedback = parsed
        if not feedback:
            feedback = "; ".join(f"{c.name} scored {scores[c.name]}: {c.description}" for c in self.criteria
                                 if scores[c.name] < c.min_score)
        return Verdict(node=node, rubric=self.name, attempt=attempt, scores=scores, passed=self.passes(scores),
                       feedback=feedback)


class Judged(Node):
    """`inner` with a judge: up to `max_attempts` generations, each judged on `rubric`; the first that
    passes is kept. Each attempt's calls are marked accepted or not (rejected/accepted pairs on the same
    prompt are preference data); a node whose attempts all fail ends the walk as `judge_exhausted`."""

    def __init__(self, inner: Node, rubric: Rubric, *, max_attempts: int = 3, role: str = "judge"):
        if max_attempts < 1:
            raise ValueError(f"node {inner.name}: max_attempts must be >= 1, got {max_attempts}")
        super().__init__(inner.name, requires=inner.requires, forbids=inner.forbids, outcomes=inner.outcomes,
                         weight=inner.weight, family=inner.family)
        self.inner, self.rubric, self.max_attempts, self.role = inner, rubric, max_attempts, role

    def identity(self) -> dict[str, Any]:
        return {"kind": "Judged", "inner": self.inner.identity(), "rubric": self.rubric.model_dump(),
                "max_attempts": self.max_attempts, "role": self.role}

    async def run(self, dp: Datapoint, ctx: WalkContext) -> Datapoint:
        feedback: str | None = None
        for attempt in range(self.max_attempts):
            sub = ctx.retry(attempt, feedback)
            first = len(ctx.calls)
            try:
                out = await self.inner.run(dp, sub)
            except NodeFailed as exc:
                if exc.status != "node_failed" or attempt == self.max_attempts - 1:
                    raise
                for record in ctx.calls[first:]:
                    record.accepted = False
                feedback = str(exc)
                continue
            verdict = await self.judge(out, sub)
            for record in ctx.calls[first:]:
                record.accepted, record.judge_scores = verdict.passed, verdict.scores
            if verdict.passed:
                return out.replace(verdicts=(*out.verdicts, verdict))
            feedback = verdict.feedback or None
        raise NodeFailed(f"{self.name}: the judge rejected all {self.max_attempts} attempts (last feedback: "
                         f"{feedback or 'none'})", status="judge_exhausted")

    async def judge(self, dp: Datapoint, ctx: WalkContext) -> Verdict:
        record = await ctx.llm.complete(ctx, self, self.role, self.rubric.system_prompt,
                                        self.rubric.user_prompt(dp.__dict__))
        verdict = self.rubric.verdict(record.response, ctx.prefix + self.name, ctx.attempt)
        record.parsed = {"scores": verdict.scores, "feedback": verdict.feedback, "passed": verdict.passed}
        return verdict
