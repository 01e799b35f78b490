"""Judging a program against its tests: one sandboxed run per test, a verdict each, and the Score.

Verdicts, checked in this order: `timeout` (wall clock or CPU limit), `output_limit` (stdout reached the
cap), `memory` (the program died of a failed allocation), `runtime_error` (any other non-zero exit),
`wrong_answer`, `pass`; `compile_error` for every test when a compiled language's build fails; `skipped` for
tests not run because an earlier failure already decided a binary reward.

Reward: "binary" (1 when every test passes; judging stops at the first failure, as LiveCodeBench does) or
"fraction" (the share of tests passed; all are run). `accepted` means every test passed either way.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, ValidationError, field_validator

from ..types import Score
from .compare import Compare, output_matches, value_matches
from .sandbox import COMPILE_LIMITS, Execution, Language, Limits, Sandbox, get_sandbox, language

_MEMORY = re.compile(rb"\bMemoryError\b|Cannot allocate memory|std::bad_alloc|out of memory")
_HARNESS = importlib.resources.files(__package__).joinpath("harness.py").read_bytes()
_SHOWN = 300  # characters of stderr and output kept per verdict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StdioTest(_Model):
    input: str
    output: str


class FunctionalTest(_Model):
    fn_name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    args: list[JsonValue]
    expected: JsonValue


def _kind(test: Any) -> str:
    functional = isinstance(test, FunctionalTest) or (isinstance(test, dict) and "fn_name" in test)
    return "functional" if functional else "stdio"


Test = Annotated[Annotated[StdioTest, Tag("stdio")] | Annotated[FunctionalTest, Tag("functional")],
                 Discriminator(_kind)]


class CodeSpec(_Model):
    """A code task's `verifier`: the tests, the language, limits, comparison rules and reward."""

    tests: list[Test] = Field(min_length=1)
    language: str = "python"
    timeout_s: float = Field(default=4.0, gt=0, le=60)
    memory_mb: int = Field(default=512, ge=64, le=16384)
    compare: Compare = Compare()
    reward: Literal["binary", "fraction"] = "binary"
    max_turns: int = Field(default=1, ge=1, le=20)  # answers allowed in a feedback episode (code_feedback)

    @field_validator("language")
    @classmethod
    def _known(cls, name: str) -> str:
        language(name)
        return name

    @property
    def limits(self) -> Limits:
        return Limits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)


def run_tests(program: str, tests: list[dict[str, Any]], *, language: str = "python", timeout_s: float = 4.0,
              memory_mb: int = 512, reward: Literal["binary", "fraction"] = "binary",
              compare: dict[str, Any] | None = None) -> Score:
    """Run `program` against `tests` in the sandbox. Tests are {"input", "output"} (stdin/stdout) or
    {"fn_name", "args", "expected"} (functional). Bad tests or settings raise ValueError naming the field;
    a misbehaving program never raises, it fails its tests. Raises SandboxUnavailable without isolation."""
    try:
        spec = CodeSpec(tests=tests, language=language, timeout_s=timeout_s, memory_mb=memory_mb, reward=reward,
                        compare=compare or {})
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
    return judge(program, spec, get_sandbox())


def judge(program: str, spec: CodeSpec, sandbox: Sandbox) -> Score:
    lang = language(spec.language)
    missing = [tool for tool in lang.tools if not Path(tool).exists()]
    if missing:
        return Score(reward=0.0, accepted=False, error=f"{lang.name} is not available here: {missing[0]} is missing",
                     details={"language": lang.name})
    if lang.name != "python" and any(isinstance(t, FunctionalTest) for t in spec.tests):
        return Score(reward=0.0, accepted=False, error="functional tests need language 'python'",
                     details={"language": lang.name})
    if not lang.compile:
        return _score(spec, _run_all(program, spec, lang, sandbox, None), lang)
    with sandbox.build_dir() as out_dir:
        built = sandbox.run(lang.compile, COMPILE_LIMITS, files={lang.source: program.encode()}, out_dir=out_dir,
                            out_writable=True, image=lang.image)
        if built.exit_code != 0:
            verdict = {"verdict": "compile_error", "stderr": _tail(built.stderr)}
            return _score(spec, [verdict] * len(spec.tests), lang)
        return _score(spec, _run_all(program, spec, lang, sandbox, out_dir), lang)


def _run_all(program: str, spec: CodeSpec, lang: Language, sandbox: Sandbox,
             out_dir: Path | None) -> list[dict[str, Any]]:
    """Every test on the sandbox pool at once; with a binary reward, tests not yet started when one fails
    are cancelled (they come back `skipped`)."""
    futures = {sandbox.pool.submit(_run_one, program, test, spec, lang, sandbox, out_dir): i
               for i, test in enumerate(spec.tests)}
    verdicts: list[dict[str, Any]] = [{"verdict": "skipped"}] * len(spec.tests)
    pending: set[Future] = set(futures)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            if future.cancelled():
                continue
            verdicts[futures[future]] = verdict = future.result()
            if verdict["verdict"] != "pass" and spec.reward == "binary":
                for other in pending:
                    other.cancel()
    return verdicts


def _run_one(program: str, test: StdioTest | FunctionalTest, spec: CodeSpec, lang: Language, sandbox: Sandbox,
             out_dir: Path | None) -> dict[str, Any]:
    files = {lang.source: program.encode()}
    if isinstance(test, StdioTest):
        command, stdin = lang.run, test.input.encode()
    else:
        files["harness.py"] = _HARNESS
        command, stdin = ("/usr/bin/python3", "-s", "/code/harness.py"), json.dumps(
            {"fn_name": test.fn_name, "args": test.args}).encode()
    ex = sandbox.run(command, spec.limits, files=files, stdin=stdin, out_dir=out_dir, image=lang.image)
    return _verdict(test, ex, spec.compare)


def _verdict(test: StdioTest | FunctionalTest, ex: Execution, rules: Compare) -> dict[str, Any]:
    """The verdict, its timings, and for a failure the start of stdout (when it was read) and the end of stderr."""
    got = ex.stdout.decode(errors="replace")
    if ex.timed_out:
        verdict = {"verdict": "timeout", "got": _head(got)}
    elif ex.output_limited:
        verdict = {"verdict": "output_limit"}
    elif ex.exit_code != 0:
        verdict = {"verdict": "memory" if _MEMORY.search(ex.stderr) else "runtime_error", "exit_code": ex.exit_code}
    elif _matches(test, got, rules):
        verdict = {"verdict": "pass"}
    else:
        verdict = {"verdict": "wrong_answer", "got": _head(got)}
    if verdict["verdict"] != "pass" and ex.stderr:
        verdict["stderr"] = _tail(ex.stderr)
    return {**verdict, "seconds": round(ex.seconds, 4), "cpu_seconds": round(ex.cpu_seconds, 4)}


def _matches(test: StdioTest | FunctionalTest, got: str, rules: Compare) -> bool:
    if isinstance(test, StdioTest):
        return output_matches(got, test.output, rules)
    try:
        return value_matches(json.loads(got), test.expected, rules)
    except ValueError:
        return False


def _score(spec: CodeSpec, verdicts: list[dict[str, Any]], lang: Language) -> Score:
    passed = sum(v["verdict"] == "pass" for v in verdicts)
    total = len(verdicts)
    reward = float(passed == total) if spec.reward == "binary" else passed / total
    failed = next((i for i, v in enumerate(verdicts) if v["verdict"] not in ("pass", "skipped")), None)
    details = {"language": lang.name, "passed": passed, "total": total, "first_failure": failed,
               "verdicts": [{"test": i, **v} for i, v in enumerate(verdicts)]}
    return Score(reward=reward, accepted=passed == total, details=details)


def feedback(spec: CodeSpec, score: Score) -> str:
    """What a feedback episode tells the model about its failed attempt: the first failing test."""
    if score.error:
        return f"Your answer could not be judged: {score.error}. Fix it and answer again."
    index = score.details.get("first_failure")
    if index is None:
        return "Your program was not run. Answer again with the complete program in one fenced code block."
    verdict = score.details["verdicts"][index]
    test = spec.tests[index]
    kind = verdict["verdict"].replace("_", " ")
    lines = [f"Your program failed test {index + 1} of {len(spec.tests)}: {kind}."]
    if isinstance(test, StdioTest):
        lines += ["Input:", _fenced(_head(test.input)), "Expected output:", _fenced(_head(test.output))]
    else:
        call = f"{test.fn_name}({', '.join(json.dumps(a) for a in test.args)})"
        lines += [f"Call: {_head(call)}", f"Expected: {_head(json.dumps(test.expected))}"]
    if "got" in verdict:
        lines += ["Your output:", _fenced(verdict["got"])]
    if verdict.get("stderr"):
        lines += ["Standard error (end):", _fenced(verdict["stderr"])]
    if kind == "timeout":
        lines.append(f"The limit is {spec.timeout_s:g} s per test.")
    lines.append("Fix the program and answer again with the complete program in one fenced code block.")
    return "\n".join(lines)


def _head(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + " …"


def _tail(data: bytes) -> str:
    text = data.decode(errors="replace")
    return text if len(text) <= _SHOWN else "… " + text[-_SHOWN:]


def _fenced(text: str) -> str:
    return f"```\n{text.rstrip()}\n```"


def describe(exc: ValidationError) -> str:
    """A validation error on one line, each problem named by its field path."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
