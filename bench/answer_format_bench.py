#!/usr/bin/env python
"""Benchmark of the answer-format environment's verifier: checks per second per core, and the environment
server's round trip for a batch of 256 verifications.

Workload: one task per catalog format (its content drawn from a fixed seed), answered by the format's
reference rendering. Three mixes, each a full `AnswerFormatEnv.verify` call (reasoning parse, format check,
answer extraction, content comparison, Score construction):
  reasoning  every format; the task asks for reasoning and the response is a ~300-word <think> block, then
             the answer in its format
  preamble   the formats that allow text around the answer (markers, tags, \\boxed{}, HTML elements,
             headings, code fences, …), with ~300 words of prose before the answer; no reasoning block
  rejected   every format; the response is ~300 words of prose with no answer in it (the rejection path)
Throughput is measured single-threaded with process CPU time, so it is per core.

Server round trip: a real `python -m lachesis serve --port 0 --verify-workers W` process (as in
tests/conftest.py); `EnvServerClient.verify("answer_format", items)` with 256 (task, completion) items from
the reasoning mix; after two warm-up batches (worker start-up and imports), the wall time of each batch.

Usage:  .venv/bin/python bench/answer_format_bench.py [--seconds 2] [--batches 20] [--verify-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import environments  # noqa: E402
from env_server.client import EnvServerClient  # noqa: E402
from env_server.process import lachesis_process  # noqa: E402
from environments import Completion, Message, Task  # noqa: E402
from environments.answer_format import CATALOG, AnswerFormatEnv  # noqa: E402

WORDS = ("the first step is to read the question carefully and note what is given then we work through "
         "each quantity in turn checking every intermediate result against a rough estimate so that a slip "
         "shows up early and finally we write the answer in the requested format").split()


def prose(n_words: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."


def cases(env: AnswerFormatEnv) -> dict[str, list[tuple[Task, Completion]]]:
    """The three mixes of (task, completion) pairs, one pair per format (or per eligible format)."""
    rng = random.Random(0)
    mixes: dict[str, list[tuple[Task, Completion]]] = {"reasoning": [], "preamble": [], "rejected": []}
    for fmt in CATALOG.values():
        content = fmt.generate(random.Random(fmt.id))
        answer = fmt.render(content.answer, content.spec)
        verifier = {"format": fmt.id, "spec": content.spec.to_json(), "answer": content.answer}
        prompt = [Message(role="user", content=f"{content.question}\n\n{fmt.instruction_for(content.spec)}")]
        direct = Task(task_id=f"{fmt.id}-direct", env="answer_format", prompt=prompt, verifier=verifier)
        thinking = direct.model_copy(update={"task_id": f"{fmt.id}-think", "reasoning": True})
        mixes["reasoning"].append((thinking, Completion(text=f"<think>\n{prose(300, rng)}\n</think>\n\n{answer}")))
        with_preamble = Completion(text=f"{prose(300, rng)}\n\n{answer}")
        if env.verify(direct, with_preamble).accepted:
            mixes["preamble"].append((direct, with_preamble))
        mixes["rejected"].append((direct, Completion(text=prose(300, rng))))
    return mixes


def throughput(env: AnswerFormatEnv, items: list[tuple[Task, Completion]], seconds: float) -> float:
    """verify() calls per CPU second, cycling through the items for at least `seconds` of CPU time."""
    done, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for task, completion in items:
            env.verify(task, completion)
        done += len(items)
    return done / elapsed


def per_format(env: AnswerFormatEnv, items: list[tuple[Task, Completion]], repeat: int = 200) -> list[tuple[float, str]]:
    rates = []
    for task, completion in items:
        start = time.process_time()
        for _ in range(repeat):
            env.verify(task, completion)
        rates.append((repeat / (time.process_time() - start), task.verifier["format"]))
    return sorted(rates)


async def round_trips(items: list[tuple[Task, Completion]], batches: int, workers: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        args = ("serve", "--port", "0", "--data-dir", str(Path(tmp) / "store"), "--verify-workers", str(workers))
        async with lachesis_process(*args) as url, EnvServerClient(url) as client:
            for _ in range(2):  # warm-up: spawn the worker processes, import and build the environment
                await client.verify("answer_format", items)
            times = []
            for _ in range(batches):
                start = time.perf_counter()
                scores = await client.verify("answer_format", items)
                times.append(time.perf_counter() - start)
                assert len(scores) == len(items) and all(s["accepted"] for s in scores), "a reference answer was rejected"
            return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per throughput mix (default 2)")
    parser.add_argument("--batches", type=int, default=20, help="timed server round trips (default 20)")
    parser.add_argument("--verify-workers", type=int, default=2, help="server verification processes (default 2)")
    args = parser.parse_args()

    env = environments.make("answer_format")
    mixes = cases(env)
    words = statistics.mean(len(c.text.split()) for _, c in mixes["reasoning"])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"formats: {len(CATALOG)}; mean response length in the reasoning mix: {words:.0f} words\n")
    assert all(env.verify(t, c).accepted for t, c in mixes["reasoning"]), "a reference answer was rejected"
    assert not any(env.verify(t, c).accepted for t, c in mixes["rejected"]), "prose without an answer was accepted"

    print("verify() throughput, one core:")
    for name, items in mixes.items():
        print(f"  {name:<10} {len(items):>4} formats  {throughput(env, items, args.seconds):>9,.0f} checks/s")
    slowest = per_format(env, mixes["reasoning"])[:5]
    print("  slowest formats (reasoning mix): " + ", ".join(f"{fid} {rate:,.0f}/s" for rate, fid in slowest))

    rng = random.Random(1)
    batch = [rng.choice(mixes["reasoning"]) for _ in range(256)]
    times = asyncio.run(round_trips(batch, args.batches, args.verify_workers))
    median, p90 = statistics.median(times), sorted(times)[int(0.9 * len(times)) - 1]
    print(f"\nserver round trip, 256 verifications, {args.verify_workers} verify workers, {args.batches} batches:")
    print(f"  median {median * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, min {min(times) * 1000:.1f} ms "
          f"({256 / median:,.0f} verifications/s at the median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
