"""Rejection sampling over one group: keep up to k distinct accepted trajectories, optionally pair them with
rejected ones (preference data), and compute the GRPO group statistics.

Near-duplicates are found by Jaccard similarity of word 3-gram shingles: n is small (≤ a few dozen per
task), so the exact pairwise comparison is cheaper and clearer than MinHash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from environments.types import Strict, Trajectory


class SelectionConfig(Strict):
    keep: int = Field(default=2, ge=1)  # at most this many distinct accepted trajectories per task
    near_duplicate: float = Field(default=0.9, gt=0.0, le=1.0)  # Jaccard similarity at which two answers are one
    keep_rejected: bool = False  # also emit (accepted, rejected) preference pairs


@dataclass(frozen=True)
class Selection:
    kept: list[int]  # indices into the group's trajectories
    pairs: list[tuple[int, int]]  # (accepted, rejected) indices
    duplicates: int  # accepted trajectories dropped as (near-)duplicates


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def _answer_text(t: Trajectory) -> str:
    last = next((m for m in reversed(t.messages) if m.role == "assistant"), None)
    return "" if last is None else f"{last.reasoning or ''}\n{last.content}"


def select(group: list[Trajectory], config: SelectionConfig) -> Selection:
    accepted = [i for i, t in enumerate(group) if t.score is not None and t.score.accepted]
    rejected = [i for i, t in enumerate(group) if i not in set(accepted)]
    kept: list[int] = []
    seen: list[tuple[str, set]] = []
    duplicates = 0
    for i in accepted:
        text = _normalise(_answer_text(group[i]))
        shingles = _shingles(text)
        if any(text == t or len(shingles & s) / max(1, len(shingles | s)) >= config.near_duplicate for t, s in seen):
            duplicates += 1
            continue
        seen.append((text, shingles))
        if len(kept) < config.keep:
            kept.append(i)
    pairs = list(zip(kept, rejected)) if config.keep_rejected else []
    return Selection(kept, pairs, duplicates)


def group_advantages(rewards: list[float]) -> list[float]:
    """GRPO: each reward relative to the group's mean, scaled by its standard deviation (0 when all equal)."""
    r = np.asarray(rewards, dtype=np.float64)
    std = r.std()
    return [0.0] * len(rewards) if std == 0 else ((r - r.mean()) / std).tolist()
