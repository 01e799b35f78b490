"""The main job's evaluation: the served model on held-out tasks before and after training, and the report.

Called twice by the main job, once against the policy server holding the base model and once against the
trained one with the first run as `baseline`; the second report compares the two runs (score deltas and the
tasks that flipped). Small on purpose: a few eval-split tasks of each environment, two samples each.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .report import write_report
from .run import EvalConfig, RunResult, run_eval

# The main job's environments, with the options that give a 135M-parameter model a fair chance of some passes.
MAIN_JOB_EVAL_ENVS = {"arithmetic": {}, "answer_format": {"check_content": False}, "ifeval": {"max_constraints": 1}}


async def evaluate_policy(policy_url: str, run_dir: str | Path, *, baseline: str | Path | None = None, tasks: int = 4,
                          samples: int = 2, max_tokens: int = 128,
                          envs: dict[str, dict] | None = None) -> tuple[RunResult, Path]:
    """Evaluate the SGLang-compatible server at `policy_url` (the embedded policy server) on the first `tasks`
    eval-split tasks of each environment, `samples` samples each, into a fresh `run_dir`; write the report
    (comparing with the `baseline` run directory when given) as run_dir/report.md and report.html.
    Returns the run's result and the Markdown report's path."""
    run_dir = Path(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)  # a new checkpoint behind the same URL: never resume an old run
    config = EvalConfig.build(
        run_dir=str(run_dir), policy=f"sglang:{policy_url}", samples=samples,
        envs=[{"name": name, "config": options, "limit": tasks}
              for name, options in (envs or MAIN_JOB_EVAL_ENVS).items()],
        sampling={"temperature": 0.8, "top_p": 0.95, "max_tokens": max_tokens, "seed": 0})
    result = await run_eval(config)
    runs = [baseline, run_dir] if baseline is not None else [run_dir]
    markdown, _ = write_report(runs, run_dir)
    return result, markdown
