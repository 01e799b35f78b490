"""Training samples: chats rendered with the model's chat template into token ids, with labels on the
assistant's tokens only.

A chat is rendered once; the assistant's part of each assistant turn is found by rendering the chat up to
that turn twice (with the generation prompt, then with the turn itself), so any template that renders a
prefix of the chat as a prefix of its text works. Its characters, up to and including the end-of-turn
token, are trained; the template's whitespace after that token is not. Tokens are mapped to characters
through the tokenizer's offsets, so the labels do not depend on how text splits into tokens. Reasoning is
kept inside `<think>…</think>` before the answer; tool calls go through the template when it renders them,
otherwise they are written in the Hermes `<tool_call>` format the tool-calling environment reads.

Labels follow the Hugging Face convention: `labels[i]` is `input_ids[i]` when token i is trained, else -100
(packing.collate shifts them so that position i predicts token i + 1).

Over-long samples (more than `seq_len` tokens) are dropped, or, with `overlong = "truncate"`, cut to their
first `seq_len` tokens; a sample left without a trained token is dropped either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from environments.tool_calls.hermes import Call, render_call
from environments.types import Message
from rollout.shards import message_row, read_messages

from .packing import IGNORE


class TemplateError(ValueError):
    """The chat template cannot be used for assistant-only labels."""


@dataclass
class Sample:
    input_ids: np.ndarray  # int32
    labels: np.ndarray  # int32: input_ids where trained, else IGNORE

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained(self) -> int:
        return int((self.labels != IGNORE).sum())


@dataclass
class DataStats:
    """What happened to the rows read: kept, truncated, or dropped and why."""

    rows: int = 0
    kept: int = 0
    truncated: int = 0
    dropped_overlong: int = 0
    dropped_untrained: int = 0  # no assistant token (or none left after truncation)
    tokens: int = 0
    trained_tokens: int = 0
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.rows} rows from {len(self.files)} file(s): {self.kept} samples kept ({self.truncated} truncated), "
                f"{self.dropped_overlong} dropped as over-long, {self.dropped_untrained} without trained tokens; "
                f"{self.tokens} tokens, {self.trained_tokens} trained")


def template_messages(messages: list[Message], template: str) -> list[dict[str, Any]]:
    """Messages as the dicts chat templates take; reasoning inside <think>…</think> before the content."""
    renders_calls = "tool_calls" in template
    out = []
    for m in messages:
        content = m.content
        if m.reasoning:
            content = f"<think>\n{m.reasoning}\n</think>\n\n{content}"
        d: dict[str, Any] = {"role": m.role, "content": content}
        if m.name:
            d["name"] = m.name
        if m.tool_calls:
            if renders_calls:
                d["tool_calls"] = [{"id": c.id or f"call_{i}", "type": "function",
                                    "function": {"name": c.name, "arguments": c.arguments}}
                                   for i, c in enumerate(m.tool_calls)]
            else:
                calls = "\n".join(render_call(Call(c.name, c.arguments)) for c in m.tool_calls)
                d["content"] = f"{content}\n{calls}" if content else calls
        out.append(d)
    return out


def assistant_spans(tokenizer: Any, chat: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered chat and the character span [start, end) of each assistant turn's trained part."""
    render = tokenizer.apply_chat_template
    text = render(chat, tokenize=False)
    spans = []
    for i, message in enumerate(chat):
        if message["role"] != "assistant":
            continue
        before = render(chat[:i], tokenize=False, add_generation_prompt=True) if i else ""
        upto = render(chat[: i + 1], tokenize=False)
        if not (upto.startswith(before) and text.startswith(upto)):
            raise TemplateError(f"the chat template does not render turn {i} as a prefix of the whole chat, so the "
                                f"assistant's tokens cannot be located: {upto[-200:]!r}")
        spans.append((len(before), len(upto.rstrip())))
    return text, spans


def tokenize_spans(tokenizer: Any, text: str, spans: Iterable[tuple[int, int]]) -> Sample:
    """Token ids of `text`, trained where a token starts inside one of the character spans."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int32)
    starts = np.asarray([s for s, _ in enc["offset_mapping"]], dtype=np.int64)
    trained = np.zeros(len(ids), dtype=bool)
    for a, b in spans:
        trained |= (starts >= a) & (starts < b)
    return Sample(ids, np.where(trained, ids, IGNORE).astype(np.int32))


def encode_chat(tokenizer: Any, messages: list[Message]) -> Sample:
    """A chat's token ids, labels on the assistant's tokens (end-of-turn token included) only."""
    text, spans = assistant_spans(tokenizer, template_messages(messages, tokenizer.chat_template or ""))
    return tokenize_spans(tokenizer, text, spans)


def fit(sample: Sample, seq_len: int, overlong: str) -> Sample | None:
    """The sample as trained under the over-long rule, or None when it is dropped."""
    if len(sample) > seq_len:
        if overlong != "truncate":
            return None
        sample = Sample(sample.input_ids[:seq_len], sample.labels[:seq_len])
    return sample if sample.trained else None


def parquet_files(paths: Iterable[Path]) -> list[Path]:
    """A rollout run directory stands for its accepted-*.parquet shards; a file for itself."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("accepted-*.parquet"))
            if not found:
                raise ValueError(f"data.paths: no accepted-*.parquet shard in {path}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"data.paths: {path} does not exist")
    return files


def read_samples(paths: Iterable[Path], tokenizer: Any, seq_len: int, overlong: str = "drop") -> tuple[list[Sample], DataStats]:
    """Every trainable sample of the files: chats (`messages`, as rollout writes them) are rendered and
    labelled here; rows that carry `input_ids` and `labels` (the length-control stage) are taken as they are."""
    stats = DataStats()
    samples = []
    for f in parquet_files(paths):
        stats.files.append(str(f))
        table = pq.read_table(f)
        if {"input_ids", "labels"} <= set(table.column_names):
            rows = _pretokenized(table, f)
        elif "messages" in table.column_names:
            rows = (encode_chat(tokenizer, read_messages(r)) for r in table.select(["messages"]).to_pylist())
        else:
            raise ValueError(f"data.paths: {f} has neither a messages column nor input_ids and labels")
        for sample in rows:
            stats.rows += 1
            kept = fit(sample, seq_len, overlong)
            if kept is None:
                if len(sample) > seq_len and overlong != "truncate":
                    stats.dropped_overlong += 1
                else:
                    stats.dropped_untrained += 1
                continue
            stats.truncated += len(kept) < len(sample)
            stats.kept += 1
            stats.tokens += len(kept)
            stats.trained_tokens += kept.trained
            samples.append(kept)
    return samples, stats


def _pretokenized(table: pa.Table, f: Path) -> Iterable[Sample]:
    """Samples from list columns input_ids and labels, read as numpy arrays (millions of tokens in a second)."""
    ids, labels = (table[name].combine_chunks() for name in ("input_ids", "labels"))
    if not np.array_equal(ids.offsets.to_numpy(), labels.offsets.to_numpy()):
        raise ValueError(f"{f}: every row's labels must be as long as its input_ids")
    bounds = ids.offsets.to_numpy()
    values = ids.values.to_numpy().astype(np.int32)
    targets = labels.values.to_numpy().astype(np.int32)
    if not np.all((targets == values) | (targets == IGNORE)):
        raise ValueError(f"{f}: labels must hold either the token id or {IGNORE}")
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield Sample(values[a:b], targets[a:b])


def sample_row(messages: list[Message], sample: Sample, **extra: Any) -> dict[str, Any]:
    """A Parquet row for a pre-tokenized sample (its chat kept for reading)."""
    return {"messages": [message_row(m) for m in messages],
            "input_ids": sample.input_ids.tolist(), "labels": sample.labels.tolist(), **extra}
