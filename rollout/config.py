"""The rollout run's configuration (a TOML file), validated with pydantic: errors name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from environments.config import load_toml
from environments.types import Split, Strict

from .policies import Sampling
from .selection import SelectionConfig


class Lax(Strict):
    model_config = ConfigDict(strict=False)  # TOML values are plain: let "runs/x" become a str path, 1 a float


class EnvTasks(Lax):
    name: str
    split: Split = "train"
    tasks: int = Field(ge=1)  # tasks start..start+tasks-1 of the split
    start: int = Field(default=0, ge=0)
    reasoning: bool | None = None  # force the reasoning mode on every task
    max_turns: int = Field(default=8, ge=1)  # for multi-turn environments
    config: dict[str, Any] = Field(default_factory=dict)  # the environment's own options (its task generation)


class RolloutConfig(Lax):
    run_id: str = Field(min_length=1)
    out_dir: str
    envs: list[EnvTasks] = Field(min_length=1)
    policy: dict[str, Any]  # {"kind": "embedded" | "sglang" | "openai" | "module:Class", ...}
    sampling: Sampling = Field(default_factory=Sampling)
    n: int = Field(default=8, ge=1)  # completions per task (the GRPO group size)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    env_server: str | None = None  # URL; none: start one for the run (store under out_dir/store)
    env_server_token: str | None = None
    submit_to_store: bool = True  # also submit every group to the server's trajectory store
    workers: int = Field(default=2, ge=1)  # Ray rollout actors
    worker_cpus: float = Field(default=0.25, gt=0)  # Ray CPUs reserved per actor (they mostly wait on I/O)
    concurrency: int = Field(default=16, ge=1)  # tasks in flight per actor
    shard_tasks: int = Field(default=64, ge=1)  # tasks per Parquet shard
    ray_address: str | None = None  # join this cluster; none: start a local one
    max_task_attempts: int = Field(default=3, ge=1)  # per task, across actor deaths and engine failures

    @classmethod
    def load(cls, path: str | Path) -> RolloutConfig:
        return load_toml(cls, path)
