"""The JSON-schema environment: write a document that fits a schema, or repair one that does not."""

from __future__ import annotations

import random
from typing import Any

from ..env import Env
from ..reasoning import parse_reasoning
from ..tasks import ProceduralTasks, TaskSource
from ..types import Completion, Score, Split, Task
from .files import SchemaFiles
from .tasks import MODES, procedural_task
from .verdict import judge


class JSONSchemaEnv(Env):
    """Structured output: produce or repair a JSON document that conforms to a JSON Schema, with given values.

    Schemas come from random Pydantic models (nested objects, bounded arrays, enums and literals, optional
    and nullable fields, plain and discriminated unions, numeric and string constraints, formats, defaults,
    additionalProperties rules), or from files of JSON Schemas. Reward is binary: a valid document that
    holds every required value (generate) or keeps every untouched value (repair). jsonschema decides;
    pydantic's verdict on the same document is reported alongside.

    Config: `mode` ("generate", "repair" or "mixed", default "mixed"), `schemas` (a directory of *.json
    schemas or a JSONL file of them: generate tasks from those instead), `eval_size` (procedural eval split,
    default 500), `reasoning` (tasks ask for a <think> block), `length_budget` (characters; a completion
    longer than this loses reward linearly, up to `length_penalty` of it at twice the budget; default off),
    `length_penalty` (default 0.5).
    """

    version = 0

    def __init__(self, name: str, *, mode: str = "mixed", schemas: str | None = None, eval_size: int = 500,
                 reasoning: bool = False, length_budget: int | None = None, length_penalty: float = 0.5):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if length_budget is not None and length_budget < 1:
            raise ValueError(f"length_budget must be a positive number of characters, got {length_budget}")
        if not 0.0 <= length_penalty <= 1.0:
            raise ValueError(f"length_penalty must be between 0 and 1, got {length_penalty}")
        super().__init__(name, mode=mode, schemas=schemas, eval_size=eval_size, reasoning=reasoning,
                         length_budget=length_budget, length_penalty=length_penalty)
        self._mode, self._reasoning = mode, reasoning
        if schemas is not None:
            source: TaskSource = SchemaFiles(name, schemas, reasoning=reasoning)
        else:
            source = ProceduralTasks(name, self._generate, eval_size=eval_size)
        if length_budget is not None:
            source = _WithVerifierSettings(source, {"length_budget": length_budget, "length_penalty": length_penalty})
        self._source = source

    def _generate(self, rng: random.Random) -> dict[str, Any]:
        return {**procedural_task(rng, self._mode), "reasoning": self._reasoning}

    def tasks(self) -> TaskSource:
        return self._source

    def verify(self, task: Task, completion: Completion) -> Score:
        parsed = parse_reasoning(completion.text, required=task.reasoning)
        if parsed.error:
            return Score(reward=0.0, accepted=False, error=parsed.error)
        v = task.verifier
        score = judge(v["schema"], parsed.answer, spec=v.get("spec"), values=v.get("values"))
        budget = v.get("length_budget")
        if score.accepted and budget is not None and len(completion.text) > budget:
            excess = min(1.0, (len(completion.text) - budget) / budget)
            lost = float(v.get("length_penalty", 0.5)) * excess
            details = {**score.details, "length_penalty": lost}
            score = score.model_copy(update={"reward": 1.0 - lost, "details": details})
        return score


class _WithVerifierSettings(TaskSource):
    """Another source's tasks with scoring settings added to each verifier. Added after the task is made,
    so the settings change neither task ids nor splits."""

    def __init__(self, source: TaskSource, settings: dict[str, Any]):
        self.source, self.settings = source, settings

    def size(self, split: Split) -> int | None:
        return self.source.size(split)

    def get(self, split: Split, index: int) -> Task:
        task = self.source.get(split, index)
        return task.model_copy(update={"verifier": {**task.verifier, **self.settings}})
