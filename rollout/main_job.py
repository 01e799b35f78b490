"""The README's main job on the embedded default: the whole loop on one laptop, no GPU, no network.

1. Start the embedded policy server (SmolLM2-135M-Instruct) and evaluate it on held-out (eval-split) tasks.
2. Run a Ray rollout over the built-in environments against it (the environment server is started for the
   run), rejection-sample, and write the accepted trajectories to Parquet.
3. Fine-tune the model for a few steps on those trajectories (the torchtitan trainer, on the CPU) and write a
   Hugging Face checkpoint.
4. Serve the trained checkpoint, evaluate it on the same held-out tasks, and write the report comparing the
   two evaluations.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

import environments
from env_server.process import lachesis_process

from .config import RolloutConfig
from .run import run_rollout

# Those registered are used, with options that give a 135M-parameter model a fair chance of some passes.
MAIN_JOB_ENVS = {"arithmetic": {}, "answer_format": {"check_content": False}, "ifeval": {"max_constraints": 1}}


def main_job_config(workdir: Path, policy_url: str, *, tasks: int, n: int, max_tokens: int) -> RolloutConfig:
    registered = {s.name for s in environments.specs()}
    envs = [{"name": name, "tasks": tasks, "config": options} for name, options in MAIN_JOB_ENVS.items()
            if name in registered]
    return RolloutConfig(
        run_id="main-job", out_dir=str(workdir / "rollout"), n=n, workers=2, concurrency=8, shard_tasks=64,
        envs=envs, policy={"kind": "sglang", "urls": [policy_url]},
        sampling={"temperature": 0.8, "top_p": 0.95, "max_tokens": max_tokens, "seed": 0},  # reproducible
        selection={"keep": 2, "keep_rejected": True})


async def run_main_job(workdir: Path, *, tasks: int = 6, n: int = 6, max_tokens: int = 192, train_steps: int = 4,
                       eval_tasks: int = 4) -> int:
    import ray

    from evals.main_job import evaluate_policy
    from evals.report import scores_table, to_text
    from trainer import finetune

    from .embedded import prepare_default_model

    for part in ("rollout", "train", "eval-before", "eval-after"):
        shutil.rmtree(workdir / part, ignore_errors=True)
    base = prepare_default_model()
    print(f"main job in {workdir}: SmolLM2-135M-Instruct on the CPU; environments {', '.join(MAIN_JOB_ENVS)}")

    async with lachesis_process("policy", "serve", "--port", "0", "--model", str(base)) as url:
        print(f"\n[1/4] evaluating the base model on {eval_tasks} held-out tasks per environment")
        before, _ = await evaluate_policy(url, workdir / "eval-before", tasks=eval_tasks)
        print(f"\n[2/4] rollout: {tasks} tasks per environment, n={n}")
        config = main_job_config(workdir, url, tasks=tasks, n=n, max_tokens=max_tokens)
        summary = await run_rollout(config)
    ray.shutdown()  # its workers would compete with training for the cores
    print("\n" + summary.table())
    files = sorted(Path(config.out_dir).glob("accepted-*.parquet"))
    accepted = sum(pq.read_metadata(f).num_rows for f in files)
    print(f"{accepted} accepted trajectories in {len(files)} Parquet shard(s) under {config.out_dir}")
    if not files:
        print("nothing accepted: no training step", flush=True)
        return 1
    example = pq.read_table(files[0]).slice(0, 1).to_pylist()[0]
    print(f"an accepted one ({example['env']}): {json.dumps(example['messages'][-1]['content'])[:300]}")

    print(f"\n[3/4] fine-tuning for {train_steps} steps on the accepted trajectories", flush=True)
    trained = await asyncio.to_thread(finetune, files, base, workdir / "train", steps=train_steps)
    print(f"checkpoint: {trained}")

    print("\n[4/4] evaluating the trained model on the same held-out tasks")
    async with lachesis_process("policy", "serve", "--port", "0", "--model", str(trained)) as url:
        after, report = await evaluate_policy(url, workdir / "eval-after", baseline=workdir / "eval-before",
                                              tasks=eval_tasks)
    rows = [(env, label, result.metrics[env]) for env in after.metrics
            for label, result in (("before", before), ("after", after)) if env in result.metrics]
    print("\n" + to_text(scores_table(rows)))
    print(f"\nreport: {report} (and report.html)")
    return 1 if summary.failed else 0
