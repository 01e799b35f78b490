"""The durable trajectory store: groups in, FIFO batches out, nothing acknowledged ever lost.

Durability: every accepted group is committed to SQLite (WAL, synchronous=FULL, so the commit fsyncs)
before `submit` returns. Writes go through one writer thread that commits whatever has queued up in one
transaction (group commit), so many concurrent producers share each fsync.

Serving: the queue order lives in memory as a heap of sequence numbers with each group's token count and
policy version (~150 bytes a group); payloads stay on disk and are read only when leased. Forming a batch
pops from the heap, so its cost does not depend on the queue's depth. Leases live in memory: a lease that
expires, or a server restart, puts its groups back in the queue at their original place. Acknowledging a
lease is committed before it returns, so acknowledged groups are never served again.

A group whose policy version is below a lease's `min_policy_version` is marked stale and leaves the queue
for good (policy versions only grow, so it could never be used again); it stays on disk.
"""

from __future__ import annotations

import asyncio
import heapq
import queue
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environments.types import Group

from . import wire

QUEUED, ACKED, STALE = 0, 1, 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id TEXT NOT NULL UNIQUE,
    env TEXT NOT NULL,
    task_id TEXT NOT NULL,
    policy_version INTEGER NOT NULL,
    num_sequences INTEGER NOT NULL,
    num_tokens INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS groups_queued ON groups(state, seq);
"""


@dataclass(frozen=True, slots=True)
class Meta:
    num_tokens: int
    policy_version: int


@dataclass(frozen=True)
class Lease:
    lease_id: str
    seqs: list[int]
    metas: list[Meta]
    expires: float


class _Writer(threading.Thread):
    """Runs write operations in batches, one transaction and one fsync per batch."""

    def __init__(self, path: Path):
        super().__init__(name="store-writer", daemon=True)
        self.path = path
        self.ops: queue.Queue = queue.Queue()

    def submit(self, op: Callable[[sqlite3.Connection], Any]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.ops.put((op, fut, loop))
        return fut

    def stop(self) -> None:
        self.ops.put(None)
        self.join()

    def run(self) -> None:
        conn = _connect(self.path)
        while True:
            batch = [self.ops.get()]
            while batch[-1] is not None and len(batch) < 512:
                try:
                    batch.append(self.ops.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is None
            batch = [b for b in batch if b is not None]
            results: list[tuple[bool, Any]] = []
            try:
                with conn:  # one transaction; commit (and fsync) on exit
                    for op, _, _ in batch:
                        results.append((True, op(conn)))
            except Exception as exc:  # nothing in this batch was committed: fail all of it
                results = [(False, exc)] * len(batch)
            for (op, fut, loop), (ok, value) in zip(batch, results):
                loop.call_soon_threadsafe(_resolve, fut, ok, value)
            if stop:
                conn.close()
                return


def _resolve(fut: asyncio.Future, ok: bool, value: Any) -> None:
    if not fut.done():
        fut.set_result(value) if ok else fut.set_exception(value)


def _set_state(state: int, seqs: list[int]) -> Callable[[sqlite3.Connection], None]:
    def op(conn: sqlite3.Connection) -> None:
        conn.executemany("UPDATE groups SET state = ? WHERE seq = ?", [(state, s) for s in seqs])

    return op


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    # A payload is ~200 KB: 64 KiB pages cut per-page overhead ~16× (takes effect when the file is created).
    conn.execute("PRAGMA page_size=65536")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    # Checkpoints run on their own thread (_Checkpointer), not inside the writer's commits.
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA journal_size_limit={256 << 20}")
    conn.isolation_level = "DEFERRED"  # `with conn` opens and commits a transaction
    return conn


class _Checkpointer(threading.Thread):
    """Copies the write-ahead log into the database every `interval` seconds, off the writer's path."""

    def __init__(self, path: Path, interval: float = 0.5):
        super().__init__(name="store-checkpointer", daemon=True)
        self.path, self.interval = path, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        conn = _connect(self.path)
        while not self.stopped.wait(self.interval):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join()


class TrajectoryStore:
    def __init__(self, data_dir: str | Path, *, default_lease_seconds: float = 300.0):
        self.path = Path(data_dir) / "store.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.default_lease_seconds = default_lease_seconds
        conn = _connect(self.path)
        conn.executescript(_SCHEMA)
        self._heap: list[int] = []
        self._queued: dict[int, Meta] = {}
        for seq, tokens, version in conn.execute(
            "SELECT seq, num_tokens, policy_version FROM groups WHERE state = ? ORDER BY seq", (QUEUED,)
        ):
            self._heap.append(seq)  # ascending order is already a valid heap
            self._queued[seq] = Meta(tokens, version)
        counts = dict(conn.execute("SELECT state, COUNT(*) FROM groups GROUP BY state").fetchall())
        self._acked, self._stale = counts.get(ACKED, 0), counts.get(STALE, 0)
        self._reader_conn = conn  # used only from the single reader thread below
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reader")
        self._leases: dict[str, Lease] = {}
        self._recent_acks: OrderedDict[str, int] = OrderedDict()  # makes a retried ack succeed again
        self._expiry: list[tuple[float, str]] = []
        self._writer = _Writer(self.path)
        self._writer.start()
        self._checkpointer = _Checkpointer(self.path)
        self._checkpointer.start()

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.stop)
        await asyncio.to_thread(self._checkpointer.stop)
        self._reader.submit(self._reader_conn.close).result()
        self._reader.shutdown()

    # -- producers ----------------------------------------------------------------------------------
    async def submit(self, group: Group, payload: bytes | None = None) -> bool:
        """Commit a group durably; returns True when its group_id was already stored (nothing written).
        `payload` is the group's msgpack encoding when the caller already has it."""
        if payload is None:
            payload = wire.packb(group.model_dump(mode="python", exclude_none=True))
        row = (group.group_id, group.env, group.task_id, group.policy_version, len(group.trajectories),
               group.num_tokens, time.time(), payload)

        def insert(conn: sqlite3.Connection) -> int | None:
            cur = conn.execute(
                "INSERT OR IGNORE INTO groups (group_id, env, task_id, policy_version, num_sequences,"
                " num_tokens, created, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            return cur.lastrowid if cur.rowcount == 1 else None

        seq = await self._writer.submit(insert)
        if seq is None:
            return True
        heapq.heappush(self._heap, seq)
        self._queued[seq] = Meta(group.num_tokens, group.policy_version)
        return False

    # -- consumers ----------------------------------------------------------------------------------
    async def lease(self, *, max_groups: int | None = None, max_tokens: int | None = None,
                    min_policy_version: int = 0, lease_seconds: float | None = None) -> tuple[str, list[bytes]]:
        """Lease the oldest queued groups, up to `max_groups` and/or `max_tokens` (a group larger than the
        token budget on its own is still served, alone, so it cannot block the queue). Returns the lease id
        and the groups' msgpack payloads, oldest first; no groups means no lease."""
        self.expire()
        taken, metas, tokens, stale = [], [], 0, []
        while self._heap and (max_groups is None or len(taken) < max_groups):
            seq = self._heap[0]
            meta = self._queued[seq]
            if meta.policy_version < min_policy_version:
                heapq.heappop(self._heap)
                del self._queued[seq]
                stale.append(seq)
                continue
            if max_tokens is not None and taken and tokens + meta.num_tokens > max_tokens:
                break
            heapq.heappop(self._heap)
            del self._queued[seq]
            taken.append(seq)
            metas.append(meta)
            tokens += meta.num_tokens
        if stale:
            self._stale += len(stale)
            # Not awaited: if this is lost in a crash the groups are simply found stale again.
            self._writer.submit(_set_state(STALE, stale))
        if not taken:
            return "", []
        expires = time.monotonic() + (lease_seconds or self.default_lease_seconds)
        lease = Lease(uuid.uuid4().hex, taken, metas, expires)
        self._leases[lease.lease_id] = lease
        heapq.heappush(self._expiry, (lease.expires, lease.lease_id))
        try:
            payloads = await asyncio.get_running_loop().run_in_executor(self._reader, self._read, taken)
        except BaseException:
            self._requeue(self._leases.pop(lease.lease_id))
            raise
        return lease.lease_id, payloads

    def _read(self, seqs: list[int]) -> list[bytes]:
        marks = ",".join("?" * len(seqs))
        rows = dict(self._reader_conn.execute(f"SELECT seq, payload FROM groups WHERE seq IN ({marks})", seqs))
        return [rows[s] for s in seqs]

    async def ack(self, lease_id: str) -> int:
        """Mark a lease's groups consumed, durably. KeyError if the lease is unknown or has expired."""
        if lease_id in self._recent_acks:
            return self._recent_acks[lease_id]
        self.expire()
        lease = self._leases.pop(lease_id)
        try:
            await self._writer.submit(_set_state(ACKED, lease.seqs))
        except BaseException:
            self._requeue(lease)
            raise
        self._acked += len(lease.seqs)
        self._recent_acks[lease_id] = len(lease.seqs)
        if len(self._recent_acks) > 10_000:
            self._recent_acks.popitem(last=False)
        return len(lease.seqs)

    def expire(self) -> None:
        now = time.monotonic()
        while self._expiry and self._expiry[0][0] <= now:
            _, lease_id = heapq.heappop(self._expiry)
            lease = self._leases.pop(lease_id, None)
            if lease is not None:
                self._requeue(lease)

    def _requeue(self, lease: Lease) -> None:
        for seq, meta in zip(lease.seqs, lease.metas):
            heapq.heappush(self._heap, seq)
            self._queued[seq] = meta

    def stats(self) -> dict[str, int]:
        self.expire()
        return {
            "queued": len(self._queued),
            "queued_tokens": sum(m.num_tokens for m in self._queued.values()),
            "leased": sum(len(lease.seqs) for lease in self._leases.values()),
            "leases": len(self._leases),
            "acknowledged": self._acked,
            "stale": self._stale,
        }
