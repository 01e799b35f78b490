"""A pool of inference endpoints: least-in-flight balancing (as sglang-router does), a concurrency bound per
endpoint, and failover with backoff on connection errors, timeouts, 5xx, 408 and 429 (waiting at least as
long as a Retry-After header asks, up to a minute). Any other 4xx is the request's fault: raised."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import aiohttp


class EngineError(RuntimeError):
    """The inference fleet failed a request after every retry (infrastructure, not the model's answer)."""


class RequestError(ValueError):
    """An endpoint refused the request itself (4xx other than 408 and 429)."""


TRANSIENT = frozenset({408, 429})  # client-error codes that mean "not now" (timeout, rate limit): retried


@dataclass
class Endpoint:
    url: str
    slots: asyncio.Semaphore
    in_flight: int = 0
    failures: int = 0


class EndpointPool:
    def __init__(self, urls: list[str], *, max_concurrency: int = 64, api_key: str | None = None,
                 retries: int = 4, backoff: float = 0.5, timeout: float = 600.0):
        if not urls:
            raise ValueError("at least one endpoint URL is required")
        self.endpoints = [Endpoint(u.rstrip("/"), asyncio.Semaphore(max_concurrency)) for u in urls]
        self.retries, self.backoff = retries, backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session: aiohttp.ClientSession | None = None
        self._headers, self._timeout = headers, aiohttp.ClientTimeout(total=timeout)
        self.errors = 0  # retried failures, for progress reports

    def _pick(self, exclude: set[str]) -> Endpoint:
        candidates = [e for e in self.endpoints if e.url not in exclude] or self.endpoints
        return min(candidates, key=lambda e: (e.in_flight, e.failures, random.random()))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # created lazily: inside the event loop that will use it
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        session = self._client()
        tried: set[str] = set()
        last: str = ""
        for attempt in range(self.retries + 1):
            endpoint = self._pick(tried)
            endpoint.in_flight += 1
            wait = 0.0
            try:
                async with endpoint.slots, session.post(endpoint.url + path, json=body) as resp:
                    if resp.status < 400:
                        endpoint.failures = 0
                        return await resp.json()
                    text = (await resp.text())[:500]
                    if resp.status < 500 and resp.status not in TRANSIENT:
                        raise RequestError(f"{endpoint.url}{path} answered {resp.status}: {text}")
                    last = f"{endpoint.url}{path} answered {resp.status}: {text}"
                    wait = _retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                last = f"{endpoint.url}{path}: {type(exc).__name__}: {exc}"
            finally:
                endpoint.in_flight -= 1
            endpoint.failures += 1
            self.errors += 1
            tried.add(endpoint.url)
            if attempt < self.retries:
                await asyncio.sleep(max(wait, self.backoff * 2**attempt * (0.5 + random.random())))
        raise EngineError(f"inference failed after {self.retries + 1} attempts; last: {last}")

    async def get(self, path: str) -> Any:
        endpoint = self._pick(set())
        async with self._client().get(endpoint.url + path) as resp:
            resp.raise_for_status()
            return await resp.json(content_type=None)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_after(header: str | None) -> float:
    """Seconds a Retry-After header asks to wait (its delta-seconds form; an HTTP date counts as none), at most 60."""
    try:
        return min(max(float(header), 0.0), 60.0) if header else 0.0
    except ValueError:
        return 0.0
