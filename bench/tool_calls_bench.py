#!/usr/bin/env python
"""Benchmark of the tool-calling environment.

1. Verification throughput on one core (this process, one thread): `ToolCallsEnv.verify` over a fixed mix of
   completions for eval-split tasks of every kind. Per task: its reference answer; the same after prose that
   brings it to 1.9 KB (the size bound); three wrong ones (a changed argument value, a dropped argument, JSON
   cut short; a wrong number for answer tasks); the reference calls as OpenAI-style structured `tool_calls`.
   Every completion is under 2 KB. Also the public `check()` (BFCL's shape) on the call tasks' text
   completions. Rates are per second of this process's CPU time. Target: >= 5,000 validations/s per core.
2. Multi-turn episodes through a real `lachesis serve` process (started as in tests/conftest.py), with
   EnvServerClient: reset, one step per round of tool calls, then the final answer, until terminated with
   reward 1. Reported: ms per episode (p50/p95) played one at a time, episodes/s with 16 played
   concurrently, and the server's CPU ms per episode (utime+stime from /proc).

Usage:  .venv/bin/python bench/tool_calls_bench.py [--seconds 3] [--tasks 300] [--episodes 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import environments  # noqa: E402
from env_server.client import EnvServerClient  # noqa: E402
from environments.tool_calls import Call, check, parse_calls, reference_actions  # noqa: E402
from environments.tool_calls.hermes import render_call  # noqa: E402
from environments.types import Completion, Message, Task, ToolCall  # noqa: E402


# -- 1. verification throughput -------------------------------------------------------------------------


PROSE = "Let me work out which functions this needs and what each argument must be. " * 30


def completions_for(task: Task) -> list[tuple[str, Completion]]:
    final = reference_actions(task)[-1].content
    calls = parse_calls(final)
    long = ("reference", Completion(text=f"{PROSE[: 1900 - len(final.encode())]}\n{final}"))  # 1.9 KB
    if not calls:  # an answer task: the right number and a wrong one
        return [("reference", Completion(text=final)), long, ("wrong", Completion(text="I think so.\nAnswer: -1"))]
    first = calls[0]
    name = next(iter(first.arguments))
    changed = Call(first.name, {**first.arguments, name: "something else"})
    dropped = Call(first.name, {k: v for k, v in first.arguments.items() if k != name})
    rest = "\n".join(render_call(c) for c in calls[1:])
    return [
        ("reference", Completion(text=final)),
        long,
        ("structured", Completion(text="", tool_calls=[ToolCall(name=c.name, arguments=c.arguments) for c in calls])),
        ("wrong value", Completion(text=f"{render_call(changed)}\n{rest}")),
        ("dropped argument", Completion(text=f"{render_call(dropped)}\n{rest}")),
        ("broken JSON", Completion(text=final[: len(final) // 2] + "</tool_call>")),
    ]


def rate(fn, items: list, seconds: float) -> dict[str, float]:
    """Calls of fn(item) per second of wall time and of this process's CPU time, cycling through items."""
    done, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        for item in items:
            fn(item)
        done += len(items)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"per_s_wall": done / wall, "per_s_cpu": done / cpu, "us_each": cpu / done * 1e6, "count": done}


def verification(n_tasks: int, seconds: float) -> dict:
    env = environments.make("tool_calls")
    items = [(task, completion, label) for task in env.tasks().iter("eval", limit=n_tasks)
             for label, completion in completions_for(task)]
    sizes = [len(c.text.encode()) + len(json.dumps([t.model_dump() for t in c.tool_calls or []])) for _, c, _ in items]
    assert max(sizes) < 2048, max(sizes)
    verdicts = [env.verify(t, c).accepted for t, c, _ in items]
    assert all(v == (label in ("reference", "structured")) for v, (_, _, label) in zip(verdicts, items))
    by_kind = {}
    for kind in ("single", "parallel", "distractor", "no_call", "multi_turn"):
        subset = [(t, c) for t, c, _ in items if t.verifier["kind"] == kind]
        by_kind[kind] = rate(lambda item: env.verify(*item), subset, seconds / 5)
    overall = rate(lambda item: env.verify(item[0], item[1]), items, seconds)

    bfcl = [([tool.model_dump(exclude={"type"}) for tool in t.tools], t.verifier["calls"], c.text)
            for t, c, _ in items if "calls" in t.verifier and c.text]
    public = rate(lambda item: check(*item), bfcl, seconds)
    return {"completions": len(items), "mean_bytes": statistics.fmean(sizes), "max_bytes": max(sizes),
            "verify": overall, "verify_by_kind": by_kind, "check": public, "check_completions": len(bfcl)}


# -- 2. multi-turn episodes through the server ----------------------------------------------------------


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    log = open(data_dir.parent / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "lachesis", "serve", "--port", "0", "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if "listening on " not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.split("listening on ")[1].split()[0]


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def multi_turn_episodes(count: int) -> list[tuple[int, list[Message]]]:
    """(train index, reference actions) of the first `count` multi-turn tasks of the train split."""
    env, found, index = environments.make("tool_calls"), [], 0
    while len(found) < count:
        task = env.tasks().get("train", index)
        if task.verifier["kind"] == "multi_turn":
            found.append((index, reference_actions(task)))
        index += 1
    return found


async def play(client: EnvServerClient, index: int, actions: list[Message]) -> float:
    start = time.perf_counter()
    session = (await client.reset("tool_calls", options={"split": "train", "index": index}))["session_id"]
    for action in actions:
        result = await client.step(session, action)
    elapsed = time.perf_counter() - start
    assert (result["reward"], result["terminated"]) == (1.0, True), result["info"]
    await client.close_session(session)
    return elapsed


async def episodes_through_server(url: str, pid: int, episodes: list[tuple[int, list[Message]]],
                                  concurrency: int) -> dict:
    async with EnvServerClient(url) as client:
        await play(client, *episodes[0])  # warm-up: imports, first session
        cpu0 = server_cpu_seconds(pid)
        sequential = [await play(client, index, actions) for index, actions in episodes]
        cpu_sequential = server_cpu_seconds(pid) - cpu0
        gate = asyncio.Semaphore(concurrency)

        async def gated(index: int, actions: list[Message]) -> float:
            async with gate:
                return await play(client, index, actions)

        wall0 = time.perf_counter()
        await asyncio.gather(*(gated(index, actions) for index, actions in episodes))
        concurrent_wall = time.perf_counter() - wall0
    ms = sorted(t * 1000 for t in sequential)
    steps = statistics.fmean(len(actions) for _, actions in episodes)
    return {"episodes": len(episodes), "steps_per_episode": steps, "ms_p50": ms[len(ms) // 2],
            "ms_p95": ms[int(len(ms) * 0.95)], "ms_mean": statistics.fmean(ms),
            "server_cpu_ms_per_episode": cpu_sequential / len(episodes) * 1000,
            "concurrency": concurrency, "episodes_per_s_concurrent": len(episodes) / concurrent_wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing budget of each throughput measurement")
    parser.add_argument("--tasks", type=int, default=300, help="eval tasks in the verification mix")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    results = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    results["verification"] = v = verification(args.tasks, args.seconds)
    print(f"verification: {v['completions']} completions, mean {v['mean_bytes']:.0f} B, max {v['max_bytes']} B")
    print(f"  ToolCallsEnv.verify  {v['verify']['per_s_cpu']:>9,.0f}/s per core ({v['verify']['us_each']:.1f} us each)")
    for kind, r in v["verify_by_kind"].items():
        print(f"    {kind:<12} {r['per_s_cpu']:>9,.0f}/s")
    print(f"  tool_calls.check     {v['check']['per_s_cpu']:>9,.0f}/s per core ({v['check']['us_each']:.1f} us each)")

    episodes = multi_turn_episodes(args.episodes)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "store")
        try:
            results["episodes"] = e = asyncio.run(episodes_through_server(url, proc.pid, episodes, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"multi-turn episodes through the server: {e['episodes']} episodes, {e['steps_per_episode']:.2f} steps each")
    print(f"  one at a time: {e['ms_mean']:.2f} ms mean, {e['ms_p50']:.2f} ms p50, {e['ms_p95']:.2f} ms p95 "
          f"per episode; server CPU {e['server_cpu_ms_per_episode']:.2f} ms per episode")
    print(f"  {e['concurrency']} concurrent: {e['episodes_per_s_concurrent']:,.0f} episodes/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
