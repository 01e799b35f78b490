"""Evaluations: every environment is a benchmark (pass@k with intervals, error accounting, per-sample logs,
resumable runs, reports that compare runs). `lachesis eval` is the command line over these functions."""

from .adapters import load_benchmark
from .log import Run, SampleRecord
from .main_job import evaluate_policy
from .metrics import EnvMetrics, Estimate, compare, pass_at_k, summarize
from .report import write_report
from .run import EnvRequest, EvalConfig, RunResult, run_eval

__all__ = [
    "EnvMetrics", "EnvRequest", "Estimate", "EvalConfig", "Run", "RunResult", "SampleRecord", "compare",
    "evaluate_policy", "load_benchmark", "pass_at_k", "run_eval", "summarize", "write_report",
]
