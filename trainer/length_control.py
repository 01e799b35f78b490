"""The `</think>` length-control stage (Hermes 4): teach a reasoning model to close its reasoning at a budget.

For each prompt the current policy writes a reasoning trace of at most `budget` tokens (its turn is opened
with `<think>` so that every trace is one). A trace still inside its reasoning at the budget overran: it is
cut there, `</think>` is inserted, and the same policy writes the answer from that point. The sample is the
whole turn with labels on the inserted `</think>` and the end-of-turn token that closes the answer only, so
the model learns where to stop thinking, not the unchecked answer. A trace that closed its reasoning within
the budget teaches nothing here and is skipped; an answer that does not finish within `answer_tokens` has no
end-of-turn token to train and is dropped.

Any Policy of the rollout package writes both parts: a chat whose last message is the assistant's asks the
policy to continue that message (SGLangPolicy, and so the embedded policy server, render it with the chat
template's `continue_final_message`). The samples are written pre-tokenized (input_ids, labels, and the
chat for reading) to one Parquet file that `lachesis train` reads like any other data path.
"""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from environments.config import load_toml
from environments.types import Message
from rollout.policies import Policy, Sampling, load_policy
from rollout.shards import read_messages

from .config import Section
from .data import Sample, TemplateError, assistant_spans, parquet_files, sample_row, template_messages
from .packing import IGNORE

OPEN, CLOSE = "<think>\n", "</think>"


class LengthControlConfig(Section):
    prompts: list[Path] = Field(min_length=1)  # rollout run dirs or Parquet files; each chat's prompt is used
    out: Path  # the Parquet file written
    policy: dict[str, Any] = Field(default_factory=lambda: {"kind": "embedded"})  # as in a rollout config
    tokenizer: Path | None = None  # the policy model's tokenizer (default: the embedded policy's model)
    budget: int = Field(ge=1)  # reasoning tokens after which </think> is forced
    answer_tokens: int = Field(default=512, ge=1)  # room for the answer after </think>
    n: int = Field(default=1, ge=1)  # traces per prompt
    max_prompts: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    concurrency: int = Field(default=8, ge=1)  # prompts in flight

    @classmethod
    def load(cls, path: str | Path) -> LengthControlConfig:
        return load_toml(cls, path)


@dataclass
class LengthControlStats:
    prompts: int = 0
    traces: int = 0
    within_budget: int = 0  # closed their reasoning (or ended) before the budget: skipped
    overran: int = 0
    unfinished_answers: int = 0  # the answer hit answer_tokens: dropped
    samples: int = 0

    def summary(self) -> str:
        return (f"{self.prompts} prompts, {self.traces} traces: {self.overran} overran the budget, "
                f"{self.within_budget} finished within it (skipped); {self.unfinished_answers} answers unfinished "
                f"(dropped); {self.samples} samples")


def length_control_sample(tokenizer: Any, prompt: list[Message], reasoning: str, answer: str) -> tuple[list[Message], Sample]:
    """The chat (prompt + the cut turn) and its tokens, trained on the inserted </think> and the final
    end-of-turn token only."""
    turn = f"{OPEN}{reasoning}\n{CLOSE}\n{answer}"
    chat = [*prompt, Message(role="assistant", content=turn)]
    text, spans = assistant_spans(tokenizer, template_messages(chat, tokenizer.chat_template or ""))
    start, end = spans[-1]
    close_at = text.find(f"{reasoning}\n{CLOSE}", start) + len(reasoning) + 1
    if close_at <= start or text[close_at:close_at + len(CLOSE)] != CLOSE:
        raise TemplateError("the chat template does not keep the assistant's <think> block in the text")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int32)
    starts = np.asarray([s for s, _ in enc["offset_mapping"]], dtype=np.int64)
    trained = (starts >= close_at) & (starts < close_at + len(CLOSE))
    eos = int(np.flatnonzero(starts < end)[-1])  # the turn's last token: the template's end-of-turn token
    if ids[eos] not in set(tokenizer.all_special_ids):
        raise TemplateError(f"the assistant turn does not end with a special end-of-turn token: "
                            f"{tokenizer.decode(ids[eos:eos + 1])!r}")
    trained[eos] = True
    return chat, Sample(ids, np.where(trained, ids, IGNORE).astype(np.int32))


async def build_samples(prompts: list[list[Message]], policy: Policy, tokenizer: Any, *, budget: int,
                        answer_tokens: int, n: int = 1, temperature: float = 0.8, top_p: float = 0.95,
                        concurrency: int = 8) -> tuple[list[dict[str, Any]], LengthControlStats]:
    """Parquet rows of length-control samples for the prompts, written by `policy`."""
    stats = LengthControlStats(prompts=len(prompts))
    gate = asyncio.Semaphore(concurrency)

    async def answer(prompt: list[Message], reasoning: str) -> dict[str, Any] | None:
        cut = Message(role="assistant", content=f"{OPEN}{reasoning}\n{CLOSE}\n")
        [done] = await policy.generate([*prompt, cut], None, Sampling(
            temperature=temperature, top_p=top_p, max_tokens=answer_tokens), 1)
        if done.finish_reason != "stop":
            stats.unfinished_answers += 1
            return None
        chat, sample = length_control_sample(tokenizer, prompt, reasoning, done.text.strip())
        stats.samples += 1
        return sample_row(chat, sample, budget=budget)

    async def one(prompt: list[Message]) -> list[dict[str, Any]]:
        async with gate:
            traces = await policy.generate([*prompt, Message(role="assistant", content=OPEN)], None,
                                           Sampling(temperature=temperature, top_p=top_p, max_tokens=budget), n)
            stats.traces += len(traces)
            overran = [t.text.rstrip() for t in traces if t.finish_reason == "length" and CLOSE not in t.text]
            stats.overran += len(overran)
            stats.within_budget += len(traces) - len(overran)
            rows = await asyncio.gather(*(answer(prompt, reasoning) for reasoning in overran))
            return [row for row in rows if row is not None]

    results = await asyncio.gather(*(one(p) for p in prompts))
    return [row for rows in results for row in rows], stats


def read_prompts(paths: list[Path], limit: int | None = None) -> list[list[Message]]:
    """Distinct prompts of the chats in the files: each chat up to (without) its last assistant turn."""
    seen, prompts = set(), []
    for f in parquet_files(paths):
        for row in pq.read_table(f, columns=["messages"]).to_pylist():
            chat = read_messages(row)
            while chat and chat[-1].role == "assistant":
                chat = chat[:-1]
            key = json.dumps([m.model_dump(mode="json") for m in chat], sort_keys=True)
            if chat and key not in seen:
                seen.add(key)
                prompts.append(chat)
    return prompts[:limit]


@asynccontextmanager
async def open_policy(config: dict[str, Any]):
    """The configured policy; "embedded" starts the embedded policy server for the duration (as rollouts do)."""
    config = dict(config)
    if config.get("kind") != "embedded":
        policy = load_policy(config)
        try:
            yield policy
        finally:
            await policy.close()
        return
    from env_server.process import lachesis_process
    from rollout.policies.sglang import SGLangPolicy

    model = config.pop("model", None)
    async with lachesis_process("policy", "serve", "--port", "0", *(["--model", str(model)] if model else [])) as url:
        policy = SGLangPolicy([url], **{k: v for k, v in config.items() if k != "kind"})
        try:
            yield policy
        finally:
            await policy.close()


def tokenizer_path(config: LengthControlConfig) -> Path:
    if config.tokenizer is not None:
        return config.tokenizer.expanduser()
    if config.policy.get("kind") == "embedded":
        from rollout.embedded import prepare_default_model

        return Path(config.policy["model"]).expanduser() if config.policy.get("model") else prepare_default_model()
    raise ValueError("tokenizer: required unless policy.kind is 'embedded' (the policy model's tokenizer, to "
                     "label the tokens it wrote)")


async def run_length_control(config: LengthControlConfig) -> LengthControlStats:
    """Build the dataset described by the config and write it to config.out (atomically)."""
    from .train import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_path(config))
    prompts = read_prompts(config.prompts, config.max_prompts)
    if not prompts:
        raise ValueError("prompts: the files hold no chat")
    async with open_policy(config.policy) as policy:
        rows, stats = await build_samples(prompts, policy, tokenizer, budget=config.budget,
                                          answer_tokens=config.answer_tokens, n=config.n,
                                          temperature=config.temperature, top_p=config.top_p,
                                          concurrency=config.concurrency)
    out = config.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows) if rows else _empty_table(), tmp)
    os.replace(tmp, out)
    return stats


def _empty_table() -> pa.Table:
    return pa.table({"input_ids": pa.array([], pa.list_(pa.int32())), "labels": pa.array([], pa.list_(pa.int32()))})
