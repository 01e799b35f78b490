"""Request and response bodies of the `/v1` routes. The OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from environments.env import Observation, ResetOptions
from environments.types import Completion, FiniteFloat, Group, Message, Score, Strict, Task


class ResetRequest(Strict):
    seed: int | None = None
    options: ResetOptions = Field(default_factory=ResetOptions)


class ResetResponse(Strict):
    session_id: str
    observation: Observation
    info: dict[str, Any]


class StepRequest(Strict):
    action: Message


class StepResponse(Strict):
    observation: Observation
    reward: FiniteFloat
    terminated: bool
    truncated: bool
    info: dict[str, Any]


class VerifyGroup(Strict):
    """One task and its completions (a GRPO group): the task travels, and is validated, once."""

    task: Task
    completions: list[Completion] = Field(min_length=1)


class VerifyRequest(Strict):
    groups: list[VerifyGroup]


class VerifyResponse(Strict):
    scores: list[list[Score]]  # per group, per completion, in order


class SubmitResponse(Strict):
    group_id: str
    duplicate: bool


class LeaseRequest(Strict):
    max_groups: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    min_policy_version: int = Field(default=0, ge=0)
    lease_seconds: float | None = Field(default=None, gt=0, le=86_400)

    @model_validator(mode="after")
    def _has_budget(self) -> LeaseRequest:
        if self.max_groups is None and self.max_tokens is None:
            raise ValueError("give max_groups or max_tokens (or both)")
        return self


class LeaseResponse(Strict):
    lease_id: str  # empty when nothing was queued
    groups: list[Group]


class AckResponse(Strict):
    lease_id: str
    acknowledged: int


class StoreStats(Strict):
    queued: int
    queued_tokens: int
    leased: int
    leases: int
    acknowledged: int
    stale: int
    sessions: int


class ErrorField(Strict):
    field: str
    message: str


class ErrorResponse(Strict):
    error: str
    fields: list[ErrorField] = Field(default_factory=list)
