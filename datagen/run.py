"""Running DataForge: the run's configuration (TOML), the walk worker, and its two runners.

The same `WalkWorker` runs in-process (`workers = 1`) or as Ray actors (`workers > 1`), each holding many
concurrent walks on one asyncio loop (`concurrency`), bounded per endpoint by the policy's pool. Walks are
spread over workers by a hash of their id; each worker writes its own shards and manifest. Walks whose
model calls fail for infrastructure reasons (`EngineError` after the pool's own retries) are deferred and
retried in later rounds, never recorded as failures; those still failing are left for the next run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rollout.policies import EngineError, Sampling, load_policy

from environments.config import load_toml
from .calls import LLM, CallCache, policy_identity
from .catalog import load_catalog
from .graph import Graph
from .output import RunWriter, coverage, done_walks
from .pipeline import GraphOptions, build_graph
from .seeds import CleanConfig, DedupConfig, SeedReport, SeedSource, prepare_seeds, seed_rows
from .state import Seed
from .walk import Coverage, run_walk, walk_id

ROLES = ("default", "transform", "persona", "instruct", "taxonomy", "answer", "refine", "judge")


class DatagenConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str = Field(min_length=1)
    out_dir: str
    seeds: list[SeedSource] = Field(min_length=1)
    cleaning: CleanConfig = Field(default_factory=CleanConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    replicates: int = Field(default=1, ge=1)  # walks per seed
    catalog: str | None = None  # a directory of YAML files extending the built-in catalog
    graph: GraphOptions = Field(default_factory=GraphOptions)
    # The model map: named policies ({"kind": "embedded" | "sglang" | "openai" | "module:Class", ...}) and the
    # policy playing each role (generator roles, judge); "default" covers the roles not named.
    policies: dict[str, dict[str, Any]] = Field(min_length=1)
    roles: dict[str, str] = Field(default_factory=dict)
    sampling: dict[str, Sampling] = Field(default_factory=lambda: {"default": Sampling(temperature=0.8, max_tokens=1024)})
    workers: int = Field(default=1, ge=1)  # 1: in-process; more: Ray actors
    concurrency: int = Field(default=256, ge=1)  # walks in flight per worker
    worker_cpus: float = Field(default=0.5, gt=0)
    shard_walks: int = Field(default=256, ge=1)  # walks per Parquet shard
    ray_address: str | None = None
    cache: str | None = None  # the call cache (SQLite); default out_dir/calls.sqlite
    max_deferrals: int = Field(default=3, ge=0)  # rounds of retrying walks deferred by engine failures
    defer_seconds: float = Field(default=5.0, ge=0)  # first wait before a deferred round (doubles)

    @model_validator(mode="after")
    def _model_map(self) -> DatagenConfig:
        if "default" not in self.roles:
            if len(self.policies) != 1:
                raise ValueError("roles.default: name the policy for roles not listed (there are several policies)")
            self.roles["default"] = next(iter(self.policies))
        for role, name in self.roles.items():
            if role not in ROLES:
                raise ValueError(f"roles.{role}: unknown role; roles are {', '.join(ROLES)}")
            if name not in self.policies:
                raise ValueError(f"roles.{role}: no policy named {name!r} (policies: {', '.join(self.policies)})")
        for role in self.sampling:
            if role not in ROLES:
                raise ValueError(f"sampling.{role}: unknown role; roles are {', '.join(ROLES)}")
        self.sampling.setdefault("default", Sampling(temperature=0.8, max_tokens=1024))
        for name, policy in self.policies.items():
            if "kind" not in policy:
                raise ValueError(f"policies.{name}.kind: required ('embedded', 'sglang', 'openai' or 'module:Class')")
        return self

    @property
    def cache_path(self) -> Path:
        return Path(self.cache) if self.cache else Path(self.out_dir) / "calls.sqlite"

    @classmethod
    def load(cls, path: str | Path) -> DatagenConfig:
        return load_toml(cls, path)


def graph_of(config: DatagenConfig) -> Graph:
    return build_graph(load_catalog(config.catalog), config.graph)


@dataclass
class WorkerReport:
    coverage: Coverage = field(default_factory=Coverage)
    deferred: int = 0  # walks left for the next run after every deferral round
    calls: int = 0
    cache_hits: int = 0
    tokens: int = 0


class WalkWorker:
    """Plain class; the Ray runner wraps it with `ray.remote`."""

    def __init__(self, config: dict[str, Any], policies: dict[str, dict[str, Any]], identities: dict[str, str],
                 worker: int):
        self.config = cfg = DatagenConfig.model_validate(config)
        self.graph = graph_of(cfg)
        self.llm = LLM(policies={name: load_policy(p) for name, p in policies.items()}, identities=identities,
                       roles=cfg.roles, sampling=cfg.sampling, cache=CallCache(cfg.cache_path))
        self.writer = RunWriter(cfg.out_dir, worker)

    async def run(self, items: list[tuple[dict[str, Any], int]], progress: bool = False) -> WorkerReport:
        """Walk every (seed, replicate) not already in a manifest; write shards as walks finish."""
        cfg, report = self.config, WorkerReport()
        done = done_walks(cfg.out_dir)
        seeds: dict[str, Seed] = {}  # each seed validated once, however many replicates
        pending = [(seeds.get(s["seed_id"]) or seeds.setdefault(s["seed_id"], Seed.model_validate(s)), r)
                   for s, r in items if walk_id(self.graph.fingerprint, s["seed_id"], r) not in done]
        bar = _progress_bar(len(pending)) if progress else None
        deferred: list[tuple[Seed, int]] = []

        async def one(seed: Seed, replicate: int) -> None:
            try:
                result = await run_walk(self.graph, seed, replicate, self.llm)
            except EngineError:
                deferred.append((seed, replicate))
                return
            self.writer.add(result)
            report.coverage.add(result)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(accepted=report.coverage.statuses["accepted"], refresh=False)
            report.tokens += sum(c.completion_tokens for c in result.calls if not c.cache_hit)
            if len(self.writer.buffer) >= cfg.shard_walks:
                self.llm.cache.flush()  # the calls of the walks still running survive a crash from here on
                self.writer.flush()

        with _rare_collections():
            for round_ in range(cfg.max_deferrals + 1):
                deferred = []
                await _in_lanes(one, pending, cfg.concurrency)
                if not deferred or round_ == cfg.max_deferrals:
                    break
                pending = deferred
                await asyncio.sleep(cfg.defer_seconds * 2**round_)
        self.writer.flush()
        if bar is not None:
            bar.close()
        report.deferred = len(deferred)
        report.calls, report.cache_hits = self.llm.counts["calls"], self.llm.counts["cache_hits"]
        return report

    async def close(self) -> None:
        await self.llm.close()


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Fewer cyclic-GC passes while walking. Walks allocate many short-lived objects that reference counting
    frees; the default thresholds made the collector about a tenth of a walk's cost, most of it re-scanning
    the long-lived modules and catalog, which freezing takes out of its view."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def _in_lanes(work: Callable[..., Awaitable[None]], items: list[tuple[Any, ...]], lanes: int) -> None:
    """`work(*item)` for every item, `lanes` at a time: fixed lanes pulling from one iterator, so a share of a
    million walks holds `lanes` coroutines, not a task and a semaphore waiter per walk from the start."""
    queue = iter(items)

    async def lane() -> None:
        for item in queue:
            await work(*item)

    await asyncio.gather(*(lane() for _ in range(min(lanes, len(items)))))


@dataclass
class Summary:
    walks: int = 0  # planned (seeds × replicates)
    skipped: int = 0  # finished by an earlier run
    deferred: int = 0
    coverage: Coverage = field(default_factory=Coverage)  # of the walks made now
    run_coverage: Coverage = field(default_factory=Coverage)  # of every walk in out_dir
    calls: int = 0
    cache_hits: int = 0
    tokens: int = 0
    seconds: float = 0.0
    seeds: SeedReport | None = None
    out_dir: str = ""

    @property
    def statuses(self) -> Counter[str]:
        return self.coverage.statuses

    def table(self) -> str:
        done = sum(self.statuses.values())
        lines = [self.seeds.summary() if self.seeds else "",
                 f"walks: {self.walks} planned, {self.skipped} done before, {done} now, {self.deferred} deferred "
                 f"to the next run; {self.calls} model calls ({self.cache_hits} from the cache), {self.tokens} "
                 f"generated tokens in {self.seconds:.1f} s ({done / max(self.seconds, 1e-9):.1f} walks/s)",
                 "the whole run: " + self.run_coverage.report(), f"output: {self.out_dir}"]
        return "\n".join(line for line in lines if line)

    def absorb(self, report: WorkerReport) -> None:
        self.coverage.merge(report.coverage)
        self.deferred += report.deferred
        self.calls += report.calls
        self.cache_hits += report.cache_hits
        self.tokens += report.tokens


def run_fingerprint(graph: Graph, config: DatagenConfig) -> str:
    """What must not change for a run to be resumed: the graph, the models, their roles and sampling."""
    doc = {"graph": graph.fingerprint, "policies": {n: policy_identity(p) for n, p in config.policies.items()},
           "roles": config.roles, "sampling": {k: v.model_dump() for k, v in config.sampling.items()}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _check_run(out: Path, fingerprint: str, run_id: str) -> None:
    marker = out / "run.json"
    if marker.exists():
        previous = json.loads(marker.read_text())
        if previous["fingerprint"] != fingerprint:
            raise ValueError(f"{out} holds run {previous['run_id']!r} made with another graph, models or sampling "
                             f"(run fingerprint {previous['fingerprint']}, now {fingerprint}): use a new out_dir")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"run_id": run_id, "fingerprint": fingerprint}) + "\n")


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="datagen", unit="walk", dynamic_ncols=True)


async def run_datagen(config: DatagenConfig, *, workers: int | None = None, progress: bool = False) -> Summary:
    """Prepare seeds, then walk seeds × replicates on `workers` (default config.workers) and write the run."""
    start = time.perf_counter()
    out = Path(config.out_dir)
    graph = graph_of(config)
    _check_run(out, run_fingerprint(graph, config), config.run_id)
    seeds, seed_report = _seeds(config, out)
    items = [(s.model_dump(mode="json"), r) for s in seeds for r in range(config.replicates)]
    done = done_walks(out)
    pending = [(s, r) for s, r in items if walk_id(graph.fingerprint, s["seed_id"], r) not in done]
    summary = Summary(walks=len(items), skipped=len(items) - len(pending), seeds=seed_report, out_dir=str(out))
    if pending:
        identities = {name: policy_identity(p) for name, p in config.policies.items()}
        async with AsyncExitStack() as stack:
            policies = {name: await _serve(stack, p) for name, p in config.policies.items()}
            n = workers or config.workers
            if n == 1:
                worker = WalkWorker(config.model_dump(mode="json"), policies, identities, 0)
                try:
                    summary.absorb(await worker.run(pending, progress))
                finally:
                    await worker.close()
            else:
                await _run_on_ray(config, policies, identities, pending, n, graph.fingerprint, summary)
    summary.run_coverage = coverage(out)
    summary.seconds = time.perf_counter() - start
    return summary


def _seeds(config: DatagenConfig, out: Path) -> tuple[list[Seed], SeedReport]:
    """The run's prepared seeds: made once and kept in out_dir (seeds.parquet), remade when the sources
    (their configuration, or a file's size or time), the cleaning or the deduplication change."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = [Path(s.path) for s in config.seeds if s.path != "builtin" and Path(s.path).is_file()]
    key = hashlib.sha256(json.dumps([[s.model_dump() for s in config.seeds], config.cleaning.model_dump(),
                                     config.dedup.model_dump(), [(str(f), f.stat().st_size, f.stat().st_mtime_ns)
                                                                  for f in files]]).encode()).hexdigest()
    marker = out / "seeds.json"
    if marker.exists() and (kept := json.loads(marker.read_text()))["key"] == key:
        rows = pq.read_table(out / "seeds.parquet").to_pylist()
        return [Seed.model_validate({**r, "meta": json.loads(r["meta"])}) for r in rows], SeedReport(**kept["report"])
    seeds, report = prepare_seeds(config.seeds, config.cleaning, config.dedup)
    pq.write_table(pa.Table.from_pylist(seed_rows(seeds)), out / "seeds.parquet")
    marker.write_text(json.dumps({"key": key, "report": dataclasses.asdict(report)}) + "\n")
    return seeds, report


async def _serve(stack: AsyncExitStack, policy: dict[str, Any]) -> dict[str, Any]:
    """`kind = "embedded"`: start the embedded policy server for the run and point an SGLang client at it."""
    if policy.get("kind") != "embedded":
        return policy
    from env_server.process import lachesis_process

    rest = {k: v for k, v in policy.items() if k not in ("kind", "model")}
    model = policy.get("model")
    url = await stack.enter_async_context(lachesis_process("policy", "serve", "--port", "0",
                                                          *(["--model", model] if model else [])))
    return {"kind": "sglang", "urls": [url], **rest}


async def _run_on_ray(config: DatagenConfig, policies: dict[str, dict[str, Any]], identities: dict[str, str],
                      pending: list[tuple[dict[str, Any], int]], n: int, fingerprint: str, summary: Summary) -> None:
    """One actor per share of the walks (by hash of walk id); a share whose actor dies is given to a fresh
    actor, which skips what the dead one had already written."""
    import ray
    from ray.exceptions import RayActorError

    if not ray.is_initialized():
        ray.init(address=config.ray_address, num_cpus=None if config.ray_address else os.cpu_count(),
                 include_dashboard=False, log_to_driver=False)
    shares: list[list[tuple[dict[str, Any], int]]] = [[] for _ in range(n)]
    for seed, r in pending:
        shares[int(walk_id(fingerprint, seed["seed_id"], r), 16) % n].append((seed, r))
    actor_cls = ray.remote(WalkWorker).options(num_cpus=config.worker_cpus)
    cfg = config.model_dump(mode="json")

    async def share(index: int, items: list[tuple[dict[str, Any], int]]) -> None:
        for attempt in range(3):
            actor = actor_cls.remote(cfg, policies, identities, index)
            try:
                summary.absorb(await actor.run.remote(items))
                await actor.close.remote()
                return
            except RayActorError:
                if attempt == 2:
                    raise
            finally:
                ray.kill(actor)

    await asyncio.gather(*(share(i, items) for i, items in enumerate(shares) if items))
