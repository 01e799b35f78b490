"""Every model call of a walk: routed to the policy that plays its role, answered from a content-addressed
cache when it was made before, and recorded (role, messages, response, parsed output, attempt, verdict,
tokens, latency).

The cache key is a hash of the policy's identity (its configuration without URLs or keys), the messages
and the sampling parameters, seed included. Seeds derive from (walk id, node, attempt, call number), so a
crashed run replays every call it had finished instantly, and editing one prompt invalidates only the calls
that prompt makes. Infrastructure failures (`EngineError`) are never cached and never recorded: the walk is
deferred and redone. A request the endpoint refuses (4xx, e.g. a prompt beyond the context) fails the node.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from environments.types import Message
from rollout.policies import Policy, RequestError, Sampling

from .nodes import Node, NodeFailed

if TYPE_CHECKING:
    from .walk import WalkContext

_SEED = -918273645  # stands for the seed in the sampling JSON of a role
# Configuration keys that say where a model is served, not what it is: left out of the cache identity.
_WHERE = {"urls", "api_key", "max_concurrency", "timeout"}


@dataclass(slots=True)
class CallRecord:
    call_id: str
    walk_id: str
    node: str
    node_version: str
    role: str
    model: str
    attempt: int
    messages: list[dict[str, str]]
    sampling: str  # JSON, with the seed this call used
    response: str
    parsed: Any = None  # the structured output (verdicts, JSON models, lists); None when the text is used as is
    accepted: bool | None = None  # set by the judge loop; None when the node is not judged
    judge_scores: dict[str, int] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    cache_hit: bool = False


class CallCache:
    """A key → response store in SQLite (WAL): safe for several processes (Ray actors) on one file.

    Writes are batched (one transaction per `batch` responses or per second, and on `flush`/`close`): a crash
    loses at most the last batch, whose calls are simply made again. The keys present when it opens are
    held in memory (8 bytes each) so that a miss, the common case of a fresh run, costs no query; entries
    that other processes add later are not seen (those calls are made again, harmlessly)."""

    COLUMNS = ("response", "model", "prompt_tokens", "completion_tokens", "latency_ms")

    def __init__(self, path: str | Path, batch: int = 256):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last calls: they are redone
        self._db.execute("PRAGMA wal_autocheckpoint=16384")  # checkpoint every 64 MB, not 4: a third less CPU per insert
        self._db.execute("CREATE TABLE IF NOT EXISTS calls (key BLOB PRIMARY KEY, response TEXT NOT NULL, model TEXT, "
                         "prompt_tokens INTEGER, completion_tokens INTEGER, latency_ms REAL)")
        self._known = {k[:8] for (k,) in self._db.execute("SELECT key FROM calls")}
        self._pending: dict[bytes, tuple] = {}
        self._batch, self._flushed = batch, time.monotonic()

    def get(self, key: bytes) -> dict[str, Any] | None:
        if key[:8] not in self._known:
            return None
        row = self._pending.get(key) or self._db.execute(
            "SELECT response, model, prompt_tokens, completion_tokens, latency_ms FROM calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(zip(self.COLUMNS, row))

    def put(self, key: bytes, value: dict[str, Any]) -> None:
        self._known.add(key[:8])
        self._pending[key] = (value["response"], value["model"], value["prompt_tokens"], value["completion_tokens"],
                              value["latency_ms"])
        if len(self._pending) >= self._batch or time.monotonic() - self._flushed > 1.0:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            with self._db:  # one transaction
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)",
                                     [(k, *v) for k, v in self._pending.items()])
            self._pending = {}
        self._flushed = time.monotonic()

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        self.flush()
        self._db.close()


def policy_identity(config: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in _WHERE}, sort_keys=True)


@dataclass
class LLM:
    """The model map (role → policy), per-role sampling, the cache, and the recording of calls."""

    policies: dict[str, Policy]
    identities: dict[str, str]  # policy name → cache identity
    roles: dict[str, str]  # role → policy name; "default" for roles not listed
    sampling: dict[str, Sampling]  # role → sampling; "default" for roles not listed
    cache: CallCache
    counts: dict[str, int] = field(default_factory=lambda: {"calls": 0, "cache_hits": 0})

    def __post_init__(self) -> None:  # per role, once: the sampling parameters as JSON, the seed to fill in
        self._json = {role: json.dumps({**s.model_dump(), "seed": _SEED}, sort_keys=True)
                      for role, s in self.sampling.items()}
        self._systems: dict[str, Message] = {}

    def _message(self, role: str, content: str) -> Message:
        """Messages for the policy; the few distinct system prompts are built once."""
        if role != "system":
            return Message(role=role, content=content)
        if (message := self._systems.get(content)) is None:
            message = self._systems[content] = Message(role=role, content=content)
        return message

    def policy_for(self, role: str) -> str:
        return self.roles.get(role) or self.roles["default"]

    async def complete(self, ctx: WalkContext, node: Node, role: str, system: str, user: str,
                       seed_key: str | None = None) -> CallRecord:
        """One chat completion, recorded on the walk. `seed_key` replaces the walk-derived seed for calls
        whose answer should be shared across walks (taxonomy expansion)."""
        name = self.policy_for(role)
        policy = self.policies[name]
        key_of_seed = seed_key or f"{ctx.walk_id}|{node.name}|{ctx.attempt}|{len(ctx.calls)}"
        seed = int.from_bytes(hashlib.sha256(key_of_seed.encode()).digest()[:4])
        of = role if role in self.sampling else "default"
        sampling_json = self._json[of].replace(str(_SEED), str(seed), 1)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}] if system else \
            [{"role": "user", "content": user}]
        key = hashlib.sha256("\0".join((self.identities[name], sampling_json, system, user)).encode()).digest()
        self.counts["calls"] += 1
        hit = self.cache.get(key)
        if hit is None:
            start = time.perf_counter()
            try:
                chat = [self._message(m["role"], m["content"]) for m in messages]
                sampling = self.sampling[of].model_copy(update={"seed": seed})
                [completion] = await policy.generate(chat, None, sampling, 1)
            except RequestError as exc:
                raise NodeFailed(f"{node.name}: the endpoint refused the request: {exc}") from None
            usage = completion.usage
            hit = {"response": completion.text, "model": policy.name,
                   "prompt_tokens": usage.prompt_tokens if usage else 0,
                   "completion_tokens": usage.completion_tokens if usage else 0,
                   "latency_ms": (time.perf_counter() - start) * 1000}
            self.cache.put(key, hit)
            cached = False
        else:
            self.counts["cache_hits"] += 1
            cached = True
        record = CallRecord(
            call_id=f"{ctx.walk_id}:{len(ctx.calls)}", walk_id=ctx.walk_id, node=ctx.prefix + node.name,
            node_version=node.version, role=role, model=hit["model"], attempt=ctx.attempt, messages=messages,
            sampling=sampling_json, response=hit["response"], prompt_tokens=hit["prompt_tokens"],
            completion_tokens=hit["completion_tokens"], latency_ms=hit["latency_ms"], cache_hit=cached)
        ctx.calls.append(record)
        return record

    async def close(self) -> None:
        for policy in self.policies.values():
            await policy.close()
        self.cache.close()
