"""Reports of one or more runs: Markdown (plots beside it as PNG files) and self-contained HTML (plots inline).

Every number is recomputed from the runs' sample logs (evals.metrics), so a report never disagrees with the
log. With two or more runs, each later run is compared with the first: score deltas with paired intervals,
and the tasks that flipped.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .log import Run
from .metrics import ERROR_KINDS, HARNESS_ERRORS, Comparison, EnvMetrics, Estimate, Rate, compare, summarize

MAX_TASK_ROWS = 30  # flipped tasks listed per environment
MAX_BREAKDOWN_ROWS = 40
EXAMPLES_PER_KIND = 3


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    name: str  # file name of the PNG
    png: bytes
    caption: str


Block = Heading | Para | Table | Figure


def write_report(run_dirs: Sequence[str | Path], out_dir: str | Path) -> tuple[Path, Path]:
    """Write OUT/report.md (with OUT/plots/*.png) and OUT/report.html; return their paths."""
    if not run_dirs:
        raise ValueError("give at least one run directory")
    runs = [Run(d) for d in run_dirs]
    blocks = report_blocks(runs)
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(to_markdown(blocks, out / "plots"))
    html_path.write_text(to_html(blocks, title="Evaluation report: " + " vs ".join(_labels(runs))))
    return md_path, html_path


def run_metrics(run: Run) -> dict[str, EnvMetrics]:
    n = int(run.manifest.get("samples", 1))
    return {env: summarize(env, records, samples_per_task=n) for env, records in sorted(run.by_env().items())}


def scores_table(rows: Sequence[tuple[str, str | None, EnvMetrics]]) -> Table:
    """One row per (environment, run label or None): tasks, samples, accuracy, pass@k, reward, overlong, errors."""
    ks = sorted({k for _, _, m in rows for k in m.pass_at})
    with_run = any(label is not None for _, label, _ in rows)
    headers = ["env", *(["run"] if with_run else []), "tasks", "samples", "scored", "accuracy % [95% CI]",
               *(f"pass@{k} %" for k in ks), "mean reward", "overlong %", "errors"]
    return Table(headers, [
        [env, *([label or ""] if with_run else []), str(m.tasks), str(m.samples), str(m.scored), m.accuracy.fmt(),
         *(m.pass_at[k].fmt() if k in m.pass_at else "–" for k in ks), m.mean_reward.fmt(percent=False),
         m.overlong.fmt(), _errors(m)]
        for env, label, m in rows])


# -- building the report --------------------------------------------------------------------------------


def report_blocks(runs: list[Run]) -> list[Block]:
    labels = _labels(runs)
    metrics = [run_metrics(r) for r in runs]
    envs = sorted({env for m in metrics for env in m})
    blocks: list[Block] = [
        Heading(1, "Evaluation report"),
        Para(f"Runs: {', '.join(labels)}. Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Intervals are "
             "95 % (Wilson over tasks, or a bootstrap over tasks). Engine errors, timeouts, sandbox, verifier and "
             "task failures are left out of every score and counted apart; parse failures are scored as wrong "
             "answers and counted apart too."),
        Heading(2, "Runs"), _runs_table(runs, labels),
        Heading(2, "Scores"), _merged_scores(metrics, labels, envs)]
    if_table = _instruction_table(metrics, labels, envs)
    if if_table.rows:
        blocks += [Para("Instruction following, as IFEval reports it (prompt level: every instruction of a response "
                        "followed; instruction level: each instruction counted):"), if_table]
    if not envs:
        return [*blocks, Para("No sample has been logged yet.")]
    blocks.append(Figure("scores.png", _scores_plot(metrics, labels, envs), "Accuracy per environment (95 % CI)"))
    blocks += [Heading(2, "Errors"), _errors_table(metrics, labels, envs), *_error_examples(runs, labels)]
    blocks += [Heading(2, "Output length"), _length_table(metrics, labels, envs, runs),
               Figure("lengths.png", _length_plot(runs, labels, envs), "Output length distribution per environment")]
    blocks += _breakdown_blocks(metrics, labels, envs)
    for i in range(1, len(runs)):
        blocks += _comparison_blocks(runs[0], runs[i], labels[0], labels[i], envs)
    return blocks


def _labels(runs: list[Run]) -> list[str]:
    names = [r.name for r in runs]
    return names if len(set(names)) == len(names) else [f"{i + 1}:{n}" for i, n in enumerate(names)]


def _runs_table(runs: list[Run], labels: list[str]) -> Table:
    rows = []
    for run, label in zip(runs, labels):
        m = run.manifest
        policy, sampling = m.get("policy", {}), m.get("sampling", {})
        template = (policy.get("chat_template") or {}).get("sha256")
        envs = ", ".join(f"{e['name']} v{e['version']} ({e['tasks'] if 'tasks' in e else 'unfinished run, ?'} "
                         f"tasks, {e['source']})" for e in m.get("envs", []))
        rows.append([
            label, f"{policy.get('spec')} ({policy.get('name')} v{policy.get('version')})", str(policy.get("model")),
            template[:12] if template else "server-side, unknown",
            f"T={sampling.get('temperature')} top_p={sampling.get('top_p')} top_k={sampling.get('top_k')} "
            f"seed={sampling.get('seed')}", str(m.get("max_tokens")), str(m.get("reasoning")), str(m.get("samples")),
            envs, str(m.get("started")), f"{m.get('seconds', 0):.1f}"])
    return Table(["run", "policy", "model", "chat template (sha256)", "sampling", "max tokens", "reasoning",
                  "samples/task", "environments", "started", "seconds"], rows)


def _merged_scores(metrics: list[dict[str, EnvMetrics]], labels: list[str], envs: list[str]) -> Table:
    return scores_table([(env, label, m[env]) for env in envs for label, m in zip(labels, metrics) if env in m])


def _instruction_table(metrics: list[dict[str, EnvMetrics]], labels: list[str], envs: list[str]) -> Table:
    names = ["prompt-level strict", "instruction-level strict", "prompt-level loose", "instruction-level loose"]
    rows = [[env, label, *(m[env].instruction_following[n].fmt() for n in names)]
            for env in envs for label, m in zip(labels, metrics) if env in m and m[env].instruction_following]
    return Table(["env", "run", *(f"{n} %" for n in names)], rows)


def _errors_table(metrics: list[dict[str, EnvMetrics]], labels: list[str], envs: list[str]) -> Table:
    rows = [[env, label, *(str(m[env].errors[k]) for k in ERROR_KINDS), str(m[env].retries)]
            for env in envs for label, m in zip(labels, metrics) if env in m]
    return Table(["env", "run", *ERROR_KINDS, "engine retries"], rows)


def _error_examples(runs: list[Run], labels: list[str]) -> list[Block]:
    rows = []
    for run, label in zip(runs, labels):
        seen: dict[tuple[str, str], list[str]] = {}
        for r in run.records:
            if r["error"] is None:
                continue
            examples = seen.setdefault((r["env"], r["error_kind"]), [])
            message = _short(r["error"])
            if message not in examples and len(examples) < EXAMPLES_PER_KIND:
                examples.append(message)
        rows += [[env, label, kind, msg] for (env, kind), msgs in sorted(seen.items()) for msg in msgs]
    if not rows:
        return [Para("No sample had an error.")]
    return [Para("Examples of each kind of error:"), Table(["env", "run", "kind", "message"], rows)]


def _length_table(metrics: list[dict[str, EnvMetrics]], labels: list[str], envs: list[str], runs: list[Run]) -> Table:
    rows = []
    for env in envs:
        for label, m, run in zip(labels, metrics, runs):
            if env in m and m[env].length:
                s = m[env].length
                stats = (f"{s[k]:.0f}" for k in ("mean", "p50", "p90", "p99", "max"))
                rows.append([env, label, m[env].length_unit, *stats,
                             f"{run.manifest.get('max_tokens')}", m[env].overlong.fmt()])
    return Table(["env", "run", "unit", "mean", "p50", "p90", "p99", "max", "limit L (tokens)", "overlong@L %"], rows)


def _breakdown_blocks(metrics: list[dict[str, EnvMetrics]], labels: list[str], envs: list[str]) -> list[Block]:
    blocks: list[Block] = []
    for env in envs:
        keys = sorted({k for m in metrics if env in m for k in m[env].breakdowns})
        for key in keys:
            per_run = [m[env].breakdowns.get(key, {}) if env in m else {} for m in metrics]
            sampled = {v: sum(b[v].total for b in per_run if v in b) for b in per_run for v in b}
            values = sorted(sampled, key=lambda v: (-sampled[v], v))  # the most sampled first
            if not blocks:
                blocks.append(Heading(2, "Breakdowns"))
            what = "instruction followed (strict)" if key == "instruction" else "accepted"
            blocks.append(Heading(3, f"{env} by {key}"))
            rows = [[v, *(_rate(b.get(v)) for b in per_run)] for v in values[:MAX_BREAKDOWN_ROWS]]
            blocks.append(Table([key, *(f"{label}: {what}" for label in labels)], rows))
            if len(values) > MAX_BREAKDOWN_ROWS:
                blocks.append(Para(f"… and {len(values) - MAX_BREAKDOWN_ROWS} more {key} values (least sampled)."))
            blocks.append(Figure(f"breakdown-{env}-{key}.png", _breakdown_plot(per_run, labels, values[:25], key),
                                 f"{env}: share {what} by {key} (the 25 most sampled)"))
    return blocks


def _comparison_blocks(before: Run, after: Run, label_a: str, label_b: str, envs: list[str]) -> list[Block]:
    a, b = before.by_env(), after.by_env()
    comparisons = [compare(env, a[env], b[env]) for env in envs if env in a and env in b]
    blocks: list[Block] = [
        Heading(2, f"Comparison: {label_a} → {label_b}"),
        Para("Tasks are matched by id. Δ is the change in accuracy over the tasks both runs judged, with a paired "
             "bootstrap interval. A task is solved when at least half of its judged samples were accepted; fixed "
             "tasks went from unsolved to solved, broken ones the other way."),
        Table(["env", "common tasks", "Δ accuracy % [95% CI]", "fixed", "broken", "changed"],
              [[c.env, str(c.common_tasks), _delta(c.delta), str(len(c.fixed)), str(len(c.broken)), str(c.changed)]
               for c in comparisons])]
    for c in comparisons:
        blocks += _flipped(c, "fixed", label_a, label_b) + _flipped(c, "broken", label_a, label_b)
    return blocks


def _flipped(c: Comparison, which: str, label_a: str, label_b: str) -> list[Block]:
    changes = getattr(c, which)
    if not changes:
        return []
    rows = [[t.task_id, f"{t.before.passed}/{t.before.total}", f"{t.after.passed}/{t.after.total}"]
            for t in changes[:MAX_TASK_ROWS]]
    out: list[Block] = [Heading(3, f"{c.env}: {len(changes)} {which}"), Table(["task", label_a, label_b], rows)]
    if len(changes) > MAX_TASK_ROWS:
        out.append(Para(f"… and {len(changes) - MAX_TASK_ROWS} more."))
    return out


# -- plots ----------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _scores_plot(metrics: list[dict[str, EnvMetrics]], labels: list[str], envs: list[str]) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(envs) * max(1, len(labels)) ** 0.5), 3.2))
    width = 0.8 / len(labels)
    for i, (label, m) in enumerate(zip(labels, metrics)):
        est = [m[e].accuracy if e in m else None for e in envs]
        xs = [j + (i - (len(labels) - 1) / 2) * width for j in range(len(envs))]
        values = [100 * e.value if e and e.tasks else 0.0 for e in est]
        errors = [[100 * (e.value - e.low) if e and e.tasks else 0.0 for e in est],
                  [100 * (e.high - e.value) if e and e.tasks else 0.0 for e in est]]
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=label)
    ax.set_xticks(range(len(envs)), envs)
    ax.set_ylabel("accuracy %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    return _png(fig)


def _length_plot(runs: list[Run], labels: list[str], envs: list[str]) -> bytes:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(envs), figsize=(3.2 * len(envs), 2.8), squeeze=False)
    by_env = [run.by_env() for run in runs]
    for ax, env in zip(axes[0], envs):
        produced = [[r for r in records.get(env, []) if r["output"] is not None] for records in by_env]
        in_tokens = all(r["completion_tokens"] is not None for rs in produced for r in rs)
        values = [[r["completion_tokens"] if in_tokens else len(r["output"]) for r in rs] for rs in produced]
        if any(values):
            bins = np.histogram_bin_edges([v for vs in values for v in vs], bins=30)  # shared, so runs compare
            for vs, label in zip(values, labels):
                ax.hist(vs, bins=bins, alpha=0.55, label=label)
        ax.set_title(env, fontsize=9)
        ax.set_xlabel("output tokens" if in_tokens else "output characters", fontsize=8)
    axes[0][0].set_ylabel("samples")
    axes[0][-1].legend(fontsize=7)
    return _png(fig)


def _breakdown_plot(per_run: list[dict[str, Rate]], labels: list[str], values: list[str], key: str) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 0.8 + 0.22 * len(values) * len(labels)))
    height = 0.8 / len(labels)
    for i, (label, rates) in enumerate(zip(labels, per_run)):
        ys = [j + i * height for j in range(len(values))]
        ax.barh(ys, [100 * rates[v].rate if v in rates and rates[v].total else 0.0 for v in values], height,
                label=label)
    ax.set_yticks([j + height * (len(labels) - 1) / 2 for j in range(len(values))], values, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"% by {key}")
    ax.legend(fontsize=7)
    return _png(fig)


# -- rendering ------------------------------------------------------------------------------------------


def to_markdown(blocks: list[Block], plots_dir: Path) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Table):
            cells = [block.headers, *block.rows]
            out.append("\n".join(["| " + " | ".join(map(_md_cell, cells[0])) + " |",
                                  "|" + "---|" * len(block.headers),
                                  *("| " + " | ".join(map(_md_cell, row)) + " |" for row in cells[1:])]))
        else:
            (plots_dir / block.name).write_bytes(block.png)
            out.append(f"![{block.caption}]({plots_dir.name}/{block.name})")
    return "\n\n".join(out) + "\n"


def to_text(table: Table) -> str:
    """A table as aligned plain text, for the terminal."""
    cells = [table.headers, *table.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def to_html(blocks: list[Block], *, title: str) -> str:
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            body.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            data = base64.b64encode(block.png).decode()
            body.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
             "margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;"
             "vertical-align:top}th{background:#f3f3f3}figure{margin:1em 0}figcaption{font-size:12px;color:#555}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# -- formatting -----------------------------------------------------------------------------------------


def _errors(m: EnvMetrics) -> str:
    parts = [f"{kind} {count}" for kind, count in m.errors.items() if count]
    harness = sum(m.errors[k] for k in HARNESS_ERRORS)
    return (", ".join(parts) + (f" ({harness} unscored)" if harness else "")) if parts else "0"


def _rate(rate: Rate | None) -> str:
    if rate is None or not rate.total:
        return "–"
    return f"{rate.passed}/{rate.total} ({100 * rate.rate:.1f} %)"


def _delta(e: Estimate) -> str:
    if not e.tasks:
        return "–"
    return f"{100 * e.value:+.1f} [{100 * e.low:+.1f}, {100 * e.high:+.1f}]"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
