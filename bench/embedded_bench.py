#!/usr/bin/env python
"""Aggregate generation throughput of the embedded policy server at 1, 8 and 32 concurrent requests.

The server runs as a child process (`python -m rollout.embedded --port 0`, i.e. `lachesis policy serve`) on the
default model (SmolLM2-135M-Instruct, fp32 on the CPU) unless --model names another checkpoint. This script
is its one client: C asyncio tasks each send R requests one after another to the native `/generate` route
(a chat-templated prompt, temperature 0.8, top_p 0.95, `ignore_eos`, so every request generates exactly
--tokens new tokens). Aggregate tokens/s = generated tokens / wall time of the level. The server's own
counters (/get_server_info) give the decode steps and the mean rows per step; its CPU time comes from
/proc/<pid>/stat (all threads).

Usage:  .venv/bin/python bench/embedded_bench.py [--levels 1 8 32] [--tokens 64] [--rounds 2] [--model DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time

import aiohttp

QUESTIONS = [
    "What is 17 times 23? Show your work.",
    "Write a short poem about the sea.",
    "Explain what a hash table is to a new programmer.",
    "List three facts about the Moon.",
    "Ana has 5 apples and buys 3 more. How many apples does she have? Put the answer in \\boxed{}.",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "What is the capital of Australia, and why is it not Sydney?",
    "Give me a recipe idea with eggs, spinach and cheese.",
]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start_server(model: str | None) -> tuple[subprocess.Popen, str]:
    args = [sys.executable, "-m", "rollout.embedded", "--port", "0", *(["--model", model] if model else [])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if "listening on " not in line:
        proc.kill()
        raise SystemExit(f"the policy server did not start: {line!r}")
    return proc, line.split("listening on ")[1].split()[0]


async def run_level(session: aiohttp.ClientSession, url: str, prompts: list[str], concurrency: int,
                    rounds: int, tokens: int) -> dict:
    params = {"max_new_tokens": tokens, "temperature": 0.8, "top_p": 0.95, "ignore_eos": True}
    latencies: list[float] = []
    generated = 0

    async def client(i: int) -> None:
        nonlocal generated
        for r in range(rounds):
            body = {"text": prompts[(i + r) % len(prompts)], "sampling_params": params}
            start = time.perf_counter()
            async with session.post(url + "/generate", json=body) as resp:
                out = await resp.json()
                if resp.status != 200:
                    raise SystemExit(f"/generate answered {resp.status}: {out}")
            latencies.append(time.perf_counter() - start)
            generated += out["meta_info"]["completion_tokens"]

    async with session.get(url + "/get_server_info") as resp:
        before = (await resp.json())["stats"]
    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    wall = time.perf_counter() - start
    async with session.get(url + "/get_server_info") as resp:
        after = (await resp.json())["stats"]
    steps = after["decode_steps"] - before["decode_steps"]
    return {"concurrency": concurrency, "requests": len(latencies), "tokens": generated, "wall_s": wall,
            "tokens_per_s": generated / wall, "latency_p50_s": statistics.median(latencies),
            "latency_max_s": max(latencies), "decode_steps": steps,
            "tokens_per_step": (after["generated_tokens"] - before["generated_tokens"]) / max(steps, 1)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32], help="concurrent requests per level")
    ap.add_argument("--tokens", type=int, default=64, help="new tokens per request (default 64)")
    ap.add_argument("--rounds", type=int, default=2, help="requests each concurrent client sends in turn (default 2)")
    ap.add_argument("--model", help="checkpoint directory (default: the prepared SmolLM2-135M-Instruct)")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    from rollout.embedded import prepare_default_model

    model = args.model or str(prepare_default_model())
    tokenizer = AutoTokenizer.from_pretrained(model)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
               for q in QUESTIONS]
    proc, url = start_server(model)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as session:
            async with session.get(url + "/get_server_info") as resp:
                info = await resp.json()
            await run_level(session, url, prompts, 1, 1, 8)  # warm-up: first-call allocations
            print(f"embedded policy server: {model} on {platform.processor() or platform.machine()}, "
                  f"{os.cpu_count()} CPUs, torch threads {info['threads']}, max batch rows {info['max_batch_rows']}")
            print(f"each request: {args.tokens} new tokens (ignore_eos), temperature 0.8, top_p 0.95; "
                  f"{args.rounds} requests per client\n")
            print(f"{'concurrent':>10} {'requests':>8} {'tokens':>7} {'wall s':>7} {'tokens/s':>9} "
                  f"{'p50 s':>7} {'max s':>7} {'tok/step':>9} {'server CPU/token':>19}")
            for level in args.levels:
                cpu = cpu_seconds(proc.pid)
                r = await run_level(session, url, prompts, level, args.rounds, args.tokens)
                per_token = (cpu_seconds(proc.pid) - cpu) / r["tokens"]
                print(f"{r['concurrency']:>10} {r['requests']:>8} {r['tokens']:>7} {r['wall_s']:>7.1f} "
                      f"{r['tokens_per_s']:>9.1f} {r['latency_p50_s']:>7.2f} {r['latency_max_s']:>7.2f} "
                      f"{r['tokens_per_step']:>9.1f} {per_token * 1000:>16.1f} ms", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    asyncio.run(main())
