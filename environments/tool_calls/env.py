"""The tool-calling environment: verification of calls and answers, and multi-turn episodes with live tools."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from ..env import Env, StepResult
from ..reasoning import parse_reasoning
from ..tasks import ProceduralTasks, TaskSource
from ..types import Completion, Message, Score, Task
from .checker import score_calls
from .hermes import Call, FormatError, parse_calls, render_call, tool_response
from .tasks import CALL_KINDS, KINDS, generate
from .world import execute

_ANSWER = re.compile(r"^[ \t*]*answer[ \t*]*:[ \t*]*(.*)$", re.IGNORECASE | re.MULTILINE)  # "**Answer:** 12" too
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


class ToolCallsEnv(Env):
    """Function calling in the Hermes format: single, parallel, distractor, no-call and multi-turn tool use.

    Tools are offered in the system prompt inside <tools> (and as `task.tools`); calls are written in
    <tool_call> tags or given as OpenAI-style `tool_calls`. Calls are checked like BFCL's AST checker. In
    multi-turn tasks the environment runs each round of calls against a simulated world and answers with
    <tool_response> messages until the model gives its final answer.

    Config: `eval_size` (tasks in the fixed eval split, default 500), `reasoning` (tasks ask for a <think>
    block, default false), `reward` ("binary", or "partial": the share of correctly made calls; a final
    answer is right or wrong either way), `max_turns` (assistant messages in a multi-turn episode before it is
    truncated, default 6), `kinds` (which task kinds to generate, default all of single, parallel,
    distractor, no_call, multi_turn).
    """

    version = 0
    multi_turn = True

    def __init__(self, name: str, *, eval_size: int = 500, reasoning: bool = False, reward: str = "binary",
                 max_turns: int = 6, kinds: Sequence[str] = KINDS):
        if reward not in ("binary", "partial"):
            raise ValueError(f"reward must be 'binary' or 'partial', got {reward!r}")
        if not kinds or set(kinds) - set(KINDS):
            raise ValueError(f"kinds must be a non-empty selection of {KINDS}, got {kinds!r}")
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        super().__init__(name, eval_size=eval_size, reasoning=reasoning, reward=reward, max_turns=max_turns,
                         kinds=list(kinds))
        self._source = ProceduralTasks(name, self._generate, eval_size=eval_size)
        self._reasoning, self._kinds = reasoning, tuple(kinds)
        self._partial, self._max_turns = reward == "partial", max_turns

    def _generate(self, rng: random.Random) -> dict[str, Any]:
        return {**generate(rng, self._kinds), "reasoning": self._reasoning}

    def tasks(self) -> TaskSource:
        return self._source

    # -- verification -------------------------------------------------------------------------------
    def verify(self, task: Task, completion: Completion) -> Score:
        kind = task.verifier["kind"]
        try:
            calls, answer = _read(task, completion)
        except FormatError as exc:
            return Score(reward=0.0, accepted=False, error=str(exc), details={"kind": kind})
        if kind in CALL_KINDS:
            schemas = {tool.name: tool.parameters for tool in task.tools or []}
            score = score_calls(schemas, task.verifier["calls"], calls, partial=self._partial)
            return score.model_copy(update={"details": {"kind": kind, **score.details}})
        details = {"kind": kind, "expected": task.verifier["answer"]}
        if calls:
            return Score(reward=0.0, accepted=False, details={**details, "reason": f"{len(calls)} tool call(s) where "
                                                                            "a final answer was due"})
        raw = _final_answer(answer)
        if raw is None:
            return Score(reward=0.0, accepted=False, error="no 'Answer:' line", details=details)
        value = _number(raw)
        correct = value is not None and abs(value - task.verifier["answer"]) <= task.verifier["tolerance"] + 1e-9
        return Score(reward=float(correct), accepted=correct, details={**details, "extracted": raw})

    # -- episodes -----------------------------------------------------------------------------------
    async def step(self, action: Message) -> StepResult:
        """A round of tool calls in a multi-turn task is run and answered; anything else ends the episode."""
        task, completion = self.task, self.record(action)
        calls = self._calls_to_run(task, completion)
        if not calls:
            score = self.score(task, completion)
            self.done = True
            return self.observation(), score.reward, True, False, {"score": score.model_dump(mode="json")}
        offered = {tool.name for tool in task.tools or []}
        for call in calls:
            result = execute(task.verifier["world"], offered, call)
            self.messages.append(Message(role="tool", name=call.name, content=tool_response(call.name, result)))
        turns = sum(m.role == "assistant" for m in self.messages[len(task.prompt):])
        if turns >= self._max_turns:
            self.done = True
            return self.observation(), 0.0, False, True, {"turns": turns, "reason": "max_turns reached"}
        return self.observation(), 0.0, False, False, {"turns": turns, "tool_calls": len(calls)}

    def _calls_to_run(self, task: Task, completion: Completion) -> list[Call]:
        if task.verifier["kind"] != "multi_turn":
            return []
        try:
            return _read(task, completion)[0]
        except FormatError:
            return []  # verify() scores the broken format and ends the episode


def _read(task: Task, completion: Completion) -> tuple[list[Call], str]:
    """The calls and the answer text of a completion; OpenAI-style `tool_calls` count as the <tool_call> tags
    that the engine parsed out of the text, so they are put back after it."""
    text = "\n".join([completion.text, *(render_call(Call(c.name, c.arguments)) for c in completion.tool_calls or [])])
    parsed = parse_reasoning(text, required=task.reasoning)
    if parsed.error:
        raise FormatError(parsed.error)
    return parse_calls(parsed.answer), parsed.answer


def _final_answer(text: str) -> str | None:
    lines = _ANSWER.findall(text)
    return lines[-1].strip() if lines else None


def _number(raw: str) -> float | None:
    found = _NUMBER.search(raw.replace("\u2212", "-"))  # a typographic minus sign counts as one
    return float(found[0].replace(",", "")) if found else None
