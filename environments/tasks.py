"""Task sources: procedural generation from a seed, or any `datasets`-loadable file.

Train and eval splits never overlap because a task's split is a function of its *content* (a stable hash
of prompt and verifier), not of its position: the same problem generated twice, or present twice in a
file, always lands in the same split.
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .types import Message, Split, Task

EVAL_PERCENT = 10  # share of content hashes that belong to the eval split


def content_hash(fields: dict[str, Any]) -> str:
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def split_of(digest: str) -> Split:
    return "eval" if int(digest[:8], 16) % 100 < EVAL_PERCENT else "train"


def _task(env: str, fields: dict[str, Any], split: Split, task_id: str | None = None) -> Task:
    prompt = fields["prompt"]
    if isinstance(prompt, str):
        prompt = [Message(role="user", content=prompt)]
    return Task(env=env, split=split, task_id=task_id or f"{env}-{content_hash(fields)[:16]}", **{**fields, "prompt": prompt})


class TaskSource(ABC):
    @abstractmethod
    def get(self, split: Split, index: int) -> Task:
        """The index-th task of a split; deterministic."""

    @abstractmethod
    def size(self, split: Split) -> int | None:
        """Number of tasks in a split, None when unbounded (procedural train split)."""

    def iter(self, split: Split, limit: int | None = None) -> Iterator[Task]:
        n = self.size(split)
        bound = n if limit is None else limit if n is None else min(n, limit)
        if bound is None:
            raise ValueError(f"split {split!r} is unbounded: give a limit")
        return (self.get(split, i) for i in range(bound))


class ProceduralTasks(TaskSource):
    """Tasks made by `generate(rng) -> {"prompt": ..., "verifier": {...}, ...}` from a seeded RNG.

    The index-th task of a split is the first draw, over attempts 0, 1, …, whose content hashes into that
    split; the eval split is capped at `eval_size` tasks so benchmarks are fixed.
    """

    def __init__(self, env: str, generate: Callable[[random.Random], dict[str, Any]], *, eval_size: int = 500):
        self.env, self.generate, self.eval_size = env, generate, eval_size

    def size(self, split: Split) -> int | None:
        return self.eval_size if split == "eval" else None

    def get(self, split: Split, index: int) -> Task:
        if index < 0 or (split == "eval" and index >= self.eval_size):
            raise IndexError(f"index {index} out of range for split {split!r}")
        for attempt in range(10_000):
            fields = self.generate(random.Random(f"{self.env}:{split}:{index}:{attempt}"))
            digest = content_hash(fields)
            if split_of(digest) == split:
                return _task(self.env, fields, split, f"{self.env}-{digest[:16]}")
        raise RuntimeError(f"{self.env}: generator never produced a {split} task")


class DatasetTasks(TaskSource):
    """Tasks from a Parquet or JSONL file, one row per task (loaded with `datasets`).

    Columns: `prompt` (a string or a list of messages), `verifier` (a dict or its JSON), and optionally
    `task_id`, `split`, `tools`, `reasoning`. Rows without `split` are assigned by content hash.
    """

    def __init__(self, env: str, path: str | Path):
        import datasets  # heavy import, only when a file source is used

        path = Path(path)
        fmt = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}.get(path.suffix)
        if fmt is None:
            raise ValueError(f"task file {path}: expected .parquet, .jsonl or .json")
        rows = datasets.load_dataset(fmt, data_files=str(path), split="train")
        self.env = env
        self._splits: dict[str, list[Task]] = {"train": [], "eval": []}
        for i, row in enumerate(rows):
            try:
                task = self._row_to_task(row)
            except Exception as exc:
                raise ValueError(f"task file {path}, row {i}: {exc}") from exc
            self._splits[task.split].append(task)

    def _row_to_task(self, row: dict[str, Any]) -> Task:
        fields = {k: row[k] for k in ("prompt", "verifier", "tools", "reasoning") if row.get(k) is not None}
        if isinstance(fields.get("verifier"), str):
            fields["verifier"] = json.loads(fields["verifier"])
        split = row.get("split") or split_of(content_hash(fields))
        return _task(self.env, fields, split, row.get("task_id"))

    def size(self, split: Split) -> int | None:
        return len(self._splits[split])

    def get(self, split: Split, index: int) -> Task:
        return self._splits[split][index]
