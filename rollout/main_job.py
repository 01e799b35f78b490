"""The README's main job on the embedded default: a real rollout on one laptop, no GPU, no network.

It starts the environment server and the embedded policy server (SmolLM2-135M-Instruct) as processes, runs
a Ray rollout over the built-in environments, rejection-samples, writes the accepted trajectories to
Parquet and prints the accept rates.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

import environments

from .config import RolloutConfig
from .run import run_rollout

# Those registered are used, with options that give a 135M-parameter model a fair chance of some passes.
MAIN_JOB_ENVS = {"arithmetic": {}, "answer_format": {"check_content": False}, "ifeval": {"max_constraints": 1}}


def main_job_config(workdir: Path, *, tasks: int, n: int, max_tokens: int) -> RolloutConfig:
    registered = {s.name for s in environments.specs()}
    envs = [{"name": name, "tasks": tasks, "config": options} for name, options in MAIN_JOB_ENVS.items()
            if name in registered]
    return RolloutConfig(
        run_id="main-job", out_dir=str(workdir / "rollout"), n=n, workers=2, concurrency=8, shard_tasks=64,
        envs=envs, policy={"kind": "embedded"}, sampling={"temperature": 0.8, "top_p": 0.95, "max_tokens": max_tokens},
        selection={"keep": 2, "keep_rejected": True})


async def run_main_job(workdir: Path, *, tasks: int = 6, n: int = 6, max_tokens: int = 192) -> int:
    shutil.rmtree(workdir / "rollout", ignore_errors=True)
    config = main_job_config(workdir, tasks=tasks, n=n, max_tokens=max_tokens)
    print(f"main job: {', '.join(e.name for e in config.envs)}; {config.envs[0].tasks} tasks each, n={config.n}, "
          f"embedded policy (SmolLM2-135M-Instruct on the CPU)")
    summary = await run_rollout(config)
    print("\n" + summary.table())
    files = sorted(Path(config.out_dir).glob("accepted-*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    print(f"\n{len(rows)} accepted trajectories in {len(files)} Parquet shard(s) under {config.out_dir}")
    if rows:
        example = rows[0]
        print(f"an accepted one ({example['env']}, reward {example['reward']}):")
        print(json.dumps(example["messages"][-1]["content"])[:400])
    return 1 if summary.failed else 0

