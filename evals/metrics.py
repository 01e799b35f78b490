"""What a run's samples say: unbiased pass@k, intervals on every headline number, error accounting, breakdowns.

Accounting rule (the Hermes 4 lesson: a score belongs to the model *and* the harness): a sample that the
harness failed to produce or judge (engine error, timeout, sandbox or verifier failure, a broken task) has no
verdict, so it is left out of every score and counted under its error kind instead. A sample the model got
wrong, including one whose output does not parse, is scored as wrong; parse failures are also counted apart.

Intervals are over tasks, the unit that was sampled: a Wilson interval where each task contributes one 0/1
value, otherwise a percentile bootstrap over tasks of the ratio of sums (samples of one task are correlated,
so resampling samples would make the interval too narrow); where every task scored alike the bootstrap has
no spread to see, and a Wilson interval over the tasks stands in.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000

# Error kinds. Harness errors leave a sample without a verdict; parse errors are the model's (scored wrong).
HARNESS_ERRORS = ("engine", "timeout", "sandbox", "verifier", "task")
ERROR_KINDS = ("parse", *HARNESS_ERRORS)
# A verifier's Score.error is the model's fault (a parse failure) unless details["error_kind"] names one of
# ERROR_KINDS, or its text starts with one of these (what Env.score and the built-in verifiers write).
_ERROR_PREFIXES = (("verifier error", "verifier"), ("bad task", "task"), ("invalid schema", "task"),
                   ("unresolvable reference", "task"), ("sandbox", "sandbox"), ("verification timed out", "timeout"),
                   ("verifier process failed", "verifier"))
# Scalar details that break scores down (answer_format's format, tool_calls' kind, a code task's difficulty).
BREAKDOWN_KEYS = ("format", "kind", "category", "difficulty")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): the chance that k of the n samples, drawn without replacement,
    include at least one of the c correct ones, 1 - C(n-c, k) / C(n, k)."""
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError("n, c and k must be integers")
    if not 0 <= c <= n:
        raise ValueError(f"c must be between 0 and n={n}, got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and n={n}, got {k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i): no huge binomials, stable for large n
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


# -- intervals ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    tasks: int  # how many tasks it rests on
    method: str  # "wilson" or "bootstrap"

    def fmt(self, percent: bool = True) -> str:
        if self.tasks == 0:
            return "–"
        if percent:
            return f"{100 * self.value:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}]"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


EMPTY = Estimate(math.nan, math.nan, math.nan, 0, "none")


def wilson(successes: float, total: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if total <= 0:
        return (math.nan, math.nan)
    z = _z(confidence)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_ratio(num: Sequence[float], den: Sequence[float], *, confidence: float = CONFIDENCE,
                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of sum(num)/sum(den) when tasks (the pairs) are resampled with replacement."""
    num_arr, den_arr = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    t = len(num_arr)
    if t == 0:
        return (math.nan, math.nan)
    ratios = np.empty(resamples)
    for start, idx in _resamples(t, resamples, seed):
        dens = den_arr[idx].sum(axis=1)
        ratios[start:start + len(idx)] = np.divide(num_arr[idx].sum(axis=1), dens, out=np.full(len(idx), np.nan),
                                                   where=dens > 0)
    tail = (1 - confidence) / 2
    low, high = np.nanquantile(ratios, [tail, 1 - tail])
    return (float(low), float(high))


def _resamples(t: int, resamples: int, seed: int) -> Iterator[tuple[int, np.ndarray]]:
    """(offset, task indices) chunks of the bootstrap resamples; the same for the same arguments, so the
    metrics of one run share them (drawn once, and resampled consistently)."""
    if resamples * t <= 2_000_000:
        yield 0, _small_resamples(t, resamples, seed)
        return
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // t)  # bound memory: resamples × tasks indices per chunk
    for start in range(0, resamples, chunk):
        yield start, rng.integers(0, t, size=(min(chunk, resamples - start), t), dtype=np.int32)


@functools.lru_cache(maxsize=4)  # at most 4 × 8 MB (int32)
def _small_resamples(t: int, resamples: int, seed: int) -> np.ndarray:
    idx = np.random.default_rng(seed).integers(0, t, size=(resamples, t), dtype=np.int32)
    idx.flags.writeable = False
    return idx


def estimate(num: Sequence[float], den: Sequence[float]) -> Estimate:
    """sum(num)/sum(den) over tasks with its interval: Wilson when every task is one 0/1 trial, else bootstrap."""
    num_arr, den_arr = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    total = float(den_arr.sum())
    if len(num_arr) == 0 or total <= 0:
        return EMPTY
    value = float(num_arr.sum()) / total
    if np.all(den_arr == 1) and np.all((num_arr == 0) | (num_arr == 1)):
        low, high = wilson(float(num_arr.sum()), total)
        return Estimate(value, min(low, value), max(high, value), len(num_arr), "wilson")
    low, high = bootstrap_ratio(num_arr, den_arr)
    if high - low < 1e-12 and 0.0 <= value <= 1.0:
        # every task scored alike, so resampling tasks shows no spread: bound it as T trials of a proportion
        low, high = wilson(value * len(num_arr), len(num_arr))
        return Estimate(value, min(low, value), max(high, value), len(num_arr), "wilson")
    return Estimate(value, min(low, value), max(high, value), len(num_arr), "bootstrap")


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


# -- classifying errors ---------------------------------------------------------------------------------


def error_kind(error: str | None, details: Mapping[str, Any] | None = None) -> str | None:
    """The kind of a verifier's Score.error (None when there is none)."""
    if error is None:
        return None
    named = (details or {}).get("error_kind")
    if named in ERROR_KINDS:
        return named
    lowered = error.lower()
    for prefix, kind in _ERROR_PREFIXES:
        if lowered.startswith(prefix):
            return kind
    return "parse"


def is_overlong(text: str, finish_reason: str | None) -> bool:
    """The output hit the length limit, or opened a <think> block it never closed."""
    if finish_reason == "length":
        return True
    opened = text.rfind("<think>")
    return opened >= 0 and "</think>" not in text[opened:]


# -- aggregation ----------------------------------------------------------------------------------------


@dataclass
class Rate:
    passed: int = 0
    total: int = 0

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else math.nan


@dataclass
class EnvMetrics:
    env: str
    tasks: int
    samples: int
    scored: int  # samples with a verdict
    accuracy: Estimate  # accepted / scored
    mean_reward: Estimate
    pass_at: dict[int, Estimate]
    overlong: Estimate  # over samples that produced an output
    length: dict[str, float]  # output length statistics, in `length_unit`
    length_unit: str  # "tokens" when every output reported its token count, else "characters"
    errors: dict[str, int]  # error kind → samples
    retries: int  # transient engine errors retried
    instruction_following: dict[str, Estimate] = field(default_factory=dict)  # IFEval's four numbers
    breakdowns: dict[str, dict[str, Rate]] = field(default_factory=dict)  # key → value → accepted/scored

    def headline(self) -> dict[str, Estimate]:
        """Every headline number with its interval, in display order."""
        out = {"accuracy": self.accuracy, "mean reward": self.mean_reward}
        out.update({f"pass@{k}": e for k, e in self.pass_at.items()})
        out.update(self.instruction_following)
        out["overlong"] = self.overlong
        return out


def default_ks(n: int) -> list[int]:
    """1, 2, 4, … up to n, and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return [*ks, n] if n >= 1 else []


def summarize(env: str, records: Iterable[Mapping[str, Any]], *, samples_per_task: int) -> EnvMetrics:
    """Aggregate one environment's sample records (the log's rows, as dicts)."""
    records = list(records)
    by_task: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        by_task[r["task_id"]].append(r)
    scored_by_task = {t: [r for r in rs if r["error_kind"] not in HARNESS_ERRORS] for t, rs in by_task.items()}
    judged = [rs for rs in scored_by_task.values() if rs]
    n_scored = np.array([len(rs) for rs in judged], dtype=np.float64)
    n_correct = np.array([sum(bool(r["accepted"]) for r in rs) for rs in judged], dtype=np.float64)
    rewards = np.array([sum(r["reward"] for r in rs) for rs in judged], dtype=np.float64)

    pass_at = {}
    for k in default_ks(samples_per_task):
        values = [pass_at_k(int(n), int(c), k) for n, c in zip(n_scored, n_correct) if n >= k]
        pass_at[k] = estimate(values, [1.0] * len(values))

    produced = [r for r in records if r["output"] is not None]
    overlong = defaultdict(lambda: [0, 0])
    for r in produced:
        overlong[r["task_id"]][0] += bool(r["overlong"])
        overlong[r["task_id"]][1] += 1
    errors = {kind: 0 for kind in ERROR_KINDS}
    for r in records:
        if r["error_kind"] is not None:
            errors[r["error_kind"]] += 1
    length, unit = _lengths(produced)
    return EnvMetrics(
        env=env, tasks=len(by_task), samples=len(records), scored=int(n_scored.sum()),
        accuracy=estimate(n_correct, n_scored), mean_reward=estimate(rewards, n_scored), pass_at=pass_at,
        overlong=estimate([v[0] for v in overlong.values()], [v[1] for v in overlong.values()]),
        length=length, length_unit=unit, errors=errors, retries=sum(r["attempts"] - 1 for r in records),
        instruction_following=_instruction_following(judged), breakdowns=_breakdowns(judged))


def _lengths(produced: list[Mapping[str, Any]]) -> tuple[dict[str, float], str]:
    tokens = [r["completion_tokens"] for r in produced]
    if produced and all(t is not None for t in tokens):
        values, unit = np.array(tokens, dtype=np.float64), "tokens"
    else:
        values, unit = np.array([len(r["output"]) for r in produced], dtype=np.float64), "characters"
    if len(values) == 0:
        return {}, unit
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"mean": float(values.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "max": float(values.max())}, unit


def _instruction_following(judged: list[list[Mapping[str, Any]]]) -> dict[str, Estimate]:
    """IFEval's prompt-level and instruction-level accuracy, strict and loose, from per-instruction verdicts
    in details (`strict`, `loose`): a prompt counts when all its instructions are followed; the
    instruction level counts every instruction of every response."""
    per_task = []
    for rs in judged:
        rows = [r["details"] for r in rs if isinstance(r["details"].get("strict"), list)
                and isinstance(r["details"].get("loose"), list)]
        if rows:
            per_task.append(rows)
    if not per_task:
        return {}
    out = {}
    for mode in ("strict", "loose"):
        out[f"prompt-level {mode}"] = estimate([sum(all(d[mode]) for d in rows) for rows in per_task],
                                               [len(rows) for rows in per_task])
        out[f"instruction-level {mode}"] = estimate([sum(sum(d[mode]) for d in rows) for rows in per_task],
                                                    [sum(len(d[mode]) for d in rows) for rows in per_task])
    return out


def _breakdowns(judged: list[list[Mapping[str, Any]]]) -> dict[str, dict[str, Rate]]:
    out: dict[str, dict[str, Rate]] = defaultdict(lambda: defaultdict(Rate))
    for rs in judged:
        for r in rs:
            details = r["details"]
            for key in BREAKDOWN_KEYS:
                value = details.get(key)
                if isinstance(value, (str, int)) and not isinstance(value, bool):
                    rate = out[key][str(value)]
                    rate.passed += bool(r["accepted"])
                    rate.total += 1
            ids, strict = details.get("instruction_id_list"), details.get("strict")
            if isinstance(ids, list) and isinstance(strict, list) and len(ids) == len(strict):
                for cid, followed in zip(ids, strict):
                    rate = out["instruction"][str(cid)]
                    rate.passed += bool(followed)
                    rate.total += 1
    return {key: dict(sorted(values.items())) for key, values in out.items()}


# -- comparing two runs ---------------------------------------------------------------------------------


@dataclass
class TaskChange:
    env: str
    task_id: str
    before: Rate
    after: Rate


@dataclass
class Comparison:
    env: str
    common_tasks: int
    delta: Estimate  # accuracy after − before over common tasks (paired bootstrap)
    fixed: list[TaskChange]  # unsolved before, solved after (solved: at least half the verdicts accepted)
    broken: list[TaskChange]  # solved before, unsolved after
    changed: int  # common tasks whose accepted share changed at all


def compare(env: str, before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]) -> Comparison:
    """Task-by-task comparison of two runs of one environment (tasks matched by task_id)."""
    a, b = _task_rates(before), _task_rates(after)
    common = sorted(t for t in a.keys() & b.keys() if a[t].total and b[t].total)
    changes = [TaskChange(env, t, a[t], b[t]) for t in common]
    fixed = [c for c in changes if not _solved(c.before) and _solved(c.after)]
    broken = [c for c in changes if _solved(c.before) and not _solved(c.after)]
    diffs = np.array([c.after.rate - c.before.rate for c in changes])
    if len(diffs):
        low, high = bootstrap_ratio(diffs, np.ones(len(diffs)))
        delta = Estimate(float(diffs.mean()), min(low, float(diffs.mean())), max(high, float(diffs.mean())),
                         len(diffs), "bootstrap")
    else:
        delta = EMPTY
    return Comparison(env, len(common), delta, fixed, broken, int(np.count_nonzero(diffs)))


def _task_rates(records: Iterable[Mapping[str, Any]]) -> dict[str, Rate]:
    rates: dict[str, Rate] = defaultdict(Rate)
    for r in records:
        if r["error_kind"] not in HARNESS_ERRORS:
            rate = rates[r["task_id"]]
            rate.passed += bool(r["accepted"])
            rate.total += 1
    return rates


def _solved(rate: Rate) -> bool:
    return 2 * rate.passed >= rate.total
