"""The async environment every capability implements (DESIGN §3).

Gymnasium semantics over chat: the observation is the conversation so far (plus tools), the action is the
assistant's message. A subclass supplies its task source and a pure `verify(task, completion) -> Score`;
the default `reset`/`step` give a single-turn episode that ends after one answer. Multi-turn environments
override `step` to answer (tool results, test feedback) and continue.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import Field

from .tasks import TaskSource
from .types import Completion, Message, Score, Split, Strict, Task, ToolSpec


class Observation(Strict):
    messages: list[Message]
    tools: list[ToolSpec] | None = None


class ResetOptions(Strict):
    split: Split = "train"
    index: int | None = Field(default=None, ge=0)  # which task of the split; drawn from the seed if absent
    task: Task | None = None  # play this exact task instead
    reasoning: bool | None = None  # override the task's reasoning mode


def completion_of(action: Message) -> Completion:
    """The completion an assistant message stands for, as the verifier should see it."""
    text = action.content
    if action.reasoning:  # an engine's reasoning parser handed the think block over separately: put it back
        text = f"<think>{action.reasoning}</think>{text}"
    return Completion(text=text, tool_calls=action.tool_calls)


class EpisodeOver(RuntimeError):
    """step() after the episode terminated."""


StepResult = tuple[Observation, float, bool, bool, dict[str, Any]]


class Env(ABC):
    version: ClassVar[int] = 0  # bump whenever the verifier's verdicts can change
    multi_turn: ClassVar[bool] = False  # episodes continue after the first answer (played through sessions)

    def __init__(self, name: str, **config: Any):
        self.name = name
        self.config = config
        self._rng = random.Random()
        self.task: Task | None = None
        self.messages: list[Message] = []
        self.done = True

    # -- what a subclass provides -------------------------------------------------------------------
    @abstractmethod
    def tasks(self) -> TaskSource:
        """The task source; called often, so build it once (e.g. in __init__)."""

    @abstractmethod
    def verify(self, task: Task, completion: Completion) -> Score:
        """Pure and deterministic; returns a Score with a reason on bad output instead of raising."""

    # -- gymnasium semantics ------------------------------------------------------------------------
    async def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        opts = ResetOptions.model_validate(options or {})
        if seed is not None:
            self._rng = random.Random(seed)
        task = opts.task or self._draw(opts)
        if opts.reasoning is not None:
            task = task.model_copy(update={"reasoning": opts.reasoning})
        self.task, self.messages, self.done = task, list(task.prompt), False
        return self.observation(), {"task_id": task.task_id, "split": task.split, "reasoning": task.reasoning}

    async def step(self, action: Message) -> StepResult:
        return self.finish(self.score(self.task, self.record(action)))

    # -- helpers ------------------------------------------------------------------------------------
    def record(self, action: Message) -> Completion:
        """Check that an action may be taken now, add it to the chat, and return it as the verifier sees it."""
        if self.done or self.task is None:
            raise EpisodeOver("the episode is over: call reset() first")
        if action.role != "assistant":
            raise ValueError(f"action.role must be 'assistant', got {action.role!r}")
        self.messages.append(action)
        return completion_of(action)

    def finish(self, score: Score) -> StepResult:
        """End the episode on `score`."""
        self.done = True
        return self.observation(), score.reward, True, False, {"score": score.model_dump(mode="json")}

    def score(self, task: Task, completion: Completion) -> Score:
        """verify(), with a verifier bug turned into an error score so one bad item never sinks a batch."""
        try:
            return self.verify(task, completion)
        except Exception as exc:  # a verifier must not raise; if it does, the batch still completes
            return Score(reward=0.0, accepted=False, error=f"verifier error: {type(exc).__name__}: {exc}")

    def observation(self) -> Observation:
        return Observation(messages=list(self.messages), tools=self.task.tools if self.task else None)

    def _draw(self, opts: ResetOptions) -> Task:
        source = self.tasks()
        index = opts.index
        if index is None:
            size = source.size(opts.split)
            if size == 0:
                raise ValueError(f"environment {self.name!r} has no {opts.split} tasks")
            index = self._rng.randrange(size if size is not None else 2**31)
        return source.get(opts.split, index)
