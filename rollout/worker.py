"""The Ray rollout actor: many tasks in flight at once on one asyncio loop, each sampled, scored, submitted
to the trajectory store (idempotent by group id) and rejection-sampled into rows for the Parquet shards."""

from __future__ import annotations

import json
from typing import Any

import environments
from env_server.client import EnvServerClient
from environments.types import Task

from .config import RolloutConfig
from .episode import make_group, play_episode, sample_single_turn
from .policies import EngineError, load_policy
from .selection import group_advantages, select
from .shards import trajectory_row


class RolloutWorker:
    """Plain class; the driver wraps it with `ray.remote` (so it is also usable, and testable, without Ray)."""

    def __init__(self, config: dict[str, Any], policy: dict[str, Any], env_server: str):
        self.config = RolloutConfig.model_validate(config)
        self.policy = load_policy(policy)
        self.env = EnvServerClient(env_server, token=self.config.env_server_token)
        self._envs: dict[str, environments.Env] = {}  # by name and options

    def _task(self, item: dict[str, Any]) -> Task:
        key = json.dumps([item["env"], item["config"]], sort_keys=True)
        if key not in self._envs:
            self._envs[key] = environments.make(item["env"], **item["config"])
        task = self._envs[key].tasks().get(item["split"], item["index"])
        return task if item["reasoning"] is None else task.model_copy(update={"reasoning": item["reasoning"]})

    async def run_task(self, item: dict[str, Any]) -> dict[str, Any]:
        """Sample one task. Engine failures (after the policy's own retries) and verifiers that could not
        judge (Score.retry) come back as an error, never as a rejection, so the driver retries the task later."""
        cfg = self.config
        task = self._task(item)
        spec = environments.spec(item["env"])
        try:
            if spec.cls.multi_turn:
                trajectories = [await play_episode(task, self.policy, self.env, cfg.sampling, item["max_turns"])
                                for _ in range(cfg.n)]
            else:
                trajectories = await sample_single_turn(task, self.policy, self.env, cfg.sampling, cfg.n)
        except EngineError as exc:
            return {"key": item["key"], "error": str(exc)}
        if unjudged := next((t.score for t in trajectories if t.score is not None and t.score.retry), None):
            # the verifier failed, not the policy: a rejection recorded now would be false
            return {"key": item["key"], "error": f"no verdict: {unjudged.error}"}
        group = make_group(f"{cfg.run_id}:{item['key']}", task, spec.version, self.policy, trajectories)
        if cfg.submit_to_store:
            await self.env.submit(group)
        chosen = select(trajectories, cfg.selection)
        advantages = group_advantages([t.reward for t in trajectories])
        sampling = cfg.sampling.model_dump(mode="json")

        def row(i: int) -> dict[str, Any]:
            return trajectory_row(group, i, item["key"], advantages[i], sampling)

        return {
            "key": item["key"], "env": item["env"],
            "accepted": [row(i) for i in chosen.kept],
            "pairs": [{"group_id": group.group_id, "chosen": row(a), "rejected": row(r)} for a, r in chosen.pairs],
            "samples": len(trajectories),
            "accepted_samples": sum(bool(t.score and t.score.accepted) for t in trajectories),
            "duplicates": chosen.duplicates,
            "overlong": sum(t.overlong for t in trajectories),
            "tokens": sum(t.usage.completion_tokens if t.usage else t.num_tokens for t in trajectories),
        }

    def engine_retries(self) -> int:
        """Requests the policy's endpoint pool had to retry (0 for policies without one)."""
        pool = getattr(self.policy, "pool", None)
        return getattr(pool, "errors", 0)

    async def close(self) -> None:
        await self.policy.close()
        await self.env.close()
