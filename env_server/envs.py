"""The environment service behind the HTTP routes: descriptions, episode sessions and batch verification.

Sessions are live `Env` instances keyed by a random id; one that sits idle past the timeout is closed.
Batch verification never runs verifier code on the server's event loop: items are split across a pool of
worker processes, so a slow verifier cannot stall the other routes and a crashing one cannot kill the
server (a broken pool is rebuilt and its items come back as error scores).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import environments
from environments import Completion, Env, Message, Score, Task
from environments.env import Observation, ResetOptions


class SessionLimit(RuntimeError):
    """Too many open sessions."""


@dataclass
class Session:
    env: Env
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def describe(spec: environments.EnvSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "version": spec.version,
        "gym_id": spec.gym_id,
        "description": spec.description,
        "multi_turn": spec.cls.multi_turn,
        "task_schema": Task.model_json_schema(),
        "action_schema": Message.model_json_schema(),
        "observation_schema": Observation.model_json_schema(),
        "reset_options_schema": ResetOptions.model_json_schema(),
    }


# Worker-process side of batch verification: one Env instance per (class, name), built on first use.
_worker_envs: dict[tuple[type[Env], str], Env] = {}


def _verify_chunk(cls: type[Env], name: str, items: list[tuple[Task, Completion]]) -> list[Score]:
    env = _worker_envs.get((cls, name))
    if env is None:
        env = _worker_envs[(cls, name)] = cls(name)
    return [env.score(task, completion) for task, completion in items]


def _chunks(items: list[tuple[Task, Completion]], n: int) -> list[list[int]]:
    """Item indices for n workers: the items of one task next to each other, so that per-task work (compiling
    a schema, building a model) is done by one worker, not by every worker; cut into n runs of equal length."""
    by_task: dict[str, list[int]] = {}
    for i, (task, _) in enumerate(items):
        by_task.setdefault(task.task_id, []).append(i)
    order = [i for indices in by_task.values() for i in indices]
    size = -(-len(order) // n)
    return [order[start : start + size] for start in range(0, len(order), size)]


class EnvService:
    def __init__(self, *, verify_workers: int = 2, max_sessions: int = 10_000, session_idle_seconds: float = 600.0):
        self.verify_workers = max(1, verify_workers)
        self.max_sessions = max_sessions
        self.session_idle_seconds = session_idle_seconds
        self.sessions: dict[str, Session] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._free_workers = asyncio.Semaphore(self.verify_workers)

    # -- episodes -----------------------------------------------------------------------------------
    async def reset(self, name: str, seed: int | None, options: ResetOptions) -> tuple[str, Observation, dict[str, Any]]:
        self.close_idle()
        if len(self.sessions) >= self.max_sessions:
            raise SessionLimit(f"{self.max_sessions} sessions are open; close some or wait for idle ones to expire")
        env = environments.make(name)
        observation, info = await env.reset(seed=seed, options=options.model_dump(exclude_none=True))
        session_id = secrets.token_urlsafe(16)
        self.sessions[session_id] = Session(env)
        return session_id, observation, info

    async def step(self, session_id: str, action: Message) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        session = self.sessions[session_id]  # KeyError → unknown session
        async with session.lock:
            session.last_used = time.monotonic()
            return await session.env.step(action)

    def close(self, session_id: str) -> None:
        del self.sessions[session_id]

    def close_idle(self) -> int:
        cutoff = time.monotonic() - self.session_idle_seconds
        idle = [sid for sid, s in self.sessions.items() if s.last_used < cutoff and not s.lock.locked()]
        for sid in idle:
            del self.sessions[sid]
        return len(idle)

    # -- stateless verification ---------------------------------------------------------------------
    async def verify(self, name: str, items: list[tuple[Task, Completion]], timeout: float) -> list[Score]:
        spec = environments.spec(name)
        if not items:
            return []
        chunks = _chunks(items, min(self.verify_workers, len(items)))
        results = await asyncio.gather(*(self._run_chunk(spec.cls, name, [items[i] for i in chunk], timeout)
                                         for chunk in chunks))
        scores: list[Score | None] = [None] * len(items)
        for chunk, result in zip(chunks, results):
            for i, score in zip(chunk, result):
                scores[i] = score
        return scores  # type: ignore[return-value]

    async def _run_chunk(self, cls: type[Env], name: str, items: list[tuple[Task, Completion]],
                         timeout: float) -> list[Score]:
        """One chunk on one worker process. The timeout counts from when a worker is free to take the chunk,
        not while it queues behind other requests' chunks."""
        async with self._free_workers:
            pool = self._get_pool()
            try:
                return await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(pool, _verify_chunk, cls, name, items), timeout)
            except (BrokenProcessPool, TimeoutError) as exc:  # the worker's failure, not the answers': retry later
                self._reset_pool(pool)  # a hung worker would otherwise hold its slot forever
                reason = "verification timed out" if isinstance(exc, TimeoutError) else f"verifier process failed: {exc!r}"
                return [Score(reward=0.0, accepted=False, error=reason, retry=True)] * len(items)
            except Exception as exc:  # e.g. an item that cannot be sent to the worker: retrying would not help
                return [Score(reward=0.0, accepted=False, error=f"verifier process failed: {exc!r}")] * len(items)

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the server process has threads (store writer/reader), which fork does not copy safely
            self._pool = ProcessPoolExecutor(self.verify_workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def _reset_pool(self, bad: ProcessPoolExecutor) -> None:
        if self._pool is bad:
            self._pool = None
            for process in list(getattr(bad, "_processes", {}).values()):  # no public API kills workers
                process.terminate()
            bad.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        self.sessions.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
