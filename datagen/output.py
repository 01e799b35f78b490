"""What a run writes: Parquet shards of walks, calls and accepted samples, a manifest, and the export of
training conversations in the trajectory schema the trainer reads (rollout/shards.py).

Each worker writes its own shards (`walks-w000-00001.parquet`, …) to a temporary name, renames them into
place, then appends its finished walk ids to `manifest-w000.jsonl` (fsync'd). The manifests are the truth:
a restarted worker deletes its shards that no manifest names (a crash between rename and manifest), every
worker skips the walks any manifest names, so nothing is written twice, whatever the number of workers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from environments.types import Message
from rollout.shards import message_row

from .nodes import strip_retry_note
from .walk import Coverage, WalkResult

KINDS = ("walks", "calls", "samples")
_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
SCHEMAS = {
    "walks": pa.schema([
        ("walk_id", pa.string()), ("seed_id", pa.string()), ("seed_source", pa.string()), ("seed_license", pa.string()),
        ("replicate", pa.int32()), ("graph_fingerprint", pa.string()), ("path", pa.list_(pa.string())),
        ("status", pa.string()), ("error", pa.string()), ("final_state", pa.string()), ("calls", pa.int32())]),
    "calls": pa.schema([
        ("call_id", pa.string()), ("walk_id", pa.string()), ("node", pa.string()), ("node_version", pa.string()),
        ("role", pa.string()), ("model", pa.string()), ("attempt", pa.int32()), ("messages", _MESSAGES),
        ("sampling", pa.string()), ("response", pa.string()), ("parsed", pa.string()), ("accepted", pa.bool_()),
        ("judge_scores", pa.string()), ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()),
        ("latency_ms", pa.float64()), ("cache_hit", pa.bool_())]),
    "samples": pa.schema([
        ("walk_id", pa.string()), ("seed_id", pa.string()), ("license", pa.string()), ("path", pa.list_(pa.string())),
        ("transformation", pa.string()), ("persona", pa.string()), ("instruction_kind", pa.string()),
        ("instruction_mode", pa.string()), ("instruction", pa.string()), ("passage", pa.string()),
        ("system", pa.string()), ("prompt", pa.string()), ("answer", pa.string()),
        ("answer_style", pa.string()), ("refined", pa.bool_()), ("verdicts", pa.string()), ("model", pa.string()),
        ("call_ids", pa.list_(pa.string()))]),
}


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def walk_row(r: WalkResult) -> dict[str, Any]:
    return {"walk_id": r.walk_id, "seed_id": r.seed.seed_id, "seed_source": r.seed.source, "seed_license": r.seed.license,
            "replicate": r.replicate, "graph_fingerprint": r.graph_fingerprint, "path": r.path, "status": r.status,
            "error": r.error, "final_state": None if r.datapoint is None else r.datapoint.model_dump_json(),
            "calls": len(r.calls)}


def calls_table(results: list[WalkResult]) -> pa.Table:
    """Every call of the walks, built column by column (a dict per row costs twice as much); the columns are
    CallRecord's fields."""
    calls = [c for r in results for c in r.calls]
    columns = {name: [getattr(c, name) for c in calls] for name in SCHEMAS["calls"].names}
    for name in ("parsed", "judge_scores"):
        columns[name] = [_json(v) for v in columns[name]]
    return pa.table(columns, schema=SCHEMAS["calls"])


def sample_row(r: WalkResult) -> dict[str, Any] | None:
    """The accepted datapoint as a training pair: the final answer call's system and user turns, and the
    final answer (after refinement, if any)."""
    dp = r.datapoint
    if r.status != "accepted" or dp is None or dp.answer is None or dp.instruction is None:
        return None
    answer_call = next(c for c in reversed(r.calls) if c.role == "answer" and c.accepted is not False)
    system = next((m["content"] for m in answer_call.messages if m["role"] == "system"), None)
    user = next(m["content"] for m in answer_call.messages if m["role"] == "user")
    return {"walk_id": r.walk_id, "seed_id": dp.seed.seed_id, "license": dp.seed.license, "path": r.path,
            "transformation": dp.passage.form if dp.passage else None,
            "persona": dp.persona.name if dp.persona else None, "instruction_kind": dp.instruction.kind,
            "instruction_mode": dp.instruction.mode, "instruction": dp.instruction.text,
            "passage": dp.passage.text if dp.passage else None, "system": system, "prompt": strip_retry_note(user),
            "answer": dp.answer.text, "answer_style": dp.answer.style, "refined": dp.answer.refined,
            "verdicts": _json([v.model_dump() for v in dp.verdicts]), "model": answer_call.model,
            "call_ids": [c.call_id for c in r.calls if c.accepted is not False]}


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def manifests(out_dir: Path) -> list[dict[str, Any]]:
    entries = []
    for path in sorted(out_dir.glob("manifest-w*.jsonl")):
        entries += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return entries


class RunWriter:
    """One worker's shards and manifest."""

    def __init__(self, out_dir: str | Path, worker: int):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tag = f"w{worker:03d}"
        self.manifest = self.dir / f"manifest-{self.tag}.jsonl"
        mine = [e for e in manifests(self.dir) if e["worker"] == self.tag]
        named = {f"{kind}-{self.tag}-{e['shard']:05d}.parquet" for e in mine for kind in KINDS}
        for path in self.dir.glob(f"*-{self.tag}-*.parquet*"):
            if path.name not in named:
                path.unlink()  # written but never recorded: its walks are redone
        self._next = 1 + max((e["shard"] for e in mine), default=0)
        self.buffer: list[WalkResult] = []

    def add(self, result: WalkResult) -> None:
        self.buffer.append(result)

    def flush(self) -> None:
        if not self.buffer:
            return
        tables = {"walks": pa.Table.from_pylist([walk_row(r) for r in self.buffer], schema=SCHEMAS["walks"]),
                  "calls": calls_table(self.buffer),
                  "samples": pa.Table.from_pylist([row for r in self.buffer if (row := sample_row(r)) is not None],
                                                  schema=SCHEMAS["samples"])}
        for kind in KINDS:
            _write(tables[kind], self.dir / f"{kind}-{self.tag}-{self._next:05d}.parquet")
        with open(self.manifest, "a") as f:
            for r in self.buffer:
                f.write(json.dumps({"walk": r.walk_id, "status": r.status, "worker": self.tag, "shard": self._next}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._next += 1
        self.buffer = []


def done_walks(out_dir: str | Path) -> set[str]:
    return {e["walk"] for e in manifests(Path(out_dir))} if Path(out_dir).exists() else set()


def read_rows(out_dir: str | Path, kind: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """All rows of one table (walks, calls or samples) from the shards the manifests name."""
    out_dir = Path(out_dir)
    shards = sorted({(e["worker"], e["shard"]) for e in manifests(out_dir)})
    rows: list[dict[str, Any]] = []
    for worker, shard in shards:
        rows += pq.read_table(out_dir / f"{kind}-{worker}-{shard:05d}.parquet", columns=columns).to_pylist()
    return rows


def coverage(out_dir: str | Path) -> Coverage:
    """The coverage report of everything written to a run's directory (this run and those it resumed)."""
    judged: dict[str, list[tuple[str, bool | None]]] = {}
    for c in read_rows(out_dir, "calls", ["walk_id", "node", "role", "accepted"]):
        if c["role"] == "judge":
            judged.setdefault(c["walk_id"], []).append((c["node"], c["accepted"]))
    cov = Coverage()
    for w in read_rows(out_dir, "walks", ["walk_id", "path", "status"]):
        cov.count(w["path"], w["status"], judged.get(w["walk_id"], []))
    return cov


# -- export ---------------------------------------------------------------------------------------------
TRAJECTORY_SCHEMA = pa.schema([
    ("id", pa.string()), ("group_id", pa.string()), ("task_key", pa.string()), ("task_id", pa.string()),
    ("env", pa.string()), ("env_version", pa.int64()), ("policy", pa.string()), ("policy_version", pa.int64()),
    ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string()), ("reasoning", pa.string()),
                                     ("name", pa.string()), ("tool_calls", pa.string())]))),
    ("reward", pa.float64()), ("advantage", pa.float64()), ("accepted", pa.bool_()), ("score", pa.string()),
    ("finish_reason", pa.string()), ("overlong", pa.bool_()), ("token_ids", pa.list_(pa.int64())),
    ("logprobs", pa.list_(pa.float64())), ("sampling", pa.string())])


def _trajectory(key: str, walk_id: str, role: str, model: str, chat: list[Message], reward: float,
                details: dict[str, Any], sampling: str | None) -> dict[str, Any]:
    return {"id": key, "group_id": walk_id, "task_key": f"dataforge/{role}/{walk_id}", "task_id": walk_id,
            "env": "dataforge", "env_version": 0, "policy": model, "policy_version": 0,
            "messages": [message_row(m) for m in chat], "reward": reward, "advantage": 0.0, "accepted": True,
            "score": json.dumps({"reward": reward, "accepted": True, "details": {"task_role": role, **details}}),
            "finish_reason": "stop", "overlong": False, "token_ids": None, "logprobs": None, "sampling": sampling or "{}"}


def export(out_dir: str | Path, dest: str | Path, *, intermediate: bool = False,
           exclude_licenses: Iterable[str] = ()) -> int:
    """Render accepted samples as trajectory rows in `dest/trajectories.parquet` (reward 1: they passed);
    with `intermediate`, also the calls of accepted walks as tasks of their own, tagged by `task_role`
    (transform, instruct, answer, refine: the kept generations; judge: every verdict). Re-runnable: it
    never calls a model. Returns the row count."""
    excluded = set(exclude_licenses)
    samples = [s for s in read_rows(out_dir, "samples") if s["license"] not in excluded]
    rows = []
    for s in samples:
        chat = ([Message(role="system", content=s["system"])] if s["system"] else []) + [
            Message(role="user", content=s["prompt"]), Message(role="assistant", content=s["answer"])]
        rows.append(_trajectory(f"{s['walk_id']}/final", s["walk_id"], "final", s["model"], chat, 1.0,
                                {"license": s["license"], "seed_id": s["seed_id"], "path": s["path"],
                                 "verdicts": json.loads(s["verdicts"])}, None))
    if intermediate:
        wanted = {s["walk_id"]: s for s in samples}
        for c in read_rows(out_dir, "calls"):
            # generations that were kept, and every verdict (a rejection is as good a judging example)
            if c["walk_id"] not in wanted or (c["accepted"] is False and c["role"] != "judge"):
                continue
            chat = [Message(role=m["role"], content=m["content"]) for m in c["messages"]]
            chat.append(Message(role="assistant", content=c["response"]))
            s = wanted[c["walk_id"]]
            rows.append(_trajectory(c["call_id"], c["walk_id"], c["role"], c["model"], chat, 1.0,
                                    {"license": s["license"], "seed_id": s["seed_id"], "node": c["node"]}, c["sampling"]))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _write(pa.Table.from_pylist(rows, schema=TRAJECTORY_SCHEMA), dest / "trajectories.parquet")
    return len(rows)
