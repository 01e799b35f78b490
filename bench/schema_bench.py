#!/usr/bin/env python
"""Benchmark of the JSON-schema environment.

1. Validations per second on one core (this process, one thread, rates per second of its CPU time), for
   documents under 2 KB: `JSONSchemaEnv.verify` (strict parse, jsonschema, the pydantic second opinion,
   required values) and the public `check()` (parse and jsonschema only), over a fixed mix of completions
   for generated tasks: the reference document fenced and bare, one with a required value changed, one with
   a value of the wrong type, and one cut short (2 valid, 3 invalid per task). Every schema has been seen
   once, so its compiled validators and pydantic model are cached (a GRPO group checks n completions
   against one schema). verify is also timed on the valid and on the invalid completions apart: a valid
   document takes the quick verdict alone, an invalid one also jsonschema's account of its violations.
   Also the one-time cost of a schema seen for the first time (model, schema, validator).
   Target: >= 5,000 validations/s per core.
2. Batch verification through a real `lachesis serve` process (env_server.process.lachesis_process, with
   two verify workers) via EnvServerClient.verify: batches of tasks x completions, round-trip time and
   completions/s, on schemas the workers have seen and on fresh ones.

Usage:  .venv/bin/python bench/schema_bench.py [--tasks 200] [--seconds 3] [--batches 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import environments  # noqa: E402
from env_server.client import EnvServerClient  # noqa: E402
from env_server.process import lachesis_process  # noqa: E402
from environments.schema import check, models  # noqa: E402
from environments.schema.corrupt import truncation, wrong_type  # noqa: E402
from environments.types import Completion, Task  # noqa: E402

LIMIT = 2048


def completions_for(task: Task) -> list[tuple[str, Completion]]:
    """(label, completion) pairs; the label says whether it must be accepted."""
    v = task.verifier
    doc, spec = v["reference"], v["spec"]
    pretty = json.dumps(doc, indent=2)
    out = [("valid", Completion(text=f"```json\n{pretty}\n```")), ("valid", Completion(text=json.dumps(doc)))]
    pointer = next(iter(v["values"]), "")
    if pointer:  # a required (generate) or kept (repair) value changed
        out.append(("invalid", Completion(text=_with_value(doc, pointer, ["changed"]))))
    for corruption in (wrong_type, truncation):
        result = corruption(doc, spec, random.Random(0))
        if result is not None:
            out.append(("invalid", Completion(text=result.text)))
    return [(label, c) for label, c in out if len(c.text.encode()) < LIMIT]


def _with_value(doc, pointer: str, value) -> str:
    doc = json.loads(json.dumps(doc))
    *parents, last = pointer.split("/")[1:]
    target = doc
    for key in parents:
        target = target[int(key) if isinstance(target, list) else key]
    target[int(last) if isinstance(target, list) else last] = value
    return json.dumps(doc, indent=2)


def rates(jobs: dict, seconds: float) -> dict[str, dict[str, float]]:
    """For each job (fn, items): fn(item) over all items, pass after pass, the jobs taking turns for `seconds`
    so that a busy machine slows them alike. Calls per second of this process's CPU time in the median pass
    and in the fastest (the machine is shared, so passes vary)."""
    per_item: dict[str, list[float]] = {name: [] for name in jobs}
    wall0 = time.perf_counter()
    while time.perf_counter() - wall0 < seconds or min(map(len, per_item.values())) < 3:
        for name, (fn, items) in jobs.items():
            cpu0 = time.process_time()
            for item in items:
                fn(item)
            per_item[name].append((time.process_time() - cpu0) / len(items))
    return {name: {"per_s_cpu": 1 / statistics.median(times), "per_s_cpu_best": 1 / min(times),
                   "us_each": statistics.median(times) * 1e6, "passes": len(times)} for name, times in per_item.items()}


def make_tasks(start: int, count: int) -> list[Task]:
    source = environments.make("json_schema").tasks()
    return [source.get("train", i) for i in range(start, start + count)]


def validation(tasks: list[Task], fresh: list[Task], seconds: float) -> dict:
    env = environments.make("json_schema")
    items = [(t, c, label) for t in tasks for label, c in completions_for(t)]
    sizes = [len(c.text.encode()) for _, c, _ in items]
    verdicts = [env.verify(t, c).accepted for t, c, _ in items]  # also compiles every schema once
    assert verdicts == [label == "valid" for _, _, label in items], "a completion was judged wrongly"
    checks = [(t.verifier["schema"], c.text) for t, c, _ in items]
    for schema, text in checks:
        check(schema, text)  # the schema alone (no spec) compiles separately, with the metaschema check
    verify = lambda item: env.verify(item[0], item[1])  # noqa: E731
    measured = rates({"verify": (verify, items), "check": (lambda item: check(*item), checks),
                      "verify_valid": (verify, [i for i in items if i[2] == "valid"]),
                      "verify_invalid": (verify, [i for i in items if i[2] == "invalid"])}, 3 * seconds)
    models._built.cache_clear()  # generating the tasks built their models here; a verifier would not have
    cpu0 = time.process_time()
    for task in fresh:
        env.verify(task, Completion(text=json.dumps(task.verifier["reference"])))
    first_sight_ms = (time.process_time() - cpu0) / len(fresh) * 1000
    return {"completions": len(items), "tasks": len(tasks), "mean_bytes": statistics.fmean(sizes),
            "median_bytes": statistics.median(sizes), "max_bytes": max(sizes), **measured,
            "first_sight_ms": first_sight_ms}


async def through_server(warm: list[Task], fresh: list[list[Task]], batches: int) -> dict:
    def batch(tasks: list[Task]) -> list[tuple[Task, Completion, str]]:
        return [(t, c, label) for t in tasks for label, c in completions_for(t)]

    async def timed(client: EnvServerClient, items: list[tuple[Task, Completion, str]]) -> float:
        start = time.perf_counter()
        scores = await client.verify("json_schema", [(t, c) for t, c, _ in items])
        elapsed = time.perf_counter() - start
        assert [s["accepted"] for s in scores] == [label == "valid" for _, _, label in items]
        return elapsed

    with tempfile.TemporaryDirectory() as tmp:
        args = ("serve", "--port", "0", "--data-dir", str(Path(tmp) / "store"), "--verify-workers", "2")
        async with lachesis_process(*args) as url, EnvServerClient(url) as client:
            seen = batch(warm)
            first = await timed(client, seen)  # spawns the workers; each compiles what it is sent
            repeat = [await timed(client, seen) for _ in range(batches)]
            new = [(len(items), await timed(client, items)) for items in map(batch, fresh)]
    return {"batch_items": len(seen), "batch_tasks": len(warm), "first_batch_s": first,
            "seen_s_median": statistics.median(repeat), "seen_items_per_s": len(seen) / statistics.median(repeat),
            "fresh_items_per_s": sum(n for n, _ in new) / sum(s for _, s in new),
            "fresh_s_median": statistics.median(s for _, s in new)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200, help="tasks in the in-process mix")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing budget of each throughput measurement")
    parser.add_argument("--batch-tasks", type=int, default=64, help="tasks per server batch")
    parser.add_argument("--batches", type=int, default=5, help="repeated batches on seen schemas")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    tasks = make_tasks(0, args.tasks)
    fresh = make_tasks(args.tasks, 100)
    results = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    results["validation"] = v = validation(tasks, fresh, args.seconds)
    print(f"in process: {v['completions']} completions for {v['tasks']} tasks, "
          f"{v['mean_bytes']:.0f} B mean, {v['median_bytes']:.0f} B median, {v['max_bytes']} B max")
    for label, r in (("JSONSchemaEnv.verify", v["verify"]), ("schema.check", v["check"]),
                     ("  valid ones only", v["verify_valid"]), ("  invalid ones only", v["verify_invalid"])):
        print(f"  {label:<21} {r['per_s_cpu']:>7,.0f}/s per core in the median pass ({r['us_each']:.0f} us each), "
              f"{r['per_s_cpu_best']:,.0f}/s in the fastest of {r['passes']}")
    print(f"  a schema seen for the first time: {v['first_sight_ms']:.1f} ms once (model, schema, validator)")

    server_tasks = make_tasks(args.tasks + 100, args.batch_tasks * 4)
    warm = server_tasks[: args.batch_tasks]
    fresh_batches = [server_tasks[args.batch_tasks * (i + 1) : args.batch_tasks * (i + 2)] for i in range(3)]
    results["server"] = s = asyncio.run(through_server(warm, fresh_batches, args.batches))
    print(f"through the server (2 verify workers): batches of {s['batch_items']} completions for {s['batch_tasks']} tasks")
    print(f"  seen schemas:  {s['seen_s_median'] * 1000:,.0f} ms per batch, {s['seen_items_per_s']:,.0f} completions/s")
    print(f"  fresh schemas: {s['fresh_s_median'] * 1000:,.0f} ms per batch, {s['fresh_items_per_s']:,.0f} completions/s")
    print(f"  first batch (worker start-up): {s['first_batch_s']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
