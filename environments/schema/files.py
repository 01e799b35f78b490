"""Generate-mode tasks from files of JSON Schemas, so public schema collections plug in.

A source is a directory (every `*.json` file below it is one schema) or a JSONL file (one schema per line).
Each schema is checked when loaded; a bad one fails the load with its file and line. The brief is derived
from the schema (its title, description and required properties); with no reference document there are
no required values, so the reward is validity alone. Splits follow the content hash, as everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema.exceptions import SchemaError

from ..tasks import TaskSource, content_hash, split_of
from ..types import Message, Split, Task
from .tasks import generate_prompt
from .validate import compiled


class SchemaFiles(TaskSource):
    def __init__(self, env: str, path: str | Path, *, reasoning: bool = False):
        path = Path(path)
        self._splits: dict[str, list[Task]] = {"train": [], "eval": []}
        for origin, text in _schema_texts(path):
            schema = _parse(text, origin)
            try:
                compiled(schema)
            except SchemaError as exc:
                raise ValueError(f"{origin}: not a valid JSON Schema: {exc.message}") from None
            verifier = {"mode": "generate", "schema": schema, "values": {}}
            fields = {"prompt": generate_prompt(schema, {}), "verifier": verifier, "reasoning": reasoning}
            digest = content_hash(fields)
            task = Task(task_id=f"{env}-{digest[:16]}", env=env, split=split_of(digest), reasoning=reasoning,
                        prompt=[Message(role="user", content=fields["prompt"])], verifier=verifier)
            self._splits[task.split].append(task)

    def size(self, split: Split) -> int | None:
        return len(self._splits[split])

    def get(self, split: Split, index: int) -> Task:
        return self._splits[split][index]


def _schema_texts(path: Path) -> Iterator[tuple[str, str]]:
    """(where it came from, its JSON text) for every schema in the source."""
    if path.is_dir():
        files = sorted(path.rglob("*.json"))
        if not files:
            raise ValueError(f"{path}: no *.json schema files")
        for file in files:
            yield str(file), file.read_text(encoding="utf-8")
    elif path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                yield f"{path}:{number}", line
    else:
        raise ValueError(f"{path}: expected a directory of *.json schemas or a .jsonl file")


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{origin}: not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ValueError(f"{origin}: a schema must be a JSON object, got {type(schema).__name__}")
    return schema
