#!/usr/bin/env python
"""Benchmark of the code sandbox and environment.

1. Sandboxed executions per second with every core busy (the sandbox's own pool, one thread per core),
   for a trivial program (echo a line) and for a 1-second CPU-bound one.
2. Isolation overhead per execution: one execution at a time, the median latency of the trivial program
   under the sandbox against the same interpreter started as a plain subprocess (same stdin and output
   handling: memory files). Target: <= 15 ms.
3. A batch of code completions, each judged on 10 stdin/stdout tests (reward "fraction", so every test
   runs), verified through a real `lachesis serve` process (env_server.process.lachesis_process, one verify
   worker per core) via EnvServerClient.verify, one request per task's group of 10 completions, two per
   verify worker in flight (as rollout workers send them): wall time and executions per second.

The machine's load average is printed alongside: other work on the same cores slows every figure.

Usage:  .venv/bin/python bench/code_bench.py [--seconds 10] [--completions 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from env_server.client import EnvServerClient  # noqa: E402
from env_server.process import lachesis_process  # noqa: E402
from environments.code import CodeSpec, Limits, get_sandbox  # noqa: E402
from environments.code.sandbox.languages import LANGUAGES  # noqa: E402
from environments.types import Completion, Message, Task  # noqa: E402

PYTHON = LANGUAGES["python"].run[:-1]  # the interpreter and its flags, as the sandbox runs them
TRIVIAL = b"print(input())\n"
CPU_SECOND = b"import time\nstart = time.process_time()\nwhile time.process_time() - start < 1.0:\n    pass\n"


def throughput(program: bytes, seconds: float, minimum: int) -> dict[str, float]:
    """Executions per second with the pool full, for about `seconds` (at least `minimum` executions)."""
    sandbox = get_sandbox()
    limits = Limits(timeout_s=10)

    def run():
        return sandbox.run((*PYTHON, "/code/main.py"), limits, files={"main.py": program}, stdin=b"hello\n")

    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds or done < minimum:
        batch = [sandbox.pool.submit(run) for _ in range(sandbox.cores * 4)]
        results = [f.result() for f in batch]
        assert all(r.exit_code == 0 for r in results), results[0]
        done += len(batch)
    wall = time.perf_counter() - start
    return {"executions": done, "seconds": wall, "per_s": done / wall, "cores": sandbox.cores}


def overhead(runs: int) -> dict[str, float]:
    """Median latency, one execution at a time, sandboxed and plain, alternating so load hits both alike."""
    sandbox = get_sandbox()
    limits = Limits()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "main.py"
        script.write_bytes(TRIVIAL)

        def plain() -> None:
            stdin, stdout, stderr = (os.memfd_create(n) for n in ("stdin", "stdout", "stderr"))
            os.write(stdin, b"hello\n")
            os.lseek(stdin, 0, os.SEEK_SET)
            try:
                subprocess.run([*PYTHON, str(script)], stdin=stdin, stdout=stdout, stderr=stderr, check=True,
                               start_new_session=True, env={})
            finally:
                for fd in (stdin, stdout, stderr):
                    os.close(fd)

        def sandboxed() -> None:
            ex = sandbox.run((*PYTHON, "/code/main.py"), limits, files={"main.py": TRIVIAL}, stdin=b"hello\n")
            assert ex.exit_code == 0

        wall: dict[str, list[float]] = {"plain": [], "sandboxed": []}
        cpu: dict[str, list[float]] = {"plain": [], "sandboxed": []}
        for _ in range(runs):
            for name, fn in (("plain", plain), ("sandboxed", sandboxed)):
                c0, t0 = _children_cpu(), time.perf_counter()
                fn()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(_children_cpu() - c0)
    ms = {f"{k}_{kind}_ms": statistics.median(d[k]) * 1000 for kind, d in (("wall", wall), ("cpu", cpu)) for k in d}
    return {**ms, "overhead_ms": ms["sandboxed_wall_ms"] - ms["plain_wall_ms"],
            "overhead_cpu_ms": ms["sandboxed_cpu_ms"] - ms["plain_cpu_ms"], "runs": runs}


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children: what a run costs the machine,
    unlike wall time barely moved by other work on the same cores."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def batch(completions: int, tests: int, seed: int = 0) -> list[tuple[Task, Completion, float]]:
    """Tasks "sum the numbers" with `tests` random tests each, 10 completions per task: 7 right, 2 wrong on
    some inputs, 1 crashing. Returns (task, completion, expected reward)."""
    rng = random.Random(seed)
    right = "import sys\nprint(sum(map(int, sys.stdin.read().split()[1:])))"
    wrong = "import sys\nxs = list(map(int, sys.stdin.read().split()[1:]))\nprint(sum(x for x in xs if x > 0))"
    crash = "import sys\nprint(sum(map(int, sys.stdin.read().split())) / 0)"
    items = []
    for t in range(-(-completions // 10)):
        cases = []
        for _ in range(tests):
            xs = [rng.randint(-1000, 1000) for _ in range(rng.randint(1, 20))]
            cases.append({"input": f"{len(xs)}\n{' '.join(map(str, xs))}\n", "output": f"{sum(xs)}\n"})
        spec = CodeSpec(tests=cases, reward="fraction")
        task = Task(task_id=f"bench-sum-{t}", env="code", prompt=[Message(role="user", content="Sum the numbers.")],
                    verifier=spec.model_dump(mode="json"))
        positives = [sum(int(x) for x in c["input"].split()[1:] if int(x) > 0) for c in cases]
        wrong_share = sum(p == int(c["output"]) for p, c in zip(positives, cases)) / tests
        for program, reward in [(right, 1.0)] * 7 + [(wrong, wrong_share)] * 2 + [(crash, 0.0)]:
            items.append((task, Completion(text=f"```python\n{program}\n```"), reward))
    return items[:completions]


async def through_server(items: list[tuple[Task, Completion, float]], workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        args = ("serve", "--port", "0", "--data-dir", str(Path(tmp) / "store"), "--verify-workers", str(workers))
        async with lachesis_process(*args) as url, EnvServerClient(url) as client:
            warm = await client.verify("code", [(t, c) for t, c, _ in items[:workers]])  # workers start, probe
            assert all("error" not in s or s["error"] is None for s in warm), warm
            groups: dict[str, list[tuple[Task, Completion]]] = {}
            for task, completion, _ in items:
                groups.setdefault(task.task_id, []).append((task, completion))
            in_flight = asyncio.Semaphore(2 * workers)  # a few groups at a time, as bounded rollout workers send

            async def verify(group: list[tuple[Task, Completion]]) -> list[dict]:
                async with in_flight:
                    return await client.verify("code", group)

            start = time.perf_counter()
            replies = await asyncio.gather(*(verify(group) for group in groups.values()))
            wall = time.perf_counter() - start
            scores = [score for reply in replies for score in reply]
    verdicts = Counter(v["verdict"] for s in scores for v in s["details"].get("verdicts", []))
    wrong = [(s, r) for s, (_, _, r) in zip(scores, items) if abs(s["reward"] - r) > 1e-9]
    if wrong:  # on a loaded machine a test can run out of time; anything else is a bug
        print(f"  {len(wrong)} completions judged other than expected, e.g. {wrong[0]}")
    executions = sum(len(t.verifier["tests"]) for t, _, _ in items)
    return {"completions": len(items), "executions": executions, "wall_s": wall, "executions_per_s": executions / wall,
            "verdicts": dict(verdicts), "misjudged": len(wrong)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="timing budget of each throughput measurement")
    parser.add_argument("--completions", type=int, default=200, help="completions in the server batch")
    parser.add_argument("--tests", type=int, default=10, help="tests per completion in the server batch")
    parser.add_argument("--runs", type=int, default=60, help="sequential executions for the overhead figure")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    load = os.getloadavg()
    results: dict = {"machine": {"python": platform.python_version(), "cores": len(os.sched_getaffinity(0)),
                                 "load_average": load}}
    print(f"machine: {results['machine']['cores']} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    results["trivial"] = t = throughput(TRIVIAL, args.seconds, 20)
    print(f"trivial program:   {t['per_s']:6.1f} sandboxed executions/s ({t['executions']} in {t['seconds']:.1f} s, "
          f"{t['cores']} at a time)")
    results["cpu_second"] = c = throughput(CPU_SECOND, args.seconds, 2 * get_sandbox().cores)
    print(f"1-s CPU-bound:     {c['per_s']:6.2f} sandboxed executions/s ({c['executions']} in {c['seconds']:.1f} s)")
    results["overhead"] = o = overhead(args.runs)
    print(f"isolation overhead: {o['overhead_ms']:.1f} ms per execution, wall clock (median of {o['runs']}: "
          f"{o['sandboxed_wall_ms']:.1f} ms sandboxed, {o['plain_wall_ms']:.1f} ms plain subprocess; target <= 15 ms); "
          f"{o['overhead_cpu_ms']:.1f} ms of CPU ({o['sandboxed_cpu_ms']:.1f} against {o['plain_cpu_ms']:.1f})")
    workers = len(os.sched_getaffinity(0))
    items = batch(args.completions, args.tests)
    results["server"] = s = asyncio.run(through_server(items, workers))
    print(f"through the server ({workers} verify workers): {s['completions']} completions x {args.tests} tests = "
          f"{s['executions']} executions in {s['wall_s']:.1f} s ({s['executions_per_s']:.1f} executions/s); "
          f"verdicts {s['verdicts']}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
