#!/usr/bin/env python
"""Evaluation harness overhead: wall time of `run_eval` (task generation, sampling, verification in worker
processes, the per-sample JSONL log, metrics, manifest) over the inference alone (the same requests through the
same policy client at the same concurrency, nothing else), for 1,000 samples of the answer-format environment.
The endpoint is a benchmark fixture: an aiohttp server on 127.0.0.1 answering OpenAI chat requests with canned
text after a fixed delay, so only the harness is measured. Target: overhead <= 5 %.

Usage: .venv/bin/python bench/eval_bench.py [--tasks 100] [--samples 10] [--delay 0.1] [--concurrency 32]
                                            [--trials 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import environments  # noqa: E402
from evals.run import EvalConfig, run_eval  # noqa: E402
from rollout.episode import prompt_chat  # noqa: E402
from rollout.policies import Sampling, load_policy  # noqa: E402

CANNED = textwrap.dedent('''
    import asyncio, random, sys
    from aiohttp import web
    delay = float(sys.argv[2])
    ANSWERS = ["<final_answer>Na</final_answer>", "\\\\boxed{42}", "Answer: 7", '{"answer": 3}', "I am not sure."]
    async def chat(request):
        await request.read()
        await asyncio.sleep(delay)
        text = random.choice(ANSWERS)
        return web.json_response({"choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": text}}],
                                  "usage": {"prompt_tokens": 60, "completion_tokens": 12}})
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
                print=lambda *a: print("ready", flush=True))
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def inference_alone(url: str, tasks: int, samples: int, concurrency: int) -> float:
    """The same requests as the harness sends, through the same client, at the same concurrency."""
    chats = [prompt_chat(t) for t in environments.make("answer_format").tasks().iter("eval", tasks)]
    work = [chat for chat in chats for _ in range(samples)]
    policy = load_policy({"kind": "openai", "urls": [url], "model": "canned", "max_concurrency": concurrency})
    sampling = Sampling(max_tokens=512)

    async def worker() -> None:
        while work:
            await policy.generate(work.pop(), None, sampling, 1)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    await policy.close()
    return seconds, cpu


async def harness(url: str, run_dir: Path, tasks: int, samples: int, concurrency: int) -> float:
    config = EvalConfig.build(run_dir=str(run_dir), envs=[{"name": "answer_format", "limit": tasks}],
                              policy=f"openai:{url}", policy_options={"model": "canned"}, samples=samples,
                              concurrency=concurrency, sampling={"max_tokens": 512})
    start, cpu = time.perf_counter(), time.process_time()
    result = await run_eval(config)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.generated == tasks * samples, result.generated
    return seconds, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=100)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--delay", type=float, default=0.1, help="the endpoint's seconds per request")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--trials", type=int, default=3)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "canned.py"
        script.write_text(CANNED)
        port = free_port()
        endpoint = subprocess.Popen([sys.executable, str(script), str(port), str(args.delay)], stdout=subprocess.PIPE,
                                    text=True)
        try:
            assert endpoint.stdout.readline().strip() == "ready"
            url = f"http://127.0.0.1:{port}"
            alone, full = [], []
            for trial in range(args.trials):  # alternated, so drifting machine load hits both alike
                alone.append(asyncio.run(inference_alone(url, args.tasks, args.samples, args.concurrency)))
                full.append(asyncio.run(harness(url, Path(tmp) / f"run{trial}", args.tasks, args.samples,
                                                args.concurrency)))
        finally:
            endpoint.kill()
    n = args.tasks * args.samples
    a, h = statistics.median(s for s, _ in alone), statistics.median(s for s, _ in full)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; answer_format, {args.tasks} "
          f"tasks x {args.samples} samples = {n}; endpoint delay {args.delay * 1000:.0f} ms, "
          f"{args.concurrency} in flight")
    print("inference alone: " + ", ".join(f"{s:.2f} s (CPU {c:.2f} s)" for s, c in alone) + f"; median {a:.2f} s")
    print("harness:         " + ", ".join(f"{s:.2f} s (CPU {c:.2f} s)" for s, c in full) + f"; median {h:.2f} s"
          "  (the first run of a process also starts the verification fork server)")
    extra = statistics.median(c for _, c in full) - statistics.median(c for _, c in alone)
    print(f"harness CPU in the event loop's process: {1e3 * extra / n:.2f} ms per sample over the inference client's "
          "(verification runs in worker processes)")
    print(f"overhead: {100 * (h - a) / a:+.1f} % of the inference wall time (target <= 5 %)")

if __name__ == "__main__":
    main()
