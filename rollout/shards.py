"""Output of a rollout run: Parquet shards of kept trajectories (and preference pairs) plus a manifest.

A shard is written to a temporary name and renamed into place, then its tasks are appended to
`manifest.jsonl` (fsync'd). The manifest is the truth: on resume, its tasks are skipped and any shard it does
not name (a crash between rename and manifest) is deleted, so nothing is ever written twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from environments.types import Group, Message, Trajectory


def message_row(m: Message) -> dict[str, Any]:
    return {"role": m.role, "content": m.content, "reasoning": m.reasoning, "name": m.name,
            "tool_calls": None if m.tool_calls is None else json.dumps([c.model_dump(mode="json") for c in m.tool_calls])}


def trajectory_row(group: Group, index: int, task_key: str, advantage: float, sampling: dict[str, Any]) -> dict[str, Any]:
    t: Trajectory = group.trajectories[index]
    return {
        "id": f"{group.group_id}/{index}", "group_id": group.group_id, "task_key": task_key, "task_id": group.task_id,
        "env": group.env, "env_version": group.env_version, "policy": group.policy, "policy_version": group.policy_version,
        "messages": [message_row(m) for m in t.messages], "reward": t.reward, "advantage": advantage,
        "accepted": bool(t.score and t.score.accepted),
        "score": json.dumps(t.score.model_dump(mode="json")) if t.score else None,
        "finish_reason": t.finish_reason, "overlong": t.overlong,
        "token_ids": None if t.tokens is None else t.tokens.tolist(),
        "logprobs": None if t.logprobs is None else t.logprobs.tolist(),
        "sampling": json.dumps(sampling),
    }


def read_messages(row: dict[str, Any]) -> list[Message]:
    """The chat of a trajectory row, as Messages (what the trainer consumes)."""
    out = []
    for m in row["messages"]:
        calls = json.loads(m["tool_calls"]) if m.get("tool_calls") else None
        out.append(Message(role=m["role"], content=m["content"], reasoning=m.get("reasoning"), name=m.get("name"),
                           tool_calls=calls))
    return out


class ShardWriter:
    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.manifest = self.dir / "manifest.jsonl"
        self.done: set[str] = set()
        named: set[str] = set()
        if self.manifest.exists():
            for line in self.manifest.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.done.add(entry["task"])
                    named.update(s for s in entry["shards"])
        for path in self.dir.glob("*.parquet"):
            if path.name not in named:
                path.unlink()  # written but never recorded: its tasks will be redone
        for path in self.dir.glob("*.tmp"):
            path.unlink()
        self._next = 1 + max((int(p.stem.split("-")[-1]) for p in self.dir.glob("*.parquet")), default=0)

    def write(self, results: list[dict[str, Any]]) -> list[str]:
        """Write one shard per kind (accepted trajectories, preference pairs), record the tasks; the shard names."""
        import datasets  # heavy, needed only here

        datasets.disable_progress_bars()
        shards: list[str] = []
        for kind in ("accepted", "pairs"):
            rows = [row for r in results for row in r.get(kind, [])]
            if not rows:
                continue
            name = f"{kind}-{self._next:05d}.parquet"
            tmp = self.dir / f"{name}.tmp"
            datasets.Dataset.from_list(rows).to_parquet(str(tmp))
            os.replace(tmp, self.dir / name)
            shards.append(name)
        self._next += 1
        with open(self.manifest, "a") as f:
            for r in results:
                f.write(json.dumps({"task": r["key"], "shards": shards, "kept": len(r.get("accepted", []))}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done.update(r["key"] for r in results)
        return shards

    def accepted_files(self) -> list[Path]:
        return sorted(self.dir.glob("accepted-*.parquet"))
