"""First-Fit-Decreasing packing of tokenized samples into rows of `seq_len`, and the packed tensors of a row.

Samples are taken longest first; each goes into the first row (in the order rows were opened) that still has
room, or opens a new row. Equal lengths keep their input order, so the plan is deterministic. Samples of one
length are placed together with numpy: first fit puts them into the eligible rows in row order, as many as
fit in each, which is what placing them one by one would do, so 1M samples pack in seconds.

A packed row records, for every token, its document (sample) id and its position inside that document, so
attention can be restricted to the token's own document and rotary positions restart at 0 per document.
Padding at the end of a row is its own document with no training targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

IGNORE = -100  # label of a token that is not trained (torch's cross-entropy ignore_index)


def pack(lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    """Sample indices per row (First-Fit-Decreasing); every sample appears in exactly one row."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    sizes = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if sizes.size and sizes.min() < 1:
        bad = int(np.flatnonzero(sizes < 1)[0])
        raise ValueError(f"sample {bad} has {int(sizes[bad])} tokens: every sample needs at least one")
    if sizes.size and sizes.max() > seq_len:
        bad = int(np.flatnonzero(sizes > seq_len)[0])
        raise ValueError(f"sample {bad} has {int(sizes[bad])} tokens, more than seq_len={seq_len}: "
                         "drop or truncate it before packing")
    if not sizes.size:
        return []
    order = np.lexsort((np.arange(sizes.size), -sizes))  # longest first, ties in input order
    free = np.empty(sizes.size, dtype=np.int64)  # room left in each row opened so far (at most one per sample)
    rows = 0
    row_of = np.empty(sizes.size, dtype=np.int64)
    sorted_sizes = sizes[order]
    bounds = np.flatnonzero(np.diff(sorted_sizes)) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, sizes.size]):
        length, count = int(sorted_sizes[start]), int(stop - start)
        # rows with room, in the order they were opened, each taking as many as fit until none are left
        eligible = np.flatnonzero(free[:rows] >= length)
        fits = free[eligible] // length
        take = np.minimum(fits, np.maximum(count - (np.cumsum(fits) - fits), 0))
        used = take > 0
        eligible, take = eligible[used], take[used]
        free[eligible] -= take * length
        placed = int(take.sum())
        slots = np.empty(count, dtype=np.int64)
        slots[:placed] = np.repeat(eligible, take)
        if placed < count:  # then new rows, each filled with as many as fit
            per_row = seq_len // length
            opened = rows + np.arange(count - placed) // per_row
            slots[placed:] = opened
            new = int(opened[-1]) + 1 - rows
            free[rows:rows + new] = seq_len - np.bincount(opened - rows, minlength=new) * length
            rows += new
        row_of[order[start:stop]] = slots
    members = order[np.argsort(row_of[order], kind="stable")]  # within a row: placement order
    splits = np.cumsum(np.bincount(row_of, minlength=rows))[:-1]
    return [part.tolist() for part in np.split(members, splits)]


def efficiency(lengths: Sequence[int], rows: list[list[int]], seq_len: int) -> float:
    """Share of non-padding tokens in the packed rows."""
    return sum(lengths) / (len(rows) * seq_len) if rows else 1.0


@dataclass
class PackedBatch:
    """Rows of `seq_len` tokens, each with per-token document ids and positions (all [rows, seq_len])."""

    input_ids: torch.Tensor
    labels: torch.Tensor  # the next token's id where that token is trained, else IGNORE
    document_ids: torch.Tensor
    positions: torch.Tensor
    lengths: list[list[int]]  # per row, its samples' lengths (padding not included)

    @property
    def targets(self) -> int:
        return int((self.labels != IGNORE).sum())

    @property
    def useful_tokens(self) -> int:
        return sum(map(sum, self.lengths))

    def attention_pairs(self) -> int:
        """(query, key) pairs a causal document mask lets attention compute, padding's own block included."""
        seq_len = self.input_ids.shape[1]
        return sum(n * (n + 1) // 2 for row in self.lengths for n in [*row, seq_len - sum(row)])

    def to(self, device: torch.device | str) -> PackedBatch:
        moved = (t.to(device, non_blocking=True) for t in (self.input_ids, self.labels, self.document_ids, self.positions))
        return PackedBatch(*moved, lengths=self.lengths)


def collate(rows: list[list[tuple[np.ndarray, np.ndarray]]], seq_len: int, pad_id: int) -> PackedBatch:
    """Lay out rows of (input_ids, labels) samples; labels use the Hugging Face convention (label i is token
    i or IGNORE) and are shifted here, inside each document, so that position i predicts token i + 1."""
    n = len(rows)
    input_ids = np.full((n, seq_len), pad_id, dtype=np.int64)
    labels = np.full((n, seq_len), IGNORE, dtype=np.int64)
    document_ids = np.empty((n, seq_len), dtype=np.int64)
    positions = np.empty((n, seq_len), dtype=np.int64)
    for r, samples in enumerate(rows):
        at = 0
        for doc, (ids, lab) in enumerate(samples):
            end = at + len(ids)
            if end > seq_len:
                raise ValueError(f"row {r} holds {end} tokens, more than seq_len={seq_len}")
            input_ids[r, at:end] = ids
            labels[r, at:end - 1] = lab[1:]  # the last token of a document predicts nothing
            document_ids[r, at:end] = doc
            positions[r, at:end] = np.arange(len(ids))
            at = end
        document_ids[r, at:] = len(samples)  # padding: a document of its own, attending only to itself
        positions[r, at:] = np.arange(seq_len - at)
    return PackedBatch(*(torch.from_numpy(a) for a in (input_ids, labels, document_ids, positions)),
                       lengths=[[len(ids) for ids, _ in samples] for samples in rows])
