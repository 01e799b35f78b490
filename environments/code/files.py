"""Code tasks from files in public benchmark formats, so benchmark dumps plug in as they are.

A Parquet, JSONL or JSON file (read with `datasets`) whose rows are one of:
- LiveCodeBench (`code_generation_lite`): `question_content`, `public_test_cases` and `private_test_cases`
  (JSON lists of {input, output, testtype: "stdin" | "functional"}; private ones may be base64 of zlib of a
  pickled JSON string, as the dump ships them), `starter_code`, `metadata` (JSON with `func_name`),
  `question_title`, `question_id`. A functional test's input is one JSON value per line (the arguments) and
  its output the JSON of the return value.
- APPS: `question`, `input_output` (JSON {inputs, outputs, fn_name?}; for a call, outputs[i] is the return
  value wrapped in a one-element list), `starter_code`, `problem_id`.
- Lachesis' own: `prompt` (a string or a list of messages) and `verifier` (a CodeSpec as its JSON string;
  a dict column works while every row's tests are of one kind), optional `task_id`, `split`.
Rows without a split are assigned one by content hash. A malformed row fails the load, naming the row.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..tasks import content_hash, split_of
from ..types import Message, Task
from .judge import CodeSpec, FunctionalTest, StdioTest, describe
from .prompt import render

FORMATS = {"livecodebench": "question_content", "apps": "input_output", "lachesis": "verifier"}  # a telling column


def load_tasks(env: str, path: str | Path) -> list[Task]:
    import datasets  # heavy: only when a file is read

    path = Path(path)
    fmt = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}.get(path.suffix)
    if fmt is None:
        raise ValueError(f"task file {path}: expected .parquet, .jsonl or .json")
    rows = datasets.load_dataset(fmt, data_files=str(path), split="train")
    kind = next((name for name, column in FORMATS.items() if column in rows.column_names), None)
    if kind is None:
        raise ValueError(f"task file {path}: not a LiveCodeBench, APPS or Lachesis code file "
                         f"(columns {rows.column_names}; expected one of {sorted(FORMATS.values())})")
    read = {"livecodebench": _livecodebench, "apps": _apps, "lachesis": _lachesis}[kind]
    tasks = []
    for i, row in enumerate(rows):
        try:
            tasks.append(read(env, row))
        except Exception as exc:
            reason = describe(exc) if isinstance(exc, ValidationError) else f"{exc}"
            raise ValueError(f"task file {path}, row {i} ({kind}): {reason}") from exc
    return tasks


def _task(env: str, task_id: str | None, prompt: str | list[Message], spec: CodeSpec, split: str | None = None) -> Task:
    messages = [Message(role="user", content=prompt)] if isinstance(prompt, str) else prompt
    verifier = spec.model_dump(mode="json")
    digest = content_hash({"prompt": [m.model_dump(mode="json") for m in messages], "verifier": verifier})
    return Task(task_id=task_id or f"{env}-{digest[:16]}", env=env, split=split or split_of(digest),
                prompt=messages, verifier=verifier)


# -- LiveCodeBench -----------------------------------------------------------------------------------
class _NoObjects(pickle.Unpickler):
    """Unpickles plain data only: a task file must not be able to run code on the host."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a task file")


def _lcb_cases(raw: str) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        return json.loads(raw)
    except ValueError:  # the compressed form of private tests
        unpacked = _NoObjects(io.BytesIO(zlib.decompress(base64.b64decode(raw)))).load()
        return json.loads(unpacked)


def _lcb_test(case: dict[str, Any], fn_name: str | None) -> StdioTest | FunctionalTest:
    if case.get("testtype", "stdin") == "stdin":
        return StdioTest(input=case["input"], output=case["output"])
    if not fn_name:
        raise ValueError("a functional test but no func_name in metadata")
    args = [json.loads(line) for line in case["input"].split("\n") if line.strip()]
    return FunctionalTest(fn_name=fn_name, args=args, expected=json.loads(case["output"]))


def _livecodebench(env: str, row: dict[str, Any]) -> Task:
    metadata = json.loads(row.get("metadata") or "{}")
    fn_name = metadata.get("func_name")
    public = [_lcb_test(c, fn_name) for c in _lcb_cases(row.get("public_test_cases") or "")]
    private = [_lcb_test(c, fn_name) for c in _lcb_cases(row.get("private_test_cases") or "")]
    prompt = render(row.get("question_title") or "", row["question_content"], public, row.get("starter_code"))
    task_id = f"{env}-lcb-{row['question_id']}" if row.get("question_id") else None
    return _task(env, task_id, prompt, CodeSpec(tests=public + private))


# -- APPS --------------------------------------------------------------------------------------------
def _apps(env: str, row: dict[str, Any]) -> Task:
    io_spec = json.loads(row["input_output"])
    inputs, outputs, fn_name = io_spec["inputs"], io_spec["outputs"], io_spec.get("fn_name")
    if len(inputs) != len(outputs):
        raise ValueError(f"input_output has {len(inputs)} inputs but {len(outputs)} outputs")
    if fn_name:
        tests: list[StdioTest | FunctionalTest] = [FunctionalTest(fn_name=fn_name, args=args, expected=_unwrapped(out))
                                                    for args, out in zip(inputs, outputs)]
    else:
        tests = [StdioTest(input=_text(i), output=_text(o)) for i, o in zip(inputs, outputs)]
    prompt = render("", row["question"], [], row.get("starter_code"))
    task_id = f"{env}-apps-{row['problem_id']}" if row.get("problem_id") is not None else None
    return _task(env, task_id, prompt, CodeSpec(tests=tests))


def _unwrapped(output: Any) -> Any:
    return output[0] if isinstance(output, list) and len(output) == 1 else output


def _text(value: str | list[str]) -> str:
    """APPS stores some stdin/stdout texts as lists of lines."""
    return "\n".join(value) + "\n" if isinstance(value, list) else value


# -- Lachesis' own -----------------------------------------------------------------------------------
def _lachesis(env: str, row: dict[str, Any]) -> Task:
    verifier = row["verifier"]
    spec = CodeSpec.model_validate(json.loads(verifier) if isinstance(verifier, str) else verifier)
    prompt = row["prompt"]
    messages = prompt if isinstance(prompt, str) else [Message.model_validate(m) for m in prompt]
    return _task(env, row.get("task_id"), messages, spec, row.get("split"))
