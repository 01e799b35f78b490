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


class VerifyItem(Strict):
    task: Task
    completion: Completion


class VerifyRequest(Strict):
    items: list[VerifyItem]


class VerifyResponse(Strict):
    scores: list[Score]


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
