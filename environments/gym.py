"""A synchronous gymnasium view of any Lachesis environment: `gymnasium.make("lachesis/Arithmetic-v0")`.

Observations are plain dicts (`{"messages": [...], "tools": ...}`); an action is the assistant's text or a
message dict. The async environment runs on an event loop owned by the wrapper.
"""

from __future__ import annotations

import asyncio
from typing import Any

import gymnasium
from pydantic import BaseModel, ValidationError

from .env import Observation
from .types import Message


class PydanticSpace(gymnasium.Space):
    """The set of values a pydantic model accepts. Text spaces cannot be sampled uniformly."""

    def __init__(self, model: type[BaseModel]):
        super().__init__()
        self.model = model

    def contains(self, x: Any) -> bool:
        try:
            self.model.model_validate(x)
            return True
        except ValidationError:
            return False

    def sample(self, mask: Any = None, probability: Any = None) -> Any:
        raise NotImplementedError(f"cannot sample free text from {self.model.__name__}")


class GymEnv(gymnasium.Env):
    metadata = {"render_modes": []}

    def __init__(self, name: str, version: int, **config: Any):
        from .registry import make

        self.env = make(name, version, **config)
        self.observation_space = PydanticSpace(Observation)
        self.action_space = PydanticSpace(Message)
        self._loop = asyncio.new_event_loop()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, info = self._loop.run_until_complete(self.env.reset(seed=seed, options=options))
        return obs.model_dump(mode="json"), info

    def step(self, action: str | dict[str, Any]):
        message = Message(role="assistant", content=action) if isinstance(action, str) else Message.model_validate(action)
        obs, reward, terminated, truncated, info = self._loop.run_until_complete(self.env.step(message))
        return obs.model_dump(mode="json"), reward, terminated, truncated, info

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.close()
