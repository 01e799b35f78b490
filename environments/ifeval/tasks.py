"""Where instruction-following tasks come from: constraints composed onto seed prompts, or IFEval-format files.

A task's verifier is IFEval's own shape, `{"instruction_id_list": [...], "kwargs": [...]}`, so a task made
here and a row of IFEval or IFBench data are checked the same way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from ..tasks import TaskSource, content_hash, split_of
from ..types import Message, Split, Task
from .registry import CONSTRAINTS, compatible, get
from .seeds import SEED_PROMPTS


def compose(rng: random.Random, *, max_constraints: int, families: Iterable[str]) -> dict[str, Any]:
    """One procedural task: a seed prompt followed by 1 to `max_constraints` mutually compatible
    instructions drawn from `families` (standalone constraints are whole tasks and never drawn)."""
    families = set(families)
    pool = sorted(cid for cid, c in CONSTRAINTS.items() if c.family in families and not c.standalone)
    wanted = rng.randint(1, max_constraints)
    chosen: list[str] = []
    for cid in rng.sample(pool, len(pool)):
        if all(compatible(cid, other) for other in chosen):
            chosen.append(cid)
            if len(chosen) == wanted:
                break
    seed = rng.choice(SEED_PROMPTS)
    kwargs = [CONSTRAINTS[cid].generate(rng, seed) for cid in chosen]
    instructions = " ".join(CONSTRAINTS[cid].describe(kw) for cid, kw in zip(chosen, kwargs))
    return {"prompt": f"{seed} {instructions}", "verifier": {"instruction_id_list": chosen, "kwargs": kwargs}}


def verifier_of(instruction_ids: Any, kwargs: Any) -> dict[str, JsonValue]:
    """An IFEval-style verifier, validated: ids known, kwargs fitting, null kwargs dropped.
    Raises ValueError (ConstraintError) naming the instruction and field at fault."""
    if not isinstance(instruction_ids, list) or not instruction_ids:
        raise ValueError("instruction_id_list must be a non-empty list")
    if not isinstance(kwargs, list) or len(kwargs) != len(instruction_ids):
        raise ValueError(f"kwargs must be a list of {len(instruction_ids)} objects, one per instruction")
    cleaned = []
    for cid, kw in zip(instruction_ids, kwargs):
        get(cid).parse(kw)
        cleaned.append({k: v for k, v in (kw or {}).items() if v is not None})
    return {"instruction_id_list": list(instruction_ids), "kwargs": cleaned}


class IFEvalFile(TaskSource):
    """Tasks from an IFEval-format JSONL file: one object per line with `prompt`, `instruction_id_list` and
    `kwargs` (IFEval's and IFBench's files as published; `key` and other fields are ignored). Rows go to
    `split` when given (a benchmark file is all "eval"), else to a row's own `split` field, else to the
    split its content hashes to, like every other task source. Rows are validated on load, so a bad file
    fails naming its line and field; with `skip_unknown`, rows using an instruction id this environment
    lacks are skipped instead (and counted in `skipped`): IFBench's file, for one, has two constraint types
    left out here."""

    def __init__(self, env: str, path: str | Path, *, split: Split | None = None, reasoning: bool = False,
                 skip_unknown: bool = False):
        self._splits: dict[str, list[Task]] = {"train": [], "eval": []}
        self.skipped = 0
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if skip_unknown and not set(row.get("instruction_id_list") or []) <= CONSTRAINTS.keys():
                        self.skipped += 1
                        continue
                    task = self._task(env, row, split, reasoning)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from None
                self._splits[task.split].append(task)

    @staticmethod
    def _task(env: str, row: dict[str, Any], split: Split | None, reasoning: bool) -> Task:
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise ValueError("prompt must be a non-empty string")
        fields = {"prompt": row["prompt"], "verifier": verifier_of(row.get("instruction_id_list"), row.get("kwargs"))}
        digest = content_hash(fields)
        return Task(task_id=f"{env}-{digest[:16]}", env=env, prompt=[Message(role="user", content=row["prompt"])],
                    split=split or row.get("split") or split_of(digest), verifier=fields["verifier"],
                    reasoning=reasoning)

    def size(self, split: Split) -> int | None:
        return len(self._splits[split])

    def get(self, split: Split, index: int) -> Task:
        return self._splits[split][index]


class WithSettings(TaskSource):
    """Another source's tasks with scoring settings (reward mode, length penalty) added to each verifier.
    Ids and splits stay those of the content, so changing a setting never moves a task between splits."""

    def __init__(self, source: TaskSource, settings: dict[str, JsonValue]):
        self.source, self.settings = source, settings

    def size(self, split: Split) -> int | None:
        return self.source.size(split)

    def get(self, split: Split, index: int) -> Task:
        task = self.source.get(split, index)
        return task.model_copy(update={"verifier": {**task.verifier, **self.settings}})
