"""Async client of the environment server, used by rollout workers, evals and the CLI.

Retries with exponential backoff on connection errors and 5xx only; a 4xx is the caller's mistake and is
raised at once as `ServerError` with the server's message. Group submission is idempotent (by group_id),
so retrying it after a lost response never stores a group twice. Bulk routes speak msgpack.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

from environments import Completion, Group, Message, Task

from . import wire


class ServerError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        self.status, self.body = status, body
        fields = "; ".join(f"{f['field']}: {f['message']}" for f in body.get("fields", []))
        super().__init__(f"HTTP {status}: {body.get('error', body)}" + (f" ({fields})" if fields else ""))


@dataclass(frozen=True)
class Batch:
    lease_id: str  # empty when nothing was queued
    groups: list[Group]


class EnvServerClient:
    def __init__(self, base_url: str, *, token: str | None = None, retries: int = 5, backoff: float = 0.2,
                 timeout: float = 300.0):
        self.base_url = base_url.rstrip("/")
        self.retries, self.backoff = retries, backoff
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=timeout))

    async def __aenter__(self) -> EnvServerClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def request(self, method: str, path: str, body: Any = None, *, msgpack: bool = False) -> Any:
        content_type = wire.MSGPACK if msgpack else wire.JSON
        headers = {"Accept": content_type}
        data = None
        if body is not None:
            data, headers["Content-Type"] = wire.encode(body, content_type), content_type
        for attempt in range(self.retries + 1):
            try:
                async with self._session.request(method, self.base_url + path, data=data, headers=headers) as resp:
                    raw = await resp.read()
                    doc = wire.decode(raw, resp.content_type) if raw else {}
                    if resp.status < 400:
                        return doc
                    if resp.status < 500 or attempt == self.retries:
                        raise ServerError(resp.status, doc if isinstance(doc, dict) else {"error": doc})
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                if attempt == self.retries:
                    raise
            await asyncio.sleep(self.backoff * 2**attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")

    # -- environments -------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        return await self.request("GET", "/healthz")

    async def envs(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/v1/envs"))["envs"]

    async def describe(self, name: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/envs/{name}")

    async def reset(self, name: str, *, seed: int | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("POST", f"/v1/envs/{name}/reset", {"seed": seed, "options": options or {}})

    async def step(self, session_id: str, action: Message | str) -> dict[str, Any]:
        if isinstance(action, str):
            action = Message(role="assistant", content=action)
        return await self.request("POST", f"/v1/sessions/{session_id}/step", {"action": action.model_dump(mode="json")})

    async def close_session(self, session_id: str) -> None:
        await self.request("DELETE", f"/v1/sessions/{session_id}")

    async def verify(self, name: str, items: list[tuple[Task, Completion]]) -> list[dict[str, Any]]:
        """Scores for the completions, in order. Consecutive items of one task travel as one group (the task
        once); verifiers judge what was said, so token ids and logprobs (most of a completion's bytes) stay here."""
        groups: list[tuple[Task, list[dict[str, Any]]]] = []
        for task, completion in items:
            if not groups or not (groups[-1][0] is task or groups[-1][0] == task):
                groups.append((task, []))
            groups[-1][1].append(completion.model_dump(mode="json", exclude={"token_ids", "logprobs"}))
        body = {"groups": [{"task": task.model_dump(mode="json"), "completions": completions}
                           for task, completions in groups]}
        scores = (await self.request("POST", f"/v1/envs/{name}/verify", body))["scores"]
        return [score for group in scores for score in group]

    # -- trajectory store ---------------------------------------------------------------------------
    async def submit(self, group: Group) -> bool:
        """Store a group; returns True when the server already had this group_id."""
        doc = await self.request("POST", "/v1/groups", group.model_dump(mode="python", exclude_none=True), msgpack=True)
        return doc["duplicate"]

    async def lease(self, *, max_groups: int | None = None, max_tokens: int | None = None,
                    min_policy_version: int = 0, lease_seconds: float | None = None) -> Batch:
        body = {"max_groups": max_groups, "max_tokens": max_tokens, "min_policy_version": min_policy_version,
                "lease_seconds": lease_seconds}
        doc = await self.request("POST", "/v1/batches", {k: v for k, v in body.items() if v is not None}, msgpack=True)
        return Batch(doc["lease_id"], [Group.model_validate(g) for g in doc["groups"]])

    async def ack(self, lease_id: str) -> int:
        return (await self.request("POST", f"/v1/batches/{lease_id}/ack"))["acknowledged"]

    async def stats(self) -> dict[str, int]:
        return await self.request("GET", "/v1/stats")
