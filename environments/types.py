"""Core types shared by every part of Lachesis (DESIGN §2).

Everything that crosses a process or network boundary is one of these pydantic models. They are strict:
unknown fields are rejected, numbers must be finite, and free-form fields hold JSON values only (what
arrives as msgpack can always be served as JSON). Bad input fails at the edge with the name of the
offending field instead of poisoning a store or a training batch downstream.

Token-level arrays (`tokens`, `masks`, `logprobs`) are held as numpy arrays: a group of 8 × 2,048 tokens
is validated in microseconds instead of element by element, and travels as raw bytes over msgpack.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

Role = Literal["system", "user", "assistant", "tool"]
Split = Literal["train", "eval"]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)

    def __eq__(self, other: Any) -> bool:
        # pydantic's __eq__ compares field dicts with ==, which raises on numpy arrays of length != 1
        if type(self) is not type(other):
            return NotImplemented
        return all(_field_equal(getattr(self, k), getattr(other, k)) for k in type(self).model_fields)


def _field_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)


def _array(dtype: Any, kind: str):
    """A 1-D numpy array field: accepts a list or an ndarray, serialises to a list in JSON."""

    def validate(value: Any) -> np.ndarray:
        if isinstance(value, np.ndarray):
            if value.ndim != 1:
                raise ValueError(f"must be a 1-D array, got {value.ndim} dimensions")
            if value.dtype.kind not in ("i", "u", "f") or (kind == "i" and value.dtype.kind == "f"):
                raise ValueError(f"must hold {'integers' if kind == 'i' else 'numbers'}, got {value.dtype}")
            arr = value
        elif isinstance(value, (list, tuple)):
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
                raise ValueError("must be a list of numbers")
            if kind == "i" and any(isinstance(v, float) for v in value):
                raise ValueError("must be a list of integers")
            try:
                arr = np.asarray(value, dtype=np.float64 if kind == "f" else np.int64)
            except OverflowError:  # an int beyond int64/float64: reject as a validation error, not a crash
                raise ValueError("values out of range") from None
        else:
            raise ValueError("must be a list of numbers")
        if kind == "f":
            with np.errstate(over="ignore"):
                arr = arr.astype(dtype, copy=False)  # check after the cast: 1e300 is finite in float64 only
            if not np.isfinite(arr).all():
                raise ValueError("must contain only finite numbers")
        elif arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.int32).max):
            raise ValueError("values must be between 0 and 2**31-1")
        return arr.astype(dtype, copy=False)

    item_schema = {"type": "number"} if kind == "f" else {"type": "integer", "minimum": 0}
    return Annotated[
        np.ndarray,
        BeforeValidator(validate),
        PlainSerializer(lambda a: a.tolist(), when_used="json"),
        WithJsonSchema({"type": "array", "items": item_schema}),
    ]


TokenArray = _array(np.int32, "i")
LogprobArray = _array(np.float32, "f")


class ToolSpec(Strict):
    """An OpenAI-style function tool: name, description and JSON Schema of its arguments."""

    type: Literal["function"] = "function"
    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    parameters: dict[str, JsonValue] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolCall(Strict):
    id: str = ""
    name: str = Field(min_length=1)
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class Message(Strict):
    role: Role
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None
    name: str | None = None


class Task(Strict):
    """Everything a verifier needs to score an answer to one prompt; serialisable and self-contained."""

    task_id: str = Field(min_length=1, max_length=512)
    env: str = Field(min_length=1, max_length=128)
    split: Split = "train"
    prompt: list[Message] = Field(min_length=1)
    tools: list[ToolSpec] | None = None
    reasoning: bool = False  # the answer must follow exactly one closed <think>…</think> block
    verifier: dict[str, JsonValue] = Field(default_factory=dict)


class Usage(Strict):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class Completion(Strict):
    text: str
    tool_calls: list[ToolCall] | None = None  # OpenAI-style structured calls, when the engine parsed them
    token_ids: TokenArray | None = None
    logprobs: LogprobArray | None = None
    finish_reason: Literal["stop", "length", "tool_calls", "abort"] | None = None
    usage: Usage | None = None

    @model_validator(mode="after")
    def _lengths_agree(self) -> Completion:
        if self.token_ids is not None and self.logprobs is not None and len(self.token_ids) != len(self.logprobs):
            raise ValueError(f"logprobs has {len(self.logprobs)} entries but token_ids has {len(self.token_ids)}")
        return self


class Score(Strict):
    """A verifier's verdict. Unparsable model output is a score with a reason, never an exception."""

    reward: FiniteFloat
    accepted: bool
    details: dict[str, JsonValue] = Field(default_factory=dict)
    error: str | None = None
    # No verdict at all: the verifier failed for an infrastructure reason (its judge model unreachable, the
    # sandbox or the verify pool failing, a timeout). Rollout samples the task again later instead of
    # recording a rejection; evals leave the sample out of every score.
    retry: bool = False


class Trajectory(Strict):
    """One sampled episode. Token-level fields are optional, but equal in length when present."""

    messages: list[Message] = Field(default_factory=list)
    tokens: TokenArray | None = None
    masks: TokenArray | None = None  # 1 where the token is trained on (assistant output), else 0
    logprobs: LogprobArray | None = None
    reward: FiniteFloat
    score: Score | None = None
    finish_reason: str | None = None
    overlong: bool = False
    usage: Usage | None = None
    timings: dict[str, FiniteFloat] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _token_fields_agree(self) -> Trajectory:
        present = {k: len(v) for k in ("tokens", "masks", "logprobs") if (v := getattr(self, k)) is not None}
        if len(set(present.values())) > 1:
            detail = ", ".join(f"{k}={n}" for k, n in present.items())
            raise ValueError(f"token-level fields must have equal lengths, got {detail}")
        if self.masks is not None and self.masks.size and self.masks.max() > 1:
            raise ValueError("masks must contain only 0 and 1")
        return self

    @property
    def num_tokens(self) -> int:
        return 0 if self.tokens is None else len(self.tokens)


class Group(Strict):
    """The GRPO group: n trajectories for one task. `group_id` makes submission idempotent."""

    group_id: str = Field(min_length=1, max_length=256)
    env: str = Field(min_length=1, max_length=128)
    env_version: int = Field(default=0, ge=0)
    task_id: str = Field(min_length=1, max_length=512)
    policy: str | None = Field(default=None, max_length=256)  # the producing policy's name
    # lets the store filter stale data for online training; at most 2**63-1, the largest SQLite INTEGER
    policy_version: int = Field(default=0, ge=0, le=2**63 - 1)
    trajectories: list[Trajectory] = Field(min_length=1)
    meta: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return sum(t.num_tokens for t in self.trajectories)
