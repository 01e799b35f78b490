#!/usr/bin/env python
"""Orchestration overhead of a rollout: trajectories/s through Ray actors + environment-server verification
+ trajectory store + Parquet shards, with an inference endpoint that answers at once with canned text (a
benchmark fixture, so only the framework is measured). Target on a 2-core machine: >= 1,000 single-turn
trajectories/s, i.e. the framework is never the bottleneck in front of a real GPU fleet.

Usage: .venv/bin/python bench/rollout_bench.py [--tasks 1000] [--n 8] [--workers 2] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rollout.config import RolloutConfig  # noqa: E402
from rollout.run import run_rollout  # noqa: E402

CANNED = textwrap.dedent('''
    import random, sys
    from aiohttp import web
    async def chat(request):
        n = (await request.json()).get("n", 1)
        choices = [{"index": i, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "The answer is \\\\boxed{%d}." % random.randint(1, 60)}}
                   for i in range(n)]
        return web.json_response({"choices": choices, "usage": {"prompt_tokens": 40, "completion_tokens": 8 * n}})
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *a: print("ready", flush=True))
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "canned.py"
        script.write_text(CANNED)
        port = free_port()
        endpoint = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.PIPE, text=True)
        try:
            assert endpoint.stdout.readline().strip() == "ready"
            config = RolloutConfig(
                run_id="bench", out_dir=str(Path(tmp) / "out"), n=args.n, workers=args.workers,
                concurrency=args.concurrency, shard_tasks=256, envs=[{"name": "arithmetic", "tasks": args.tasks}],
                policy={"kind": "openai", "urls": [f"http://127.0.0.1:{port}"], "model": "canned"})
            start = time.perf_counter()
            summary = asyncio.run(run_rollout(config, progress=False))
            wall = time.perf_counter() - start
        finally:
            endpoint.kill()
    samples = sum(t.samples for t in summary.envs.values())
    print(summary.table())
    print(f"\nmachine: {os.cpu_count()} cores; tasks {args.tasks} x n={args.n}; {args.workers} Ray actors x {args.concurrency} tasks in flight")
    print(f"trajectories/s (rollout loop only, Ray + verify + store + Parquet): {samples / summary.seconds:,.0f}")
    print(f"trajectories/s including start-up of Ray, env server and actors:  {samples / wall:,.0f}  ({wall:.1f} s)")
    print(f"per core: {samples / summary.seconds / (os.cpu_count() or 1):,.0f} trajectories/s")
    print(f"CPU of finished child processes (env server, endpoint): {children_cpu():.1f} s")


if __name__ == "__main__":
    main()
