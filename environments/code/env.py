"""The code environments: write a program that passes hidden tests (code), or do so with feedback (code_feedback)."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from pydantic import ValidationError

from ..env import Env, StepResult
from ..reasoning import parse_reasoning
from ..tasks import TaskSource
from ..types import Completion, Message, Score, Split, Task
from .extract import extract_program
from .files import load_tasks
from .judge import CodeSpec, describe, feedback, judge
from .problems import builtin_problems
from .sandbox import SandboxFailed, get_sandbox, language


class CodeEnv(Env):
    """Programming problems judged by running the program on hidden tests in a bubblewrap sandbox.

    LiveCodeBench/APPS style: stdin/stdout tests and functional tests (a named function or Solution method,
    its return value compared). Tasks are the built-in set of problems written for Lachesis, or a file of
    LiveCodeBench, APPS or Lachesis code tasks. The program is the last ```python block of the answer (after
    the reasoning block); the score lists a verdict per test. Without working isolation the environment
    refuses to start (SandboxUnavailable); it never runs code unsandboxed.

    Config: `problems` (a task file; default the built-in set), `reward` ("binary": all tests pass, judging
    stops at the first failure; "fraction": the share passed), `reasoning` (tasks ask for a <think> block),
    `timeout_s` and `memory_mb` (per-test limits for every task, instead of each task's own), `bwrap` (the
    bubblewrap executable, default `bwrap` on PATH).
    """

    version = 0

    def __init__(self, name: str, *, problems: str | None = None, reward: str = "binary", reasoning: bool = False,
                 timeout_s: float | None = None, memory_mb: int | None = None, bwrap: str = "bwrap"):
        super().__init__(name, problems=problems, reward=reward, reasoning=reasoning, timeout_s=timeout_s,
                         memory_mb=memory_mb, bwrap=bwrap)
        self.sandbox = get_sandbox(bwrap)  # raises SandboxUnavailable: no environment without isolation
        overrides = {"reward": reward, "timeout_s": timeout_s, "memory_mb": memory_mb}
        self._overrides = _checked({k: v for k, v in overrides.items() if v is not None})
        self._problems, self._reasoning = problems, reasoning
        self._source: TaskSource | None = None

    def tasks(self) -> TaskSource:
        if self._source is None:
            tasks = load_tasks(self.name, self._problems) if self._problems else _builtin_tasks(self.name)
            self._source = FixedTasks([t.model_copy(update={"verifier": {**t.verifier, **self._overrides},
                                                            "reasoning": self._reasoning}) for t in tasks])
        return self._source

    def verify(self, task: Task, completion: Completion) -> Score:
        try:
            spec = CodeSpec.model_validate(task.verifier)
        except ValidationError as exc:
            return Score(reward=0.0, accepted=False, error=f"malformed task verifier: {describe(exc)}")
        parsed = parse_reasoning(completion.text, required=task.reasoning)
        if parsed.error:
            return Score(reward=0.0, accepted=False, error=parsed.error)
        lang = language(spec.language)
        program = extract_program(parsed.answer, lang)
        if program is None:
            return Score(reward=0.0, accepted=False, error=f"no ```{lang.fences[0]} code block in the answer")
        try:
            return judge(program, spec, self.sandbox)
        except SandboxFailed as exc:  # bubblewrap could not start (e.g. a namespace limit): the program never ran
            return Score(reward=0.0, accepted=False, error=f"sandbox failed: {exc}", retry=True,
                         details={"error_kind": "sandbox"})

    async def step(self, action: Message) -> StepResult:
        """Judged on a worker thread: the sandbox runs never hold up the event loop (the server's sessions)."""
        completion = self.record(action)
        return self._after(await asyncio.to_thread(self.score, self.task, completion))

    def _after(self, score: Score) -> StepResult:
        return self.finish(score)


class CodeFeedbackEnv(CodeEnv):
    """Programming problems with feedback: a failed attempt is answered with the first failing test (input,
    expected and actual output, error) and the model tries again, up to `max_turns` answers in all.

    The reward is the last attempt's score. Config: as `code`, plus `max_turns` (default 3).
    """

    multi_turn = True

    def __init__(self, name: str, *, max_turns: int = 3, **config: Any):
        super().__init__(name, **config)
        self.config["max_turns"] = max_turns
        self._overrides = _checked({**self._overrides, "max_turns": max_turns})

    def _after(self, score: Score) -> StepResult:
        spec = CodeSpec.model_validate(self.task.verifier)
        turns = sum(m.role == "assistant" for m in self.messages[len(self.task.prompt):])
        if score.accepted or turns >= spec.max_turns or not _fixable(score):
            info = {"score": score.model_dump(mode="json"), "turns": turns}
            self.done = True
            return self.observation(), score.reward, True, False, info
        self.messages.append(Message(role="user", content=feedback(spec, score)))
        return self.observation(), 0.0, False, False, {"score": score.model_dump(mode="json"), "turns": turns}


def _checked(overrides: dict[str, Any]) -> dict[str, Any]:
    """Settings that every task's verifier gets; a bad one fails here, named, not at the first episode."""
    try:
        CodeSpec.model_validate({"tests": [{"input": "", "output": ""}], **overrides})
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
    return overrides


def _fixable(score: Score) -> bool:
    """A malformed task is not the model's to fix; everything else (no code block included) is."""
    return not (score.error or "").startswith("malformed task verifier")


class FixedTasks(TaskSource):
    """A fixed list of tasks, each in the split it names."""

    def __init__(self, tasks: list[Task]):
        self._splits: dict[str, list[Task]] = {"train": [], "eval": []}
        for task in tasks:
            self._splits[task.split].append(task)

    def size(self, split: Split) -> int | None:
        return len(self._splits[split])

    def get(self, split: Split, index: int) -> Task:
        return self._splits[split][index]


@cache
def _builtin_tasks(env: str) -> tuple[Task, ...]:
    return tuple(p.task(env) for p in builtin_problems())
