#!/usr/bin/env python
"""Benchmark of the trajectory store of a real `lachesis serve` process.

The server runs as a child process (`python -m lachesis serve --port 0 --data-dir DIR`, as in
tests/conftest.py); this script is the one client process, with every producer and the trainer as asyncio
tasks in it. Durability is always on in the store (SQLite WAL, synchronous=FULL, group commit).

Workload: groups of 8 sequences x 2,048 tokens (random int32 tokens < 128,256, 0/1 masks, float32
logprobs, a user and an assistant message, a reward), sent as msgpack with raw numpy arrays.

Producers: to keep the client's CPU low on a small machine, each producer packs ONE Group once with
exactly the code path of `EnvServerClient.submit` (`wire.packb(group.model_dump(mode="python",
exclude_none=True))`) and, per submission, splices a fresh fixed-length group_id into those bytes (a msgpack
string of the same length has the same header, so the body is byte-for-byte what `submit` would send for
that group_id; checked at start-up). The body is POSTed raw with aiohttp to /v1/groups with Content-Type and
Accept application/msgpack. The trainer uses the real `EnvServerClient.lease` / `.ack`.

Phases:
  1. ingest: 4 and 16 concurrent producers (and 16 with one trainer leasing/acking 8-group batches);
     groups/s, MB/s (10^6 bytes of request body), server CPU ms per group (utime+stime of the server
     process from /proc/<pid>/stat, all its threads), trainer lease latency under load.
  2. lease latency at queue depths (default 1,000 / 5,000 / 20,000) on one server filled step by step;
     each leased batch is acked and 8 fresh groups are submitted (untimed) so the depth stays constant.
     Plus one JSON lease (Accept: application/json) at each depth for comparison.
  3. server RSS (VmRSS) per queued group after filling to the largest depth.
  4. durability across kill -9: 16 producers + a trainer; SIGKILL the server mid-ingest, restart it on the
     same data dir, re-send the submissions that were in flight (as a retrying client would), lease
     everything and compare with what the server had acknowledged.

Usage:  .venv/bin/python bench/store_bench.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402

from env_server import wire  # noqa: E402
from env_server.client import Batch, EnvServerClient  # noqa: E402
from environments.types import Group, Message, Trajectory  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
MSGPACK_HEADERS = {"Content-Type": wire.MSGPACK, "Accept": wire.MSGPACK}
GID_LEN = 22  # f"{tag:_<8.8}-{producer:03d}-{index:09d}"
PLACEHOLDER = "#" * GID_LEN
VOCAB = 128_256


def gid_of(tag: str, producer: int, index: int) -> str:
    gid = f"{tag:_<8.8}-{producer:03d}-{index:09d}"
    assert len(gid) == GID_LEN, gid
    return gid


def parse_gid(gid: str) -> tuple[str, int, int]:
    tag, p, i = gid.split("-")
    return tag, int(p), int(i)


# -- workload ----------------------------------------------------------------------------------------
_WORDS = ("the", "answer", "is", "we", "compute", "sum", "of", "then", "so", "therefore", "step", "first",
          "multiply", "add", "result", "check", "value", "x", "=", "+", "42", "17", "because")


def _text(rng: np.random.Generator, n_words: int) -> str:
    return " ".join(rng.choice(_WORDS, n_words))


def make_group(rng: np.random.Generator, seqs: int, seq_len: int) -> Group:
    trajectories = []
    for _ in range(seqs):
        prompt_len = int(rng.integers(64, 512))
        tokens = rng.integers(0, VOCAB, seq_len, dtype=np.int32)
        masks = np.zeros(seq_len, dtype=np.int32)
        masks[prompt_len:] = 1
        logprobs = np.where(masks == 1, -rng.exponential(0.7, seq_len), 0.0).astype(np.float32)
        trajectories.append(Trajectory(
            messages=[Message(role="user", content=_text(rng, 60)),
                      Message(role="assistant", content=_text(rng, 300))],
            tokens=tokens, masks=masks, logprobs=logprobs,
            reward=float(rng.random() < 0.5), finish_reason="stop"))
    return Group(group_id=PLACEHOLDER, env="arithmetic", task_id=f"task-{int(rng.integers(1 << 30))}",
                 policy="bench", policy_version=0, trajectories=trajectories)


class BodyTemplate:
    """One producer's pre-packed group; `body(gid)` is what `EnvServerClient.submit` would send."""

    def __init__(self, group: Group):
        self.group = group
        packed = wire.packb(group.model_dump(mode="python", exclude_none=True))
        marker = PLACEHOLDER.encode()
        assert packed.count(marker) == 1
        i = packed.index(marker)
        self.head, self.tail = packed[:i], packed[i + len(marker):]
        self.size = len(packed)
        self.num_sequences = len(group.trajectories)
        # the splice is exactly the client's encoding of the same group with another group_id
        probe = gid_of("probe", 0, 0)
        assert self.body(probe) == wire.packb(
            group.model_copy(update={"group_id": probe}).model_dump(mode="python", exclude_none=True))

    def body(self, gid: str) -> bytes:
        return b"".join((self.head, gid.encode(), self.tail))


# -- the server process ------------------------------------------------------------------------------
class Server:
    def __init__(self, data_dir: Path, log_path: Path, command: list[str]):
        self.data_dir, self.log_path, self.command = data_dir, log_path, command
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.start_seconds = 0.0

    def start(self) -> Server:
        t0 = time.perf_counter()
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [*self.command, "--port", "0", "--data-dir", str(self.data_dir)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        line = self.proc.stdout.readline()
        if "listening on " not in line:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}; see {self.log_path}")
        self.url = line.split("listening on ")[1].split()[0]
        self.start_seconds = time.perf_counter() - t0
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain, never block the server
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> dict[str, float]:
        """CPU seconds (utime+stime) of the whole process, and of its main (event-loop) thread."""
        def read(path: str) -> tuple[float, float]:
            with open(path) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime: fields 14, 15 of stat(5)

        user, sys_ = read(f"/proc/{self.pid}/stat")
        return {"process": user + sys_, "sys": sys_, "loop": sum(read(f"/proc/{self.pid}/task/{self.pid}/stat"))}

    def rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()


# -- client side -------------------------------------------------------------------------------------
def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 timeout=aiohttp.ClientTimeout(total=300))


async def post_group(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    async with session.post(url + "/v1/groups", data=body, headers=MSGPACK_HEADERS) as resp:
        raw = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"submit: HTTP {resp.status}: {raw[:300]!r}")
        return wire.unpackb(raw)["duplicate"]


@dataclass
class ProduceResult:
    acked: list[str] = field(default_factory=list)  # submits answered 200 with duplicate=False
    duplicates: int = 0
    in_flight: list[str] = field(default_factory=list)  # failed with a connection error: outcome unknown
    bytes: int = 0


async def produce(session: aiohttp.ClientSession, url: str, templates: list[BodyTemplate], tag: str,
                  counts: list[int], result: ProduceResult, stop: asyncio.Event | None = None,
                  start_index: int = 0) -> None:
    """len(counts) concurrent producers; producer p submits counts[p] groups one after another."""

    async def one(p: int) -> None:
        tpl = templates[p % len(templates)]
        for i in range(start_index, start_index + counts[p]):
            if stop is not None and stop.is_set():
                return
            gid = gid_of(tag, p, i)
            body = tpl.body(gid)
            try:
                dup = await post_group(session, url, body)
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                if stop is None:
                    raise
                result.in_flight.append(gid)
                return
            result.bytes += len(body)
            if dup:
                result.duplicates += 1
            else:
                result.acked.append(gid)

    await asyncio.gather(*(one(p) for p in range(len(counts))))


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if p < total % parts else 0) for p in range(parts)]


@dataclass
class TrainerResult:
    lease_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    empty: int = 0
    partial: int = 0
    groups: int = 0
    acked_gids: list[str] = field(default_factory=list)  # ack answered before any failure
    ack_uncertain: list[str] = field(default_factory=list)  # ack sent, no answer (server killed)
    leased_unacked: list[str] = field(default_factory=list)  # leased, ack not sent


async def trainer(url: str, stop: asyncio.Event, interval: float, max_groups: int, result: TrainerResult,
                  tolerate_failure: bool = False) -> None:
    """Lease `max_groups` groups with the real client (msgpack), ack them, repeat every `interval` s."""
    async with EnvServerClient(url, retries=0, timeout=120) as client:
        while not stop.is_set():
            t_start = time.perf_counter()
            try:
                batch: Batch = await client.lease(max_groups=max_groups)
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                if not tolerate_failure:
                    raise
                return
            t_leased = time.perf_counter()
            if not batch.lease_id:
                result.empty += 1
            else:
                result.lease_ms.append((t_leased - t_start) * 1e3)
                if len(batch.groups) < max_groups:
                    result.partial += 1
                gids = [g.group_id for g in batch.groups]
                try:
                    await client.ack(batch.lease_id)
                except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                    if not tolerate_failure:
                        raise
                    result.ack_uncertain += gids
                    return
                result.ack_ms.append((time.perf_counter() - t_leased) * 1e3)
                result.groups += len(gids)
                result.acked_gids += gids
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t_start)))


async def get_stats(session: aiohttp.ClientSession, url: str) -> dict[str, int]:
    async with session.get(url + "/v1/stats") as resp:
        return orjson.loads(await resp.read())


async def ack(session: aiohttp.ClientSession, url: str, lease_id: str) -> int:
    async with session.post(f"{url}/v1/batches/{lease_id}/ack", headers={"Accept": wire.JSON}) as resp:
        raw = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"ack: HTTP {resp.status}: {raw[:300]!r}")
        return orjson.loads(raw)["acknowledged"]


async def timed_lease_msgpack(session: aiohttp.ClientSession, url: str, max_groups: int) -> dict[str, Any]:
    """Exactly `EnvServerClient.lease(max_groups=...)` (same body, headers and decoding: msgpack, then
    Group.model_validate per group), timed in two parts: HTTP round trip, then client-side decode."""
    t0 = time.perf_counter()
    async with session.post(url + "/v1/batches", data=wire.packb({"max_groups": max_groups, "min_policy_version": 0}),
                            headers=MSGPACK_HEADERS) as resp:
        raw = await resp.read()
        status, ctype = resp.status, resp.content_type
    t1 = time.perf_counter()
    if status != 200:
        raise RuntimeError(f"lease: HTTP {status}: {raw[:300]!r}")
    doc = wire.decode(raw, ctype)
    batch = Batch(doc["lease_id"], [Group.model_validate(g) for g in doc["groups"]])
    t2 = time.perf_counter()
    return {"batch": batch, "http_ms": (t1 - t0) * 1e3, "total_ms": (t2 - t0) * 1e3, "bytes": len(raw)}


async def timed_lease_json(session: aiohttp.ClientSession, url: str, max_groups: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    async with session.post(url + "/v1/batches", data=orjson.dumps({"max_groups": max_groups}),
                            headers={"Content-Type": wire.JSON, "Accept": wire.JSON}) as resp:
        raw = await resp.read()
        status = resp.status
    t1 = time.perf_counter()
    if status != 200:
        raise RuntimeError(f"lease: HTTP {status}: {raw[:300]!r}")
    doc = orjson.loads(raw)
    t2 = time.perf_counter()
    return {"lease_id": doc["lease_id"], "groups": len(doc["groups"]), "http_ms": (t1 - t0) * 1e3,
            "total_ms": (t2 - t0) * 1e3, "bytes": len(raw)}


# -- statistics and printing -------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99), "max": max(xs) if xs else float("nan"),
            "mean": float(np.mean(xs)) if xs else float("nan")}


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if v != v else (f"{v:,.1f}" if abs(v) >= 100 else f"{v:,.2f}")
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = [title, line, "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths))), line]
    for r in cells:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    out.append(line)
    return "\n".join(out)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the phases --------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, templates: list[BodyTemplate]):
        self.args, self.workdir, self.templates = args, workdir, templates
        self.servers: list[Server] = []
        self._n = 0

    def fresh_server(self, name: str) -> Server:
        self._n += 1
        data_dir = self.workdir / f"{self._n:02d}-{name}"
        srv = Server(data_dir, self.workdir / f"{self._n:02d}-{name}.log", self.args.server_cmd).start()
        self.servers.append(srv)
        return srv

    def dispose(self, srv: Server) -> None:
        srv.stop()
        shutil.rmtree(srv.data_dir, ignore_errors=True)

    async def warm_up(self, session: aiohttp.ClientSession, srv: Server, tag: str) -> None:
        """A few submissions (not counted) so connections are open and code paths are warm; then drained."""
        res = ProduceResult()
        await produce(session, srv.url, self.templates, tag, [2] * 8, res)
        while True:
            out = await timed_lease_msgpack(session, srv.url, 64)
            if not out["batch"].lease_id:
                break
            await ack(session, srv.url, out["batch"].lease_id)

    # 1. ingest ---------------------------------------------------------------------------------------
    async def ingest(self, producers: int, with_trainer: bool) -> dict[str, Any]:
        a = self.args
        srv = self.fresh_server(f"ingest{producers}{'t' if with_trainer else ''}")
        try:
            async with new_session() as session:
                await self.warm_up(session, srv, f"w{producers}")
                res, tres, stop = ProduceResult(), TrainerResult(), asyncio.Event()
                counts = [a.groups_per_producer] * producers
                cpu0, ru0 = srv.cpu(), resource.getrusage(resource.RUSAGE_SELF)
                t0 = time.perf_counter()
                ttask = (asyncio.create_task(trainer(srv.url, stop, a.trainer_interval, a.lease_groups, tres))
                         if with_trainer else None)
                await produce(session, srv.url, self.templates, f"i{producers}{'t' if with_trainer else ''}", counts, res)
                wall = time.perf_counter() - t0
                cpu1, ru1 = srv.cpu(), resource.getrusage(resource.RUSAGE_SELF)
                stop.set()
                if ttask:
                    await ttask
                stats = await get_stats(session, srv.url)
            n = len(res.acked)
            assert n == sum(counts) and res.duplicates == 0, (n, res.duplicates)
            client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
            out = {
                "producers": producers, "trainer": with_trainer, "groups": n, "seconds": wall,
                "groups_per_s": n / wall, "mb_per_s": res.bytes / wall / 1e6, "body_bytes": res.bytes / n,
                "server_cpu_ms_per_group": (cpu1["process"] - cpu0["process"]) * 1e3 / n,
                "server_loop_cpu_ms_per_group": (cpu1["loop"] - cpu0["loop"]) * 1e3 / n,
                "server_sys_cpu_ms_per_group": (cpu1["sys"] - cpu0["sys"]) * 1e3 / n,
                "server_cpu_util": (cpu1["process"] - cpu0["process"]) / wall,
                "client_cpu_ms_per_group": client_cpu * 1e3 / n,
                "server_rss_mib": srv.rss() / 2**20,
                "queued_after": stats["queued"],
            }
            if with_trainer:
                out["trainer"] = {"leases": len(tres.lease_ms), "empty_leases": tres.empty,
                                  "partial_leases": tres.partial, "groups_consumed": tres.groups,
                                  "lease_ms": summary(tres.lease_ms), "ack_ms": summary(tres.ack_ms)}
            return out
        finally:
            self.dispose(srv)

    # 2 + 3. lease latency at depth, RSS per queued group ---------------------------------------------------
    async def depths(self) -> dict[str, Any]:
        a = self.args
        srv = self.fresh_server("depth")
        results: dict[str, Any] = {"levels": [], "rss": {}}
        try:
            async with new_session() as session:
                await get_stats(session, srv.url)
                rss_start = srv.rss()
                results["rss"]["start_bytes"] = rss_start
                rss_at: dict[int, int] = {}
                refill = 0
                prod = a.fill_producers
                for depth in a.depths:
                    queued = (await get_stats(session, srv.url))["queued"]
                    need = depth - queued
                    if need > 0:
                        log(f"depth: filling {queued:,} -> {depth:,} with {prod} producers")
                        res = ProduceResult()
                        counts = split(need, prod)
                        t0 = time.perf_counter()
                        await produce(session, srv.url, self.templates, f"f{depth}", counts, res)
                        fill_s = time.perf_counter() - t0
                    else:
                        fill_s, res = 0.0, ProduceResult()
                    stats = await get_stats(session, srv.url)
                    rss_at[depth] = srv.rss()
                    log(f"depth {stats['queued']:,}: measuring {a.leases} leases of {a.lease_groups} groups")
                    lease_total, lease_http, acks, sizes = [], [], [], []
                    depth_min, depth_max = stats["queued"], stats["queued"]
                    for k in range(a.leases):
                        out = await timed_lease_msgpack(session, srv.url, a.lease_groups)
                        batch: Batch = out["batch"]
                        assert len(batch.groups) == a.lease_groups
                        assert sum(len(g.trajectories) for g in batch.groups) == a.lease_groups * self.templates[0].num_sequences
                        lease_total.append(out["total_ms"])
                        lease_http.append(out["http_ms"])
                        sizes.append(out["bytes"])
                        t0 = time.perf_counter()
                        await ack(session, srv.url, batch.lease_id)
                        acks.append((time.perf_counter() - t0) * 1e3)
                        # refill (untimed) so the depth stays where it was
                        await produce(session, srv.url, self.templates, f"r{depth}",
                                      [1] * a.lease_groups, ProduceResult(), start_index=refill)
                        refill += 1
                        q = (await get_stats(session, srv.url))["queued"]
                        depth_min, depth_max = min(depth_min, q), max(depth_max, q)
                    js = await timed_lease_json(session, srv.url, a.lease_groups)
                    await ack(session, srv.url, js["lease_id"])
                    await produce(session, srv.url, self.templates, f"j{depth}", [1] * a.lease_groups,
                                  ProduceResult())
                    results["levels"].append({
                        "depth": depth, "queued_at_start": stats["queued"], "queued_min": depth_min,
                        "queued_max": depth_max,
                        "fill_groups": need if need > 0 else 0, "fill_seconds": fill_s,
                        "fill_groups_per_s": (need / fill_s) if need > 0 else None,
                        "msgpack_lease_ms": summary(lease_total), "msgpack_lease_http_ms": summary(lease_http),
                        "ack_ms": summary(acks), "msgpack_lease_bytes": float(np.mean(sizes)),
                        "json_lease": {k: v for k, v in js.items() if k != "lease_id"},
                        "rss_bytes": rss_at[depth],
                    })
                top = max(a.depths)
                low = sorted(a.depths)[-2] if len(a.depths) > 1 else top  # growth between the two deepest levels
                results["rss"].update({
                    "end_bytes": rss_at[top], "depth": top,
                    "per_group_bytes": (rss_at[top] - rss_start) / top,
                    "slope_bytes": ((rss_at[top] - rss_at[low]) / (top - low)) if top > low else None,
                    "slope_from": low,
                })
        finally:
            self.dispose(srv)
        return results

    # 4. durability across kill -9 -------------------------------------------------------------------
    async def durability(self) -> dict[str, Any]:
        a = self.args
        srv = self.fresh_server("kill9")
        tag = "k" + secrets.token_hex(3)
        try:
            async with new_session() as session:
                res, tres, stop = ProduceResult(), TrainerResult(), asyncio.Event()
                ttask = asyncio.create_task(trainer(srv.url, stop, a.trainer_interval, a.lease_groups, tres,
                                                    tolerate_failure=True))
                ptask = asyncio.create_task(produce(session, srv.url, self.templates, tag,
                                                    [10**8] * a.kill_producers, res, stop=stop))
                while len(res.acked) < a.kill_after and not ptask.done():
                    await asyncio.sleep(0.005)
                srv.kill9()  # SIGKILL, then reap
                acked_at_kill = len(res.acked)
                log(f"kill9: SIGKILL after {acked_at_kill:,} acknowledged submissions")
                stop.set()
                await ptask
                await ttask
            submitted_acked = set(res.acked)
            consumed_acked = set(tres.acked_gids)
            ack_uncertain = set(tres.ack_uncertain)
            in_flight = list(res.in_flight)

            t0 = time.perf_counter()
            srv.start()  # same data dir
            restart_s = time.perf_counter() - t0
            log(f"kill9: restarted in {restart_s:.2f}s; re-sending {len(in_flight)} in-flight submissions")
            async with new_session() as session:
                stats_before = await get_stats(session, srv.url)
                resent_dup, resent_new = 0, 0
                for gid in in_flight:
                    _, p, _ = parse_gid(gid)
                    if await post_group(session, srv.url, self.templates[p % len(self.templates)].body(gid)):
                        resent_dup += 1
                    else:
                        resent_new += 1
                served: collections.Counter[str] = collections.Counter()
                corrupt = 0
                while True:
                    async with session.post(srv.url + "/v1/batches", data=wire.packb({"max_groups": 64}),
                                            headers=MSGPACK_HEADERS) as resp:
                        doc = wire.unpackb(await resp.read())
                    if not doc["lease_id"]:
                        break
                    for g in doc["groups"]:
                        gid = g["group_id"]
                        served[gid] += 1
                        _, p, _ = parse_gid(gid)
                        if wire.packb(g) != self.templates[p % len(self.templates)].body(gid):
                            corrupt += 1
                    await ack(session, srv.url, doc["lease_id"])
                stats_after = await get_stats(session, srv.url)
            stored = set(served)
            # acknowledged to the producer, and neither served now nor consumed (acked) by the trainer before
            lost = submitted_acked - stored - consumed_acked - ack_uncertain
            return {
                "producers": a.kill_producers,
                "submit_acked_before_kill": len(submitted_acked),
                "in_flight_at_kill": len(in_flight),
                "trainer_consumed_before_kill": len(consumed_acked),
                "trainer_ack_in_flight_at_kill": len(ack_uncertain),
                "restart_seconds": restart_s,
                "queued_after_restart": stats_before["queued"],
                "acknowledged_after_restart": stats_before["acknowledged"],
                "resent_in_flight_duplicate": resent_dup, "resent_in_flight_new": resent_new,
                "served_after_restart": sum(served.values()), "served_distinct": len(stored),
                "stored_after_restart": stats_before["queued"] + stats_before["acknowledged"],
                "lost": len(lost), "lost_examples": sorted(lost)[:5],
                "duplicates_served": sum(c - 1 for c in served.values() if c > 1),
                "reserved_after_ack": len(stored & consumed_acked),
                "unknown_served": len(stored - submitted_acked - set(in_flight)),
                "corrupt": corrupt,
                "queued_at_end": stats_after["queued"],
            }
        finally:
            self.dispose(srv)


# -- main --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: small depths and counts")
    p.add_argument("--seqs", type=int, default=8, help="sequences per group")
    p.add_argument("--seq-len", type=int, default=2048, help="tokens per sequence")
    p.add_argument("--producer-counts", type=int, nargs="+", default=[4, 16], help="ingest concurrency levels")
    p.add_argument("--groups-per-producer", type=int, default=None, help="N per producer in ingest (default 200, quick 25)")
    p.add_argument("--lease-groups", type=int, default=8, help="groups per leased batch (8 x 8 = 64 sequences)")
    p.add_argument("--trainer-interval", type=float, default=0.1, help="seconds between a trainer's lease starts")
    p.add_argument("--depths", type=int, nargs="+", default=None,
                   help="queue depths for lease latency (default 1000 5000 20000, quick 200 1000 2000)")
    p.add_argument("--leases", type=int, default=30, help="timed leases per depth")
    p.add_argument("--fill-producers", type=int, default=16, help="concurrent producers filling the queue")
    p.add_argument("--kill-producers", type=int, default=16, help="producers during the kill -9 check")
    p.add_argument("--kill-after", type=int, default=None,
                   help="SIGKILL once this many submissions are acknowledged (default 1500, quick 150)")
    p.add_argument("--tmp", default=tempfile.gettempdir(), help="parent of the scratch directory (deleted at the end)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (server logs)")
    p.add_argument("--skip", nargs="*", default=[], choices=["ingest", "depth", "kill9"], help="phases to skip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--server-cmd", nargs="+", default=[sys.executable, "-m", "lachesis", "serve"],
                   help="command that starts the server (--port 0 --data-dir DIR are appended); for A/B runs")
    p.add_argument("--json", metavar="PATH", help="also write all figures as JSON to PATH")
    a = p.parse_args(argv)
    a.groups_per_producer = a.groups_per_producer or (25 if a.quick else 200)
    a.depths = sorted(a.depths or ([200, 1000, 2000] if a.quick else [1000, 5000, 20000]))
    a.kill_after = a.kill_after or (150 if a.quick else 1500)
    return a


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    out = []
    env = results["env"]
    out.append(f"Lachesis trajectory store benchmark  ({env['groups_desc']}, body {env['body_bytes'] / 1e3:,.1f} kB msgpack)")
    out.append(f"command: {env['command']}")
    out.append(f"host: {env['cpus']} CPUs, Python {env['python']}, {env['platform']}; server = child process, "
               f"client = this process")
    if "ingest" in results:
        rows = []
        for r in results["ingest"]:
            label = f"{r['producers']} producers" + (" + trainer" if isinstance(r["trainer"], dict) else "")
            rows.append([label, r["groups"], r["seconds"], r["groups_per_s"], r["mb_per_s"],
                         r["server_cpu_ms_per_group"], r["server_loop_cpu_ms_per_group"],
                         r["server_sys_cpu_ms_per_group"],
                         r["server_cpu_util"] * 100, r["client_cpu_ms_per_group"]])
        out += ["", table("1. Ingest (durable: fsync'd group commit before each 200)",
                          ["run", "groups", "s", "groups/s", "MB/s", "srv CPU ms/grp", "of it loop thread", "of it kernel",
                           "srv CPU %", "client CPU ms/grp"], rows)]
        for r in results["ingest"]:
            if isinstance(r["trainer"], dict):
                t = r["trainer"]
                l, k = t["lease_ms"], t["ack_ms"]
                out.append(f"   trainer during the {r['producers']}-producer run (EnvServerClient.lease, "
                           f"max_groups={args.lease_groups}, every {args.trainer_interval}s): {l['n']} leases "
                           f"({t['partial_leases']} partial, {t['empty_leases']} empty), {t['groups_consumed']:,} groups")
                out.append(f"   lease ms p50 {l['p50']:.1f}  p99 {l['p99']:.1f}  max {l['max']:.1f}   |   "
                           f"ack ms p50 {k['p50']:.1f}  p99 {k['p99']:.1f}  max {k['max']:.1f}")
    if "depth" in results:
        d = results["depth"]
        rows = []
        for lv in d["levels"]:
            m, h, k, j = lv["msgpack_lease_ms"], lv["msgpack_lease_http_ms"], lv["ack_ms"], lv["json_lease"]
            rows.append([lv["depth"], f"{lv['queued_min']:,}-{lv['queued_max']:,}", m["n"], m["p50"], m["p99"], m["max"],
                         h["p50"], h["p99"], k["p50"], k["p99"], j["total_ms"], j["bytes"] / 1e6,
                         lv["fill_groups_per_s"] if lv["fill_groups_per_s"] else "-"])
        out += ["", table(f"2. Lease latency, {args.lease_groups} groups = {args.lease_groups * args.seqs} sequences "
                          "per lease (each acked, then 8 groups re-submitted untimed)",
                          ["depth", "queued during", "n", "p50 ms", "p99 ms", "max ms", "http p50", "http p99",
                           "ack p50", "ack p99", "JSON ms", "JSON MB", "fill groups/s"], rows)]
        out.append("   p50/p99/max: EnvServerClient.lease end to end (msgpack + Group validation); http: until the "
                   "response body is read; JSON: one lease with Accept: application/json (incl. orjson.loads)")
        r = d["rss"]
        out += ["", "3. Server RSS per queued group",
                f"   RSS at start {r['start_bytes'] / 2**20:,.1f} MiB, at {r['depth']:,} queued "
                f"{r['end_bytes'] / 2**20:,.1f} MiB  ->  {r['per_group_bytes']:,.0f} bytes/group "
                f"(growth from {r['slope_from']:,} to {r['depth']:,} queued: "
                + (f"{r['slope_bytes']:,.0f} bytes/group)" if r["slope_bytes"] is not None else "n/a)"),
                "   RSS by depth: " + ", ".join(f"{lv['depth']:,}: {lv['rss_bytes'] / 2**20:,.1f} MiB" for lv in d["levels"])]
    if "kill9" in results:
        k = results["kill9"]
        out += ["", f"4. Durability across kill -9 ({k['producers']} producers + trainer, SIGKILL mid-ingest, "
                    "restart on the same data dir)",
                f"   submissions acknowledged before kill   {k['submit_acked_before_kill']:>8,}",
                f"   submissions in flight at kill          {k['in_flight_at_kill']:>8,}  (re-sent after restart: "
                f"{k['resent_in_flight_duplicate']} already stored, {k['resent_in_flight_new']} new)",
                f"   consumed+acked by trainer before kill  {k['trainer_consumed_before_kill']:>8,}  "
                f"(+{k['trainer_ack_in_flight_at_kill']} in an ack in flight)",
                f"   server restart (to listening)          {k['restart_seconds']:>8.2f} s",
                f"   stored after restart (queued + acked)  {k['stored_after_restart']:>8,}  "
                f"({k['queued_after_restart']:,} queued)",
                f"   served after restart (leased all)      {k['served_after_restart']:>8,}",
                f"   LOST (acked, never stored/served)      {k['lost']:>8,}   (must be 0)",
                f"   DUPLICATES served                      {k['duplicates_served']:>8,}   (must be 0)",
                f"   served again after trainer's ack       {k['reserved_after_ack']:>8,}   (must be 0)",
                f"   corrupt payloads                       {k['corrupt']:>8,}   (must be 0)",
                f"   queued at end                          {k['queued_at_end']:>8,}"]
    out += ["", "Targets: " + "; ".join(targets(results))]
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[str]:
    out = []
    if "ingest" in results:
        best = max(r["groups_per_s"] for r in results["ingest"])
        out.append(f"ingest >= 500 groups/s: {'met' if best >= 500 else 'NOT met'} (best {best:,.0f})")
    if "depth" in results:
        worst = max(lv["msgpack_lease_ms"]["p99"] for lv in results["depth"]["levels"])
        out.append(f"64-sequence lease <= 50 ms at every depth: {'met' if worst <= 50 else 'NOT met'} (worst p99 {worst:.1f} ms)")
    if "kill9" in results:
        k = results["kill9"]
        bad = k["lost"] + k["duplicates_served"] + k["reserved_after_ack"] + k["corrupt"]
        out.append(f"zero lost across kill -9: {'met' if bad == 0 else 'NOT met'} (lost {k['lost']}, duplicates "
                   f"{k['duplicates_served'] + k['reserved_after_ack']}, corrupt {k['corrupt']})")
    return out


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    n_templates = max([args.fill_producers, args.kill_producers, *args.producer_counts])
    templates = [BodyTemplate(make_group(rng, args.seqs, args.seq_len)) for _ in range(n_templates)]
    body = float(np.mean([t.size for t in templates]))
    need = max(args.depths) * body * 1.3 + 2e9
    free = shutil.disk_usage(args.tmp).free
    if free < need:
        raise SystemExit(f"{args.tmp} has {free / 1e9:.1f} GB free; this run needs about {need / 1e9:.1f} GB")
    workdir = Path(tempfile.mkdtemp(prefix="lachesis-store-bench-", dir=args.tmp))
    log(f"scratch dir {workdir} ({free / 1e9:.0f} GB free); body {body / 1e3:.1f} kB")
    results: dict[str, Any] = {"env": {
        "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "groups_desc": f"{args.seqs} seqs x {args.seq_len} tokens per group", "body_bytes": body,
        "args": vars(args), "command": " ".join([Path(sys.executable).name, *sys.argv])}}
    bench = Bench(args, workdir, templates)
    try:
        if "ingest" not in args.skip:
            results["ingest"] = []
            runs = [(n, False) for n in args.producer_counts] + [(max(args.producer_counts), True)]
            for n, with_trainer in runs:
                log(f"ingest: {n} producers x {args.groups_per_producer} groups{' + trainer' if with_trainer else ''}")
                results["ingest"].append(await bench.ingest(n, with_trainer))
        if "depth" not in args.skip:
            results["depth"] = await bench.depths()
        if "kill9" not in args.skip:
            log(f"kill9: {args.kill_producers} producers + trainer, SIGKILL after {args.kill_after} acked submissions")
            results["kill9"] = await bench.durability()
    finally:
        for srv in bench.servers:
            if srv.proc is not None and srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(amain(args))
    print(report(results, args), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    ok = True
    if "kill9" in results:
        k = results["kill9"]
        ok = k["lost"] == 0 and k["duplicates_served"] == 0 and k["reserved_after_ack"] == 0 and k["corrupt"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
