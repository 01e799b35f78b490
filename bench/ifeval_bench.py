#!/usr/bin/env python
"""Benchmark of the instruction-following verifiers (environments/ifeval).

Workload: ~300-word responses (prose paragraphs, a bullet list, some bold and a postscript, drawn at random
from a fixed vocabulary), a distinct text for every check, so no cache (sentence splits, language
detection) is ever reused between checks; kwargs come from each constraint's own procedural generator.

Figures (one process, one core; checks/s = checks / CPU seconds of this process):
  1. single checks, `environments.ifeval.check(id, kwargs, response)`, strict and loose (IFEval's 8
     variants), over every constraint except the three that run language detection; plus the slowest
     constraints by µs per check.
  2. language detection apart: language:response_language, change_case:english_capital (on capitalised
     text) and change_case:english_lowercase (on lowercased text), where langdetect does run.
  3. `IFEvalEnv.verify` on procedural tasks (1–3 instructions, strict and loose verdicts per instruction).
  4. environment-server round trip: a real `lachesis serve` process (as tests/conftest.py starts it, with
     --verify-workers), and `EnvServerClient.verify` of a batch of 256 (task, 300-word completion) items;
     one warm-up batch (worker processes spawn and import), then `--rounds` timed batches.

Usage:  .venv/bin/python bench/ifeval_bench.py [--texts N] [--rounds N] [--verify-workers N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import environments  # noqa: E402
from env_server.client import EnvServerClient  # noqa: E402
from environments import Completion  # noqa: E402
from environments.ifeval import CONSTRAINTS, check  # noqa: E402
from environments.ifeval.seeds import SEED_PROMPTS  # noqa: E402
from environments.ifeval.text import detect_language, sentences  # noqa: E402

LANGUAGE_DETECTION = ("language:response_language", "change_case:english_capital", "change_case:english_lowercase")
BATCH = 256

_VOCAB = """time year people way day man thing woman life child world school state family student group country
problem hand part place case week company system program question work government number night point home water
room mother area money story fact month lot right study book eye job word business issue side kind head house
service friend father power hour game line end member law car city community name president team minute idea kid
body information back parent face others level office door health person art war history party result change
morning reason research girl guy moment air teacher force education good new first last long great little own
other old big high different small large next early young important few public bad same able tea lantern river
garden quietly often always never usually carefully bright warm cold gentle strong simple""".split()


def response(rng: random.Random, words: int = 300) -> str:
    """A ~300-word answer in the shape models write: a title, paragraphs, a bullet list, a postscript."""
    parts, count = [f"**{rng.choice(_VOCAB).title()} and {rng.choice(_VOCAB)}**"], 3
    while count < words:
        if rng.random() < 0.2:
            items = [" ".join(rng.choices(_VOCAB, k=rng.randint(3, 7))) for _ in range(rng.randint(2, 4))]
            parts.append("\n".join(f"* {item}" for item in items))
            count += sum(len(i.split()) for i in items)
            continue
        sentences = []
        for _ in range(rng.randint(2, 5)):
            body = rng.choices(_VOCAB, k=rng.randint(6, 18))
            if rng.random() < 0.3:
                body.insert(rng.randrange(len(body)), ",")
            if rng.random() < 0.2:
                i = rng.randrange(len(body))
                body[i] = f"*{body[i]}*"
            sentences.append(" ".join(body).replace(" ,", ",").capitalize() + rng.choice(".....?!"))
            count += len(body)
        parts.append(" ".join(sentences))
    if rng.random() < 0.5:
        parts.append("P.S. " + " ".join(rng.choices(_VOCAB, k=6)) + ".")
    return "\n\n".join(parts)


def _cpu() -> float:
    return time.process_time()


def bench_checks(ids: list[str], texts: list[str], *, loose: bool, transform=lambda t: t) -> dict[str, Any]:
    """Every constraint of `ids` over every text once; per-constraint µs and overall checks/s (CPU)."""
    rng = random.Random(1)
    kwargs = {cid: CONSTRAINTS[cid].generate(rng, rng.choice(SEED_PROMPTS)) for cid in ids}
    inputs = [transform(t) for t in texts]
    sentences.cache_clear()
    detect_language.cache_clear()  # english_capital detects on lowercased text: not a head start for english_lowercase
    per_check, total_cpu = {}, 0.0
    for cid in ids:
        start = _cpu()
        for text in inputs:
            check(cid, kwargs[cid], text, loose=loose)
        elapsed = _cpu() - start
        per_check[cid] = 1e6 * elapsed / len(inputs)
        total_cpu += elapsed
    n = len(ids) * len(inputs)
    return {"checks": n, "cpu_s": total_cpu, "checks_per_s": n / total_cpu, "us_per_check": per_check}


def bench_verify(texts: list[str], tasks: int) -> dict[str, Any]:
    env = environments.make("ifeval")
    items = [(env.tasks().get("train", i), Completion(text=texts[i % len(texts)])) for i in range(tasks)]
    start = _cpu()
    for task, completion in items:
        env.verify(task, completion)
    elapsed = _cpu() - start
    instructions = sum(len(t.verifier["instruction_id_list"]) for t, _ in items)
    return {"tasks": tasks, "instructions": instructions, "cpu_s": elapsed, "tasks_per_s": tasks / elapsed,
            "instruction_verdicts_per_s": instructions / elapsed}


def start_server(data_dir: Path, workers: int) -> tuple[subprocess.Popen, str]:
    """`python -m lachesis serve` on an ephemeral loopback port, as tests/conftest.py's start_server."""
    log = open(data_dir.parent / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lachesis", "serve", "--port", "0", "--data-dir", str(data_dir),
         "--verify-workers", str(workers)],
        stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if "listening on " not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.split("listening on ")[1].split()[0]


async def bench_server(rounds: int, workers: int) -> dict[str, Any]:
    env, rng = environments.make("ifeval"), random.Random(2)
    batches = [[(env.tasks().get("train", r * BATCH + i), Completion(text=response(rng))) for i in range(BATCH)]
               for r in range(rounds + 1)]  # every item its own task and text: no cache in the workers helps
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "store"
        data_dir.mkdir()
        proc, url = start_server(data_dir, workers)
        try:
            async with EnvServerClient(url) as client:
                start = time.perf_counter()
                scores = await client.verify("ifeval", batches[0])
                warmup = time.perf_counter() - start
                assert len(scores) == BATCH and not any(s["error"] for s in scores), scores[:3]
                latencies = []
                for batch in batches[1:]:
                    start = time.perf_counter()
                    await client.verify("ifeval", batch)
                    latencies.append(time.perf_counter() - start)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    latencies.sort()
    return {"batch": BATCH, "verify_workers": workers, "warmup_s": warmup, "rounds": rounds,
            "median_s": statistics.median(latencies), "p90_s": latencies[int(0.9 * (len(latencies) - 1))],
            "min_s": latencies[0], "items_per_s": BATCH / statistics.median(latencies)}


def report(r: dict[str, Any]) -> str:
    strict, loose, lang, verify, server = r["strict"], r["loose"], r["language"], r["verify"], r["server"]
    slowest = sorted(strict["us_per_check"].items(), key=lambda kv: -kv[1])[:8]
    lines = [
        f"machine: {r['machine']}",
        f"responses: {r['texts']} distinct texts, mean {r['mean_words']:.0f} words",
        "",
        f"single checks, {len(strict['us_per_check'])} constraints (language detection excluded), one core:",
        f"  strict: {strict['checks_per_s']:,.0f} checks/s ({strict['checks']:,} checks)",
        f"  loose:  {loose['checks_per_s']:,.0f} checks/s ({loose['checks']:,} checks)",
        "  slowest strict (µs/check): " + ", ".join(f"{cid} {us:.0f}" for cid, us in slowest),
        "",
        "language detection (langdetect), one core:",
        *(f"  {cid}: {lang[cid]['checks_per_s']:,.0f} checks/s strict ({lang[cid]['us_per_check'][cid] / 1000:.1f} ms)"
          for cid in LANGUAGE_DETECTION),
        "",
        f"IFEvalEnv.verify (1-3 instructions, strict + loose), one core: {verify['tasks_per_s']:,.0f} tasks/s, "
        f"{verify['instruction_verdicts_per_s']:,.0f} instruction verdicts/s",
        "",
        f"server round trip, batch of {server['batch']} ({server['verify_workers']} verify workers): "
        f"median {server['median_s'] * 1000:.0f} ms, p90 {server['p90_s'] * 1000:.0f} ms, "
        f"min {server['min_s'] * 1000:.0f} ms over {server['rounds']} rounds ({server['items_per_s']:,.0f} items/s); "
        f"first batch (workers spawn) {server['warmup_s'] * 1000:.0f} ms",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--texts", type=int, default=2000, help="distinct ~300-word responses")
    p.add_argument("--rounds", type=int, default=20, help="timed server batches")
    p.add_argument("--verify-workers", type=int, default=2, help="the server's verification processes")
    p.add_argument("--json", metavar="PATH", help="also write all figures as JSON to PATH")
    args = p.parse_args(argv)

    rng = random.Random(0)
    texts = [response(rng) for _ in range(args.texts)]
    fast = sorted(set(CONSTRAINTS) - set(LANGUAGE_DETECTION))
    lang_texts = texts[: max(50, args.texts // 10)]
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "texts": len(texts),
        "mean_words": statistics.mean(len(t.split()) for t in texts),
        "strict": bench_checks(fast, texts, loose=False),
        "loose": bench_checks(fast, texts, loose=True),
        "language": {
            "language:response_language": bench_checks(["language:response_language"], lang_texts, loose=False),
            "change_case:english_capital": bench_checks(["change_case:english_capital"], lang_texts, loose=False,
                                                        transform=str.upper),
            "change_case:english_lowercase": bench_checks(["change_case:english_lowercase"], lang_texts, loose=False,
                                                          transform=str.lower),
        },
        "verify": bench_verify(texts, tasks=min(len(texts), 2000)),
        "server": asyncio.run(bench_server(args.rounds, args.verify_workers)),
    }
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
