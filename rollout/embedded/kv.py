"""The running batch's KV cache: left-padded, with rows that join and leave between decode steps.

Column j of every layer holds each row's j-th cached position; rows shorter than the batch are padded on the
left and masked out. Rotary positions are baked into the cached keys, so padding columns can be added or
dropped freely: a row's next position is simply its number of real (unmasked) tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, DynamicLayer

GROW_BY = 256  # spare columns added at a time: one copy of the cache every GROW_BY steps, not every step


class GrowingLayer(DynamicLayer):
    """A cache layer that writes each step into spare capacity; transformers' DynamicLayer concatenates,
    copying the whole layer on every step (~20 % of a decode step at 500 cached tokens here)."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.replace(key_states[..., :0, :], value_states[..., :0, :])
        start = self.keys.shape[-2]
        end = start + key_states.shape[-2]
        if end > self._key_buffer.shape[-2]:
            self._key_buffer = _with_capacity(self.keys, end + GROW_BY)
            self._value_buffer = _with_capacity(self.values, end + GROW_BY)
        self._key_buffer[..., start:end, :] = key_states
        self._value_buffer[..., start:end, :] = value_states
        self.keys, self.values = self._key_buffer[..., :end, :], self._value_buffer[..., :end, :]
        return self.keys, self.values

    def replace(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys = self._key_buffer = keys
        self.values = self._value_buffer = values


def _with_capacity(t: torch.Tensor, columns: int) -> torch.Tensor:
    out = t.new_empty(*t.shape[:-2], columns, t.shape[-1])
    out[..., : t.shape[-2], :] = t
    return out


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    pad = [0, 0] * (t.dim() - 1 - dim % t.dim()) + [missing, 0]
    return F.pad(t, pad)


class BatchKV:
    """A cache (one GrowingLayer per model layer) and its attention mask ([rows, columns], 1 = real token)."""

    def __init__(self, cache: Cache, mask: torch.Tensor):
        self.cache, self.mask = cache, mask

    @staticmethod
    def new_cache() -> Cache:
        return Cache(layer_class_to_replicate=GrowingLayer)

    def next_positions(self) -> torch.Tensor:
        return self.mask.sum(1, keepdim=True)

    def add_column(self) -> None:
        """Unmask the column the next decode step writes."""
        self.mask = F.pad(self.mask, (0, 1), value=1)

    def repeat_rows(self, repeats: torch.Tensor) -> None:
        """Row i becomes repeats[i] identical rows (the n samples of one prompt share its prefill)."""
        self._rebuild(lambda t: t.repeat_interleave(repeats, dim=0))

    def keep_rows(self, indices: list[int]) -> None:
        """Drop every other row, then the leading columns that are padding in all remaining rows."""
        index = torch.tensor(indices)
        self._rebuild(lambda t: t.index_select(0, index))
        first = int(self.mask.any(0).int().argmax())
        if first:
            for layer in self.cache.layers:
                layer.replace(layer.keys[..., first:, :], layer.values[..., first:, :])
            self.mask = self.mask[:, first:]

    def append(self, other: BatchKV) -> None:
        """Add `other`'s rows after ours, padding the shorter side on the left."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.replace(torch.cat([_left_pad(mine.keys, width, -2), _left_pad(theirs.keys, width, -2)]),
                         torch.cat([_left_pad(mine.values, width, -2), _left_pad(theirs.values, width, -2)]))
        self.mask = torch.cat([_left_pad(self.mask, width, 1), _left_pad(other.mask, width, 1)])

    def _rebuild(self, fn) -> None:
        """Apply a row operation (dim 0) to every layer and to the mask."""
        for layer in self.cache.layers:
            layer.replace(fn(layer.keys), fn(layer.values))
        self.mask = fn(self.mask)
