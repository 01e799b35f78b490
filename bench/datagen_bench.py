#!/usr/bin/env python
"""DataForge orchestration: the framework's own cost per walk, and walks/s against a fast local endpoint.

1. Overhead per walk, model time excluded: the full catalog graph (judge on every family, refinement,
   nested graph), the real SQLite call cache, call records and Parquet shards, with a policy that answers
   in-process at once (a benchmark fixture). Target: <= 1 ms per walk.
2. Replay: the same walks again from the warm call cache (what a crashed run does on restart).
3. Walks/s over HTTP with `concurrency` walks in flight against a canned aiohttp endpoint on 127.0.0.1
   (another process; it answers at once), through the real OpenAI-compatible client.
4. The semantic-dedup threshold sweep on the labelled pairs (tests/data/semantic_pairs.jsonl), with --calibrate.

Usage: .venv/bin/python bench/datagen_bench.py [--walks 2048] [--concurrency 256] [--repeats 3] [--calibrate]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from datagen.run import DatagenConfig, WalkWorker, graph_of  # noqa: E402
from datagen.seeds import load_seeds  # noqa: E402
from environments.types import Completion, Usage  # noqa: E402


def reply(system: str, key: str) -> str:
    """What the fixtures answer: a passing verdict for 4 judge calls in 5, JSON personas, lists, text."""
    if "Score each criterion" in system:
        names = [line.split(":")[0][2:] for line in system.splitlines() if line.startswith("- ")]
        ok = hash(key) % 5 != 0
        return json.dumps({"scores": {n: 5 if ok else 2 for n in names}, "feedback": "" if ok else "be specific"})
    if "Reply with JSON only" in system:
        return json.dumps({"name": "a reader", "description": "wants to learn"})
    if "taxonomies" in system:
        return "- Subtopic one\n- Subtopic two\n- Subtopic three"
    return f"Generated text for {key[-40:]}: a few sentences of plausible content for the next step."


class InstantPolicy:
    """Benchmark fixture: answers at once, in-process, so only the framework is timed. It counts its own CPU
    time (the stand-in for model time), which the overhead figure leaves out."""

    cpu = 0.0

    def __init__(self, **_):
        self.name, self.version = "instant", 0

    async def generate(self, chat, tools, sampling, n):
        start = time.process_time()
        text = reply(chat[0].content if chat[0].role == "system" else "", chat[-1].content[-60:] + str(sampling.seed))
        out = [Completion(text=text, finish_reason="stop", usage=Usage(prompt_tokens=50, completion_tokens=20))]
        InstantPolicy.cpu += time.process_time() - start
        return out

    async def close(self):
        pass


CANNED = textwrap.dedent('''
    import json, sys
    from aiohttp import web
    sys.path.insert(0, sys.argv[2])
    from datagen_bench import reply
    async def chat(request):
        body = await request.json()
        msgs = body["messages"]
        system = msgs[0]["content"] if msgs[0]["role"] == "system" else ""
        text = reply(system, msgs[-1]["content"][-60:] + str(body.get("seed")))
        return web.json_response({"choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": text}}],
                                  "usage": {"prompt_tokens": 50, "completion_tokens": 20}})
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *a: print("ready", flush=True),
                access_log=None)
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(out: Path, policy: dict, concurrency: int) -> DatagenConfig:
    return DatagenConfig.model_validate({
        "run_id": "bench", "out_dir": str(out), "concurrency": concurrency, "shard_walks": 512,
        "seeds": [{"path": "builtin", "license": "CC0-1.0"}], "policies": {"p": policy},
        "sampling": {"default": {"max_tokens": 256}}})


async def timed_run(cfg: DatagenConfig, walks: int) -> tuple[float, float, dict]:
    """Wall and process CPU seconds of one worker walking `walks` walks (seeds x replicates)."""
    seeds = load_seeds(cfg.seeds)
    items = [(s.model_dump(mode="json"), r) for r in range(walks // len(seeds) + 1) for s in seeds][:walks]
    worker = WalkWorker(cfg.model_dump(mode="json"), cfg.policies, {"p": "bench"}, 0)
    cpu, start = time.process_time(), time.perf_counter()
    report = await worker.run(items)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    await worker.close()
    done = sum(report.coverage.statuses.values())
    assert done == walks, f"{done} of {walks} walks finished"
    return wall, cpu, {"calls": report.calls, "cache_hits": report.cache_hits, "statuses": dict(report.coverage.statuses)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--walks", type=int, default=2048)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3, help="runs of the overhead measurement (median reported)")
    p.add_argument("--calibrate", action="store_true", help="also sweep the semantic-dedup threshold (loads MiniLM)")
    args = p.parse_args()
    n = args.walks
    print(f"machine: {os.cpu_count()} cores; {n} walks of the full catalog graph, {args.concurrency} in flight")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(Path(tmp) / "instant", {"kind": "datagen_bench:InstantPolicy"}, args.concurrency)
        graph = graph_of(cfg)
        print(f"graph: {len(graph.nodes)} top-level nodes, fingerprint {graph.fingerprint}")
        fixture = sys.modules.get("datagen_bench") or __import__("datagen_bench")  # the module the worker loads
        asyncio.run(timed_run(config(Path(tmp) / "warm-up", cfg.policies["p"], args.concurrency), 64))  # first imports
        runs = []
        for i in range(args.repeats):  # a fresh output directory and cache each time; the median is reported
            fixture.InstantPolicy.cpu = 0.0
            wall, cpu, stats = asyncio.run(timed_run(config(Path(tmp) / f"instant-{i}", cfg.policies["p"],
                                                            args.concurrency), n))
            runs.append(((cpu - fixture.InstantPolicy.cpu) / n, wall, fixture.InstantPolicy.cpu / n, stats))
        framework, wall, model, stats = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        print(f"\n1. overhead per walk, model time excluded: {framework * 1e3:.3f} ms CPU, median of {len(runs)} runs "
              f"({', '.join(f'{r[0] * 1e3:.3f}' for r in runs)}; target <= 1 ms; {stats['calls'] / n:.1f} calls/walk, "
              f"{framework * n / stats['calls'] * 1e6:.0f} us/call); wall {wall / n * 1e3:.3f} ms/walk with the "
              f"fixture policy's {model * 1e3:.3f} ms, {n / wall:,.0f} walks/s")
        print(f"   statuses: {stats['statuses']}")

        again = config(Path(tmp) / "replay", {"kind": "datagen_bench:InstantPolicy"}, args.concurrency)
        again = again.model_copy(update={"cache": str(Path(tmp) / "instant-0" / "calls.sqlite")})
        wall, cpu, stats = asyncio.run(timed_run(again, n))
        print(f"2. replay from the warm cache: {wall / n * 1e3:.3f} ms/walk ({stats['cache_hits']} of {stats['calls']} "
              f"calls from the cache)")

        script = Path(tmp) / "canned.py"
        script.write_text(CANNED)
        port = free_port()
        endpoint = subprocess.Popen([sys.executable, str(script), str(port), str(Path(__file__).parent)],
                                    stdout=subprocess.PIPE, text=True)
        try:
            assert endpoint.stdout.readline().strip() == "ready"
            policy = {"kind": "openai", "urls": [f"http://127.0.0.1:{port}"], "model": "canned",
                      "max_concurrency": args.concurrency}
            wall, cpu, stats = asyncio.run(timed_run(config(Path(tmp) / "http", policy, args.concurrency), n))
        finally:
            endpoint.kill()
        print(f"3. HTTP, canned endpoint on 127.0.0.1: {n / wall:,.0f} walks/s, {stats['calls'] / wall:,.0f} calls/s "
              f"({wall:.1f} s; this process {cpu / n * 1e3:.2f} ms CPU/walk, the endpoint shares the cores)")

    if args.calibrate:
        from datagen.seeds import DedupConfig, calibrate

        pairs = [json.loads(line) for line in (REPO / "tests" / "data" / "semantic_pairs.jsonl").read_text().splitlines()]
        print(f"\n4. semantic dedup (all-MiniLM-L6-v2) on {len(pairs)} labelled pairs; default threshold "
              f"{DedupConfig().semantic_threshold}")
        print(f"   {'threshold':>9} {'precision':>9} {'recall':>7} {'F1':>6}")
        for row in calibrate(pairs):
            print(f"   {row['threshold']:>9.3f} {row['precision']:>9.2f} {row['recall']:>7.2f} {row['f1']:>6.3f}")


if __name__ == "__main__":
    main()
