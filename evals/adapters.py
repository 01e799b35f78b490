"""Standard benchmark files read into tasks for the environment whose verifier already judges them.

`lachesis eval ENV --tasks FILE` reads FILE in ENV's benchmark format; every row is an eval task:

    ifeval       IFEval-format JSONL (IFEval's, IFBench's): prompt, instruction_id_list, kwargs
    tool_calls   BFCL question files: id, question, function; the answers inline (`ground_truth`) or in
                 BFCL's layout, possible_answer/<same file name> beside it (irrelevance rows have none)
    json_schema  a directory of *.json schemas or a JSONL file of them (a schema collection)
    code         LiveCodeBench (question_content, public/private_test_cases, metadata.func_name) or APPS
                 (question, input_output) rows, JSONL or Parquet
    any other    the environment's own task rows (environments.DatasetTasks: prompt, verifier, …)

A verifier is given as a picklable factory, so verification workers (other processes) can build it.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import environments
from environments import Completion, DatasetTasks, Message, Score, Task, ToolSpec
from environments.reasoning import parse_reasoning
from environments.tasks import TaskSource, content_hash

Verify = Callable[[Task, Completion], Score]


@dataclass(frozen=True)
class Benchmark:
    tasks: list[Task]
    verifier: Callable[[], Verify]  # picklable factory of the verify function
    format: str  # which reader made the tasks


def env_verifier(name: str, config: dict[str, Any]) -> Verify:
    """The registered environment's verify (Env.score: a verifier bug becomes an error score)."""
    return environments.make(name, **config).score


def load_benchmark(env: str, path: str | Path, config: dict[str, Any]) -> Benchmark:
    """The tasks of a benchmark file for `env`, all in the eval split, and their verifier."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"task file {path} does not exist")
    reader = _READERS.get(env)
    if reader is not None:
        return reader(env, path, config)
    tasks = _all_rows(DatasetTasks(env, path))
    return Benchmark(tasks, functools.partial(env_verifier, env, config), "tasks")


def _all_rows(source: TaskSource) -> list[Task]:
    """Every task of a file source: a benchmark file is all evaluation, whatever split a row hashes to."""
    return [t if t.split == "eval" else t.model_copy(update={"split": "eval"})
            for split in ("eval", "train") for t in source.iter(split)]


# -- IFEval and JSON-schema collections: the environments read these files themselves -------------------


def _ifeval(env: str, path: Path, config: dict[str, Any]) -> Benchmark:
    source = environments.make(env, **config, tasks_path=str(path), tasks_split="eval").tasks()
    return Benchmark(list(source.iter("eval")), functools.partial(env_verifier, env, config), "ifeval")


def _schemas(env: str, path: Path, config: dict[str, Any]) -> Benchmark:
    source = environments.make(env, **config, schemas=str(path)).tasks()
    return Benchmark(_all_rows(source), functools.partial(env_verifier, env, config), "json-schema")


# -- BFCL -----------------------------------------------------------------------------------------------


def _bfcl(env: str, path: Path, config: dict[str, Any]) -> Benchmark:
    answers = _bfcl_answers(path)
    tasks = []
    for number, row in _json_rows(path):
        try:
            tasks.append(_bfcl_task(env, row, answers))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return Benchmark(tasks, functools.partial(bfcl_verifier, reward=config.get("reward", "binary")), "bfcl")


def _bfcl_answers(path: Path) -> dict[str, Any]:
    answer_file = path.parent / "possible_answer" / path.name
    if not answer_file.exists():
        return {}
    return {row["id"]: row["ground_truth"] for _, row in _json_rows(answer_file)}


def _bfcl_task(env: str, row: dict[str, Any], answers: dict[str, Any]) -> Task:
    from environments.tool_calls import check
    from environments.tool_calls.hermes import system_prompt

    row_id = row["id"]
    if not isinstance(row_id, str) or not row_id:
        raise ValueError("id must be a non-empty string")
    category = row_id.rsplit("_", 1)[0]
    if category.startswith("multi_turn"):
        raise ValueError(f"{row_id}: BFCL's multi-turn categories (stateful API suites) are not supported")
    functions = row["function"] if isinstance(row["function"], list) else [row["function"]]
    tools = [ToolSpec(name=f["name"], description=f.get("description", ""),
                      parameters=f.get("parameters") or {"type": "object", "properties": {}}) for f in functions]
    if "ground_truth" in row:
        expected = row["ground_truth"]
    elif row_id in answers:
        expected = answers[row_id]
    elif "irrelevance" in category:
        expected = []  # the right answer is no call at all
    else:
        raise ValueError(f"{row_id}: no ground_truth in the row and none in possible_answer/")
    check(functions, expected, "")  # validates functions and expected (raises ValueError naming the fault)
    messages = _bfcl_messages(row["question"])
    system = system_prompt(tools)
    if messages[0].role == "system":
        system, messages = f"{system}\n\n{messages[0].content}", messages[1:]
    return Task(task_id=row_id, env=env, split="eval", prompt=[Message(role="system", content=system), *messages],
                tools=tools, verifier={"category": category, "functions": functions, "expected": expected})


def _bfcl_messages(question: Any) -> list[Message]:
    """BFCL's question: turns of messages ([[…]]), one turn of messages ([…]), or a plain string."""
    if isinstance(question, str):
        return [Message(role="user", content=question)]
    if isinstance(question, list) and question and isinstance(question[0], list):
        if len(question) != 1:
            raise ValueError(f"question has {len(question)} turns; only single-turn rows are supported")
        question = question[0]
    if not isinstance(question, list) or not question:
        raise ValueError("question must be a non-empty list of messages")
    return [Message(role=m["role"], content=m["content"]) for m in question]


def bfcl_verifier(reward: str = "binary") -> Verify:
    """BFCL's AST check (environments.tool_calls.check); reward "binary" or "partial" (share of calls right)."""
    return _guarded(functools.partial(_bfcl_verify, reward))


def _bfcl_verify(reward: str, task: Task, completion: Completion) -> Score:
    from environments.tool_calls import check
    from environments.tool_calls.hermes import Call, render_call

    calls = [render_call(Call(c.name, c.arguments)) for c in completion.tool_calls or []]
    parsed = parse_reasoning("\n".join([completion.text, *calls]), required=task.reasoning)
    category = task.verifier["category"]
    if parsed.error:
        return Score(reward=0.0, accepted=False, error=parsed.error, details={"category": category})
    try:
        score = check(task.verifier["functions"], task.verifier["expected"], parsed.answer, reward=reward)
    except ValueError as exc:
        return Score(reward=0.0, accepted=False, error=f"bad task: {exc}", details={"category": category})
    return score.model_copy(update={"details": {"category": category, **score.details}})


# -- code: LiveCodeBench and APPS -----------------------------------------------------------------------


def _code(env: str, path: Path, config: dict[str, Any]) -> Benchmark:
    tasks = []
    for number, row in _rows(path):
        try:
            tasks.append(_code_task(env, row))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return Benchmark(tasks, functools.partial(code_verifier, **config), "livecodebench/apps")


CODE_INSTRUCTION = ("Write a complete Python 3 program that solves the problem. Put the whole program in one "
                    "```python fenced block.")
CODE_FUNCTION_INSTRUCTION = ("Complete the function below in Python 3, keeping its signature. Put the whole code "
                             "in one ```python fenced block.")


def _code_task(env: str, row: dict[str, Any]) -> Task:
    """One LiveCodeBench row (question_content, public/private_test_cases, metadata) or APPS row (question,
    input_output) as a task whose verifier holds tests in run_tests' form: {"input", "output"} for stdin/stdout
    problems, {"fn_name", "args", "expected"} for call-based ones."""
    if "question_content" in row:  # LiveCodeBench
        statement, task_id = row["question_content"], str(row.get("question_id") or "")
        metadata = row.get("metadata") or {}
        fn_name = (json.loads(metadata) if isinstance(metadata, str) else metadata).get("func_name")
        tests = [_lcb_test(t, fn_name) for t in (*_lcb_cases(row.get("public_test_cases")),
                                                   *_lcb_cases(row.get("private_test_cases")))]
    elif "question" in row:  # APPS
        statement, task_id = row["question"], str(row.get("problem_id", ""))
        io_spec = row.get("input_output") or {}
        io_spec = json.loads(io_spec) if isinstance(io_spec, str) else io_spec
        inputs, outputs, fn_name = io_spec.get("inputs", []), io_spec.get("outputs", []), io_spec.get("fn_name")
        if len(inputs) != len(outputs):
            raise ValueError(f"input_output has {len(inputs)} inputs for {len(outputs)} outputs")
        tests = [_apps_test(i, o, fn_name) for i, o in zip(inputs, outputs)]
    else:
        raise ValueError("neither a LiveCodeBench row (question_content) nor an APPS row (question)")
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("the problem statement is empty")
    if not tests:
        raise ValueError("the row has no test cases")
    starter = row.get("starter_code") or ""
    prompt = statement.strip()
    if starter.strip():
        prompt += f"\n\n{CODE_FUNCTION_INSTRUCTION}\n\n```python\n{starter.strip()}\n```"
    else:
        prompt += f"\n\n{CODE_INSTRUCTION}"
    verifier = {"tests": tests, "difficulty": row.get("difficulty")}
    task_id = task_id or content_hash({"prompt": prompt, "verifier": verifier})[:16]
    return Task(task_id=f"{env}-{task_id}", env=env, split="eval", prompt=[Message(role="user", content=prompt)],
                verifier=verifier)


def _lcb_cases(raw: Any) -> list[dict[str, Any]]:
    """LiveCodeBench test cases: a JSON list, or (private ones) that JSON pickled, zlib-compressed and
    base64-encoded. The pickle holds a plain string, so it is read with an unpickler that refuses every
    class: a crafted file cannot run code."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            text = _StringUnpickler(io.BytesIO(zlib.decompress(base64.b64decode(raw)))).load()
            if not isinstance(text, str):
                raise ValueError("compressed test cases do not hold a JSON string") from None
            raw = json.loads(text)
    if not isinstance(raw, list):
        raise ValueError("test cases must be a list")
    return raw


def _lcb_test(case: dict[str, Any], fn_name: str | None) -> dict[str, Any]:
    """A functional LiveCodeBench case holds one JSON value per line of input (the arguments) and the JSON of
    the expected return value; a stdin case holds plain text."""
    if case.get("testtype") == "functional":
        if not fn_name:
            raise ValueError("a functional test case but no metadata.func_name")
        return {"fn_name": fn_name, "args": [json.loads(line) for line in case["input"].split("\n") if line.strip()],
                "expected": json.loads(case["output"])}
    return {"input": _text(case["input"]), "output": _text(case["output"])}


def _apps_test(inputs: Any, output: Any, fn_name: str | None) -> dict[str, Any]:
    """APPS call-based problems give the argument list and the return value (which APPS wraps in a
    one-element list); standard-input problems give text."""
    if fn_name:
        if not isinstance(inputs, list):
            raise ValueError("a call-based test's inputs must be a list of arguments")
        expected = output[0] if isinstance(output, list) and len(output) == 1 else output
        return {"fn_name": fn_name, "args": inputs, "expected": expected}
    return {"input": _text(inputs), "output": _text(output)}


class _StringUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a test-case file")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)  # APPS writes stdin as a list of lines at times
    return json.dumps(value)


def code_verifier(**config: Any) -> Verify:
    """Tests run by the code environment's sandboxed runner, `environments.code.run_tests(program, tests, …)`;
    `config` holds its options (timeout_s, memory_mb, reward, compare)."""
    from environments.code import run_tests  # at set-up: a missing code environment fails the run at once

    return _guarded(functools.partial(_code_verify, run_tests, config))


def _code_verify(run_tests: Callable[..., Score], config: dict[str, Any], task: Task, completion: Completion) -> Score:
    from environments.code.extract import extract_program
    from environments.code.sandbox import SandboxUnavailable, language

    difficulty = task.verifier.get("difficulty")
    extra = {"difficulty": difficulty} if isinstance(difficulty, str) else {}
    parsed = parse_reasoning(completion.text, required=task.reasoning)
    if parsed.error:
        return Score(reward=0.0, accepted=False, error=parsed.error, details=extra)
    program = extract_program(parsed.answer, language("python"))
    if program is None:
        return Score(reward=0.0, accepted=False, error="no closed ```python block in the answer", details=extra)
    try:
        score = run_tests(program, task.verifier["tests"], **config)
    except SandboxUnavailable as exc:
        return Score(reward=0.0, accepted=False, error=f"sandbox unavailable: {exc}",
                     details={**extra, "error_kind": "sandbox"})
    details = {**extra, **score.details, "extracted": program}
    if score.error:  # the program was found, so a failure to judge it is the sandbox's, not the model's
        details["error_kind"] = "sandbox"
    return score.model_copy(update={"details": details})


# -- helpers --------------------------------------------------------------------------------------------


def _guarded(verify: Verify) -> Verify:
    return functools.partial(_score_safely, verify)


def _score_safely(verify: Verify, task: Task, completion: Completion) -> Score:
    """As Env.score: a verifier that raises gives an error score, so one bad item never sinks a batch."""
    try:
        return verify(task, completion)
    except Exception as exc:
        return Score(reward=0.0, accepted=False, error=f"verifier error: {type(exc).__name__}: {exc}")


def _json_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a JSON-lines file (BFCL's .json files are JSON lines), with line numbers."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: a row must be a JSON object")
            rows.append((number, row))
    return rows


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist(), 1))
    return _json_rows(path)


_READERS: dict[str, Callable[[str, Path, dict[str, Any]], Benchmark]] = {
    "ifeval": _ifeval, "json_schema": _schemas, "tool_calls": _bfcl, "code": _code}
