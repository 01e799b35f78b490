"""The rollout driver: start (or join) a Ray cluster, spread tasks over rollout actors, requeue the tasks of
an actor that dies, write Parquet shards as results arrive, and resume a killed run from its manifest.

`policy.kind = "embedded"` starts the embedded policy server for the run; no `env_server` URL starts an
environment server for the run. Both are real processes, stopped at the end.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from env_server.process import lachesis_process

from .config import RolloutConfig
from .events import EventLog
from .shards import ShardWriter
from .worker import RolloutWorker


@dataclass
class EnvTotals:
    tasks: int = 0
    samples: int = 0
    accepted: int = 0
    kept: int = 0
    duplicates: int = 0
    overlong: int = 0

    @property
    def accept_rate(self) -> float:
        return self.accepted / self.samples if self.samples else 0.0


@dataclass
class Summary:
    envs: dict[str, EnvTotals] = field(default_factory=dict)
    tokens: int = 0
    seconds: float = 0.0
    skipped: int = 0  # already done by an earlier run
    failed: list[str] = field(default_factory=list)  # task keys that exhausted their attempts
    requeued: int = 0  # tasks rerun after an actor died or the engine failed
    engine_retries: int = 0
    out_dir: str = ""

    def table(self) -> str:
        lines = [f"{'env':<16}{'tasks':>7}{'samples':>9}{'accepted':>10}{'rate':>8}{'kept':>7}{'dups':>6}{'overlong':>10}"]
        for name, t in sorted(self.envs.items()):
            lines.append(f"{name:<16}{t.tasks:>7}{t.samples:>9}{t.accepted:>10}{t.accept_rate:>8.1%}{t.kept:>7}"
                         f"{t.duplicates:>6}{t.overlong:>10}")
        rate = self.tokens / self.seconds if self.seconds else 0.0
        lines.append(f"{self.seconds:.1f} s, {rate:.0f} generated tokens/s; skipped (done before) {self.skipped}, "
                     f"requeued {self.requeued}, failed {len(self.failed)}, engine retries {self.engine_retries}")
        lines.append(f"output: {self.out_dir}")
        return "\n".join(lines)

    def totals(self) -> dict[str, Any]:
        """The summary as plain numbers (the run_end event)."""
        return {"envs": {name: {**vars(t), "accept_rate": round(t.accept_rate, 4)} for name, t in self.envs.items()},
                "tokens": self.tokens, "seconds": round(self.seconds, 3), "skipped": self.skipped,
                "failed": self.failed, "requeued": self.requeued, "engine_retries": self.engine_retries}


def work_items(config: RolloutConfig) -> list[dict[str, Any]]:
    return [{"key": f"{e.name}/{e.split}/{i}", "env": e.name, "split": e.split, "index": i,
             "reasoning": e.reasoning, "max_turns": e.max_turns, "config": e.config}
            for e in config.envs for i in range(e.start, e.start + e.tasks)]


async def run_rollout(config: RolloutConfig, *, progress: bool = True) -> Summary:
    out = Path(config.out_dir)
    writer = ShardWriter(out)
    items = work_items(config)
    pending = [it for it in items if it["key"] not in writer.done]
    summary = Summary(skipped=len(items) - len(pending), out_dir=str(out))
    if not pending:
        return summary
    events = EventLog(out, config.run_id)
    events.emit("run_start", tasks=len(items), pending=len(pending), skipped=summary.skipped,
                policy=config.policy.get("kind"), workers=config.workers, n=config.n)
    async with AsyncExitStack() as stack:
        stack.callback(events.close)
        stack.callback(lambda: events.emit("run_end", **summary.totals()))
        policy = dict(config.policy)
        if policy.get("kind") == "embedded":
            model = policy.pop("model", None)
            url = await stack.enter_async_context(lachesis_process(
                "policy", "serve", "--port", "0", *(["--model", model] if model else [])))
            policy = {"kind": "sglang", "urls": [url], **{k: v for k, v in policy.items() if k != "kind"}}
        env_url = config.env_server or await stack.enter_async_context(lachesis_process(
            "serve", "--port", "0", "--data-dir", str(out / "store")))
        await _drive(config, policy, env_url, pending, writer, summary, events, progress)
    return summary


class ActorPool:
    """The rollout actors and their load. One that died gets no work until Ray has restarted it: a probe call
    waits for it, so a requeued task is not sent straight back to an actor still restarting."""

    def __init__(self, handles: list[Any], restart_timeout: float = 300.0):
        self.handles, self.load = handles, [0] * len(handles)
        self.down: dict[int, asyncio.Future] = {}  # actor index -> the probe waiting for its restart
        self.gone: set[int] = set()  # never came back (restarts exhausted)
        self.restart_timeout = restart_timeout

    def pick(self) -> int | None:
        up = [a for a in range(len(self.handles)) if a not in self.down and a not in self.gone]
        return min(up, key=self.load.__getitem__) if up else None

    def mark_down(self, a: int) -> None:
        if a not in self.down:
            self.down[a] = asyncio.ensure_future(self._until_up(a))

    def probes(self) -> set[asyncio.Future]:
        return set(self.down.values())

    def settle(self, probe: asyncio.Future) -> None:
        a = next(i for i, p in self.down.items() if p is probe)
        del self.down[a]
        if not probe.result():
            self.gone.add(a)

    async def _until_up(self, a: int) -> bool:
        from ray.exceptions import RayActorError

        deadline = time.monotonic() + self.restart_timeout
        while time.monotonic() < deadline:
            try:
                await self.handles[a].engine_retries.remote()
                return True
            except RayActorError:
                await asyncio.sleep(0.5)
        return False  # gone for good (restarts exhausted): it stays down


async def _drive(config: RolloutConfig, policy: dict[str, Any], env_url: str, pending: list[dict[str, Any]],
                 writer: ShardWriter, summary: Summary, events: EventLog, progress: bool) -> None:
    import ray
    from ray.exceptions import RayActorError

    if not ray.is_initialized():
        ray.init(address=config.ray_address, num_cpus=None if config.ray_address else os.cpu_count(),
                 include_dashboard=False, log_to_driver=False)
    actor_cls = ray.remote(RolloutWorker)
    cfg = config.model_dump(mode="json")
    actors = ActorPool([actor_cls.options(max_concurrency=config.concurrency, max_restarts=3,
                                          num_cpus=config.worker_cpus).remote(cfg, policy, env_url)
                        for _ in range(config.workers)])
    attempts: dict[str, int] = {}
    in_flight: dict[asyncio.Future, tuple[dict[str, Any], int]] = {}
    buffer: list[dict[str, Any]] = []
    bar = _progress_bar(len(pending), progress)
    start = time.perf_counter()
    queue = list(reversed(pending))  # pop() from the end keeps task order
    try:
        while queue or in_flight:
            while queue and len(in_flight) < config.workers * config.concurrency and (a := actors.pick()) is not None:
                item = queue.pop()
                actors.load[a] += 1
                attempts[item["key"]] = attempts.get(item["key"], 0) + 1
                in_flight[asyncio.ensure_future(actors.handles[a].run_task.remote(item))] = (item, a)
            if not in_flight and not actors.down:  # nothing running, nothing restarting: no actor is left
                raise RuntimeError("every rollout actor died and none could be restarted")
            done, _ = await asyncio.wait({*in_flight, *actors.probes()}, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                if fut not in in_flight:
                    actors.settle(fut)
                    continue
                item, a = in_flight.pop(fut)
                actors.load[a] -= 1
                try:
                    result = fut.result()
                except RayActorError:  # the actor died: Ray restarts it; its in-flight tasks go back in the queue
                    actors.mark_down(a)
                    result = {"key": item["key"], "error": "rollout actor died"}
                if "error" in result:
                    retry = attempts[item["key"]] < config.max_task_attempts
                    events.emit("task_requeued" if retry else "task_failed", task=item["key"],
                                attempt=attempts[item["key"]], error=result["error"])
                    if retry:
                        summary.requeued += 1
                        queue.append(item)
                    else:
                        summary.failed.append(item["key"])
                    continue
                _account(summary, result)
                events.emit("task_done", task=item["key"], samples=result["samples"],
                            accepted=result["accepted_samples"], kept=len(result["accepted"]),
                            duplicates=result["duplicates"], overlong=result["overlong"], tokens=result["tokens"])
                buffer.append(result)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(_postfix(summary, time.perf_counter() - start), refresh=False)
                if len(buffer) >= config.shard_tasks:
                    _write(writer, buffer, events)
                    buffer = []
        if buffer:
            _write(writer, buffer, events)
    finally:
        summary.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
        for probe in actors.probes():
            probe.cancel()
        for actor in actors.handles:
            try:
                summary.engine_retries += await actor.engine_retries.remote()
                await actor.close.remote()
            except RayActorError:
                pass
            ray.kill(actor)


def _write(writer: ShardWriter, results: list[dict[str, Any]], events: EventLog) -> None:
    shards = writer.write(results)
    events.emit("shard_written", shards=shards, tasks=len(results))


def _account(summary: Summary, result: dict[str, Any]) -> None:
    totals = summary.envs.setdefault(result["env"], EnvTotals())
    totals.tasks += 1
    totals.samples += result["samples"]
    totals.accepted += result["accepted_samples"]
    totals.kept += len(result["accepted"])
    totals.duplicates += result["duplicates"]
    totals.overlong += result["overlong"]
    summary.tokens += result["tokens"]


def _postfix(summary: Summary, seconds: float) -> dict[str, str]:
    samples = sum(t.samples for t in summary.envs.values())
    accepted = sum(t.accepted for t in summary.envs.values())
    return {"samples": str(samples), "accept": f"{accepted / max(1, samples):.0%}",
            "tok/s": f"{summary.tokens / max(seconds, 1e-9):.0f}", "requeued": str(summary.requeued)}


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="rollout", unit="task", dynamic_ncols=True)
