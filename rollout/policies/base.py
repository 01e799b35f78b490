"""The Policy protocol every sampler implements, its sampling parameters, and loading one from config."""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from environments.types import Completion, Message, Strict, ToolSpec


class Sampling(Strict):
    temperature: float = Field(default=1.0, ge=0.0, le=10.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=-1, ge=-1)  # -1: no top-k cut
    max_tokens: int = Field(default=512, ge=1)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None


@runtime_checkable
class Policy(Protocol):
    """Anything that turns a chat into n completions. `name`/`version` are recorded on every trajectory."""

    name: str
    version: int

    async def generate(self, chat: list[Message], tools: list[ToolSpec] | None, sampling: Sampling, n: int) -> list[Completion]:
        ...

    async def close(self) -> None:
        ...


def load_policy(config: dict[str, Any]) -> Policy:
    """Build a policy from `{"kind": "sglang" | "openai" | "module:Class", ...its keyword arguments}`."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind is None:
        raise ValueError("policy.kind is required: 'sglang', 'openai' or 'my_pkg.my_module:MyPolicy'")
    if kind == "sglang":
        from .sglang import SGLangPolicy as cls
    elif kind == "openai":
        from .openai import OpenAIPolicy as cls
    elif ":" in kind:
        module, _, attr = kind.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"policy.kind {kind!r}: cannot import it ({exc})") from exc
    else:
        raise ValueError(f"policy.kind {kind!r}: expected 'sglang', 'openai' or 'module:Class'")
    try:
        policy = cls(**config)
    except TypeError as exc:
        raise ValueError(f"policy {kind!r}: bad configuration: {exc}") from exc
    if not isinstance(policy, Policy):
        raise ValueError(f"policy {kind!r} does not implement the Policy protocol (name, version, generate, close)")
    return policy
