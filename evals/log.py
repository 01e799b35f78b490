"""A run's files: the manifest (what produced it), the per-sample log, and its columnar copy.

    RUN/manifest.json    policy, sampling, max tokens, reasoning mode, chat template, environments and versions
    RUN/samples.jsonl    one line per finished sample, appended and flushed as samples finish (the resume point)
    RUN/samples.parquet  the same records, written at the end of a large run, for analysis at scale
    RUN/summary.json     the metrics of the run (evals.metrics), per environment

A killed run leaves at worst one torn last line, which is cut off on resume. A sample is logged again when it
is retried on resume (after an engine error or a timeout); the last line for a key wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

MANIFEST, SAMPLES, PARQUET, SUMMARY = "manifest.json", "samples.jsonl", "samples.parquet", "summary.json"


class SampleRecord(BaseModel):
    """One sample: what was asked, what came back, how it was judged, and what it cost."""

    model_config = ConfigDict(extra="forbid")

    key: str  # env/task_id/sample
    env: str
    task_id: str
    sample: int = Field(ge=0)
    prompt: list[dict[str, JsonValue]]  # the chat as sent
    output: str | None  # the completion's text verbatim (a multi-turn episode's last); None when none came back
    transcript: list[dict[str, JsonValue]] | None = None  # a multi-turn episode's messages after the prompt
    reasoning: str | None = None  # the <think> block's content, when one parsed
    extracted: JsonValue = None  # the answer the verifier read out, when it reports one
    reward: float | None = None
    accepted: bool | None = None
    details: dict[str, JsonValue] = Field(default_factory=dict)  # the verifier's verdict details
    error: str | None = None
    error_kind: str | None = None  # evals.metrics.ERROR_KINDS
    retry: bool = False  # the verifier could not judge (Score.retry): the sample is made again on resume
    finish_reason: str | None = None
    overlong: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0  # generation, over every attempt
    verify_s: float = 0.0
    attempts: int = Field(default=1, ge=1)  # 1 + transient engine errors retried
    seed: int | None = None


class SampleLog:
    """Append-only JSONL log of a run's samples; reopening it loads what an earlier run finished."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / SAMPLES
        run_dir.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, SampleRecord] = {}
        if self.path.exists():
            self._load()
        self._file = open(self.path, "a", encoding="utf-8")

    def _load(self) -> None:
        raw = self.path.read_bytes()
        good = raw.rfind(b"\n") + 1  # a line without its newline was torn by a kill: drop it
        for number, line in enumerate(raw[:good].splitlines(), 1):
            try:
                record = SampleRecord.model_validate_json(line)
            except ValueError as exc:
                raise ValueError(f"{self.path}:{number}: not a sample record: {exc}") from None
            self.records[record.key] = record
        if good < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(good)

    def append(self, record: SampleRecord) -> None:
        self._file.write(record.model_dump_json() + "\n")
        self._file.flush()
        self.records[record.key] = record

    def close(self) -> None:
        self._file.close()


def write_parquet(path: Path, records: Iterable[SampleRecord]) -> None:
    """Columnar copy of the records; free-form fields (prompt, transcript, details, extracted) as JSON text."""
    import pyarrow as pa  # imported here: its start-up (pandas included) is paid only by runs that write Parquet
    import pyarrow.parquet as pq

    rows = []
    for r in records:
        row = r.model_dump()
        for name in ("prompt", "transcript", "details", "extracted"):
            row[name] = None if row[name] is None else json.dumps(row[name], ensure_ascii=False)
        rows.append(row)
    schema = pa.schema([
        ("key", pa.string()), ("env", pa.string()), ("task_id", pa.string()), ("sample", pa.int32()),
        ("prompt", pa.string()), ("output", pa.string()), ("transcript", pa.string()), ("reasoning", pa.string()),
        ("extracted", pa.string()),
        ("reward", pa.float64()), ("accepted", pa.bool_()), ("details", pa.string()), ("error", pa.string()),
        ("error_kind", pa.string()), ("retry", pa.bool_()), ("finish_reason", pa.string()), ("overlong", pa.bool_()),
        ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("latency_s", pa.float64()),
        ("verify_s", pa.float64()), ("attempts", pa.int32()), ("seed", pa.int64())])
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    tmp.replace(path)


def write_json(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)


class Run:
    """A finished (or interrupted) run read back from its directory."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        if not (self.dir / MANIFEST).exists():
            raise FileNotFoundError(f"{self.dir}: not an evaluation run (no {MANIFEST})")
        self.manifest: dict[str, Any] = json.loads((self.dir / MANIFEST).read_text())
        self.name: str = self.manifest.get("run_id") or self.dir.name
        log = self.dir / SAMPLES
        records = {}
        if log.exists():
            for line in log.read_bytes().splitlines():
                try:
                    record = SampleRecord.model_validate_json(line)
                except ValueError:  # a torn last line of a killed run
                    continue
                records[record.key] = record
        planned = self._planned()
        self.records = [r.model_dump() for r in records.values() if planned is None or r.key in planned]

    def _planned(self) -> set[str] | None:
        """The keys the run was asked for (a resumed run may have shrunk), or None when no plan is recorded."""
        envs, samples = self.manifest.get("envs"), self.manifest.get("samples")
        if not envs or samples is None or any("task_ids" not in e for e in envs):
            return None
        return {f"{e['name']}/{t}/{k}" for e in envs for t in e["task_ids"] for k in range(samples)}

    def by_env(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for r in self.records:
            out.setdefault(r["env"], []).append(r)
        return out
