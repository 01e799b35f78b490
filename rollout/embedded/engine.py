"""A batching generation engine for a Hugging Face causal LM on the CPU.

One thread owns the model and runs the loop: admit the waiting requests (their prompts are prefilled together,
left-padded, and each prompt's KV cache is copied for its n samples), then advance every running row by one
token with a single forward pass over the batch. Rows finish independently and leave the batch; requests that
arrive meanwhile join at the next step (continuous batching). Callers in an asyncio event loop await
`Engine.generate`, which never blocks the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .kv import BatchKV
from .sampling import SamplingParams, row_generator, sample_next

log = logging.getLogger("lachesis.policy.engine")


class PromptError(ValueError):
    """The prompt cannot be served: empty, too long for the model, or holding unknown token ids."""


@dataclass(frozen=True)
class Sample:
    """One finished generation."""

    token_ids: list[int]  # every sampled token, the one that ended generation included
    logprobs: list[float]  # of each sampled token (see sampling.sample_next for the distribution)
    text: str  # decoded without special tokens, cut before a matched stop token or stop string
    finish_reason: str  # "stop" | "length"
    matched: int | str | None  # the stop token id or stop string that ended it ("stop" only)
    prompt_tokens: int


@dataclass
class EngineStats:
    requests: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    prefill_batches: int = 0
    decode_steps: int = 0
    peak_batch_rows: int = 0  # the most rows advanced together by one forward pass


Done = Callable[[list[Sample] | BaseException], None]


@dataclass
class Request:
    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int  # params.max_new_tokens, cut to the context the prompt leaves
    done: Done
    samples: list[Sample | None] = field(default_factory=list)
    answered: bool = False

    def answer(self, result: list[Sample] | BaseException) -> None:
        """Call `done` once, on the engine thread (or on close)."""
        if not self.answered:
            self.answered = True
            self.done(result)


@dataclass
class Row:
    """One sample being generated."""

    request: Request
    index: int  # which of the request's n samples
    generator: torch.Generator
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: tuple[str, int | str | None] | None = None
    text_end: int | None = None  # where a matched stop string starts in the decoded text
    searched: int = 0  # characters of decoded text already searched for stop strings

    def append(self, token: int, logprob: float, eos_ids: set[int], tokenizer) -> None:
        self.token_ids.append(token)
        self.logprobs.append(logprob)
        p = self.request.params
        if token in p.stop_token_ids or (token in eos_ids and not p.ignore_eos):
            self.finish = ("stop", token)
        elif p.stop and (hit := self._find_stop(tokenizer)):
            self.text_end, self.finish = hit[0], ("stop", hit[1])
        elif len(self.token_ids) >= self.request.max_new_tokens:
            self.finish = ("length", None)

    def _find_stop(self, tokenizer) -> tuple[int, str] | None:
        # A stop string not found before must end in the newly decoded characters.
        text = tokenizer.decode(self.token_ids, skip_special_tokens=True)
        hits = [(i, s) for s in self.request.params.stop if (i := text.find(s, max(0, self.searched - len(s) + 1))) >= 0]
        self.searched = len(text)
        return min(hits) if hits else None

    def result(self, tokenizer) -> Sample:
        reason, matched = self.finish
        kept = self.token_ids[:-1] if isinstance(matched, int) else self.token_ids
        text = tokenizer.decode(kept, skip_special_tokens=True)[: self.text_end]
        return Sample(list(self.token_ids), list(self.logprobs), text, reason, matched, len(self.request.prompt_ids))


class Engine:
    def __init__(self, model, tokenizer, *, max_batch_rows: int = 64, max_prefill_tokens: int = 4096,
                 threads: int | None = None):
        """`tokenizer` is used on the engine thread only (decoding): give the server its own instance, as a
        fast tokenizer shared between threads can fail with "Already borrowed"."""
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_batch_rows, self.max_prefill_tokens = max_batch_rows, max_prefill_tokens
        if threads:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        config = model.config
        self.context_length = getattr(config, "max_position_embeddings", None) or tokenizer.model_max_length
        self.vocab_size = model.get_input_embeddings().num_embeddings
        eos = model.generation_config.eos_token_id
        self.eos_ids = {*(eos if isinstance(eos, list) else [eos] if eos is not None else []),
                        *([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])}
        self.pad_id = next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
        self.stats = EngineStats()
        self._waiting: deque[Request] = deque()
        self._wakeup = threading.Condition()
        self._closing = False
        self._rows: list[Row] = []
        self._kv: BatchKV | None = None
        self._thread = threading.Thread(target=self._loop, name="lachesis-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> Engine:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        return cls(model, AutoTokenizer.from_pretrained(path), **kwargs)

    # -- the caller's side (any thread) ------------------------------------------------------------------
    def check_prompt(self, prompt_ids: list[int]) -> None:
        if not prompt_ids:
            raise PromptError("the prompt is empty")
        if len(prompt_ids) >= self.context_length:
            raise PromptError(f"the prompt has {len(prompt_ids)} tokens; the model's context is {self.context_length}")
        if not all(0 <= t < self.vocab_size for t in prompt_ids):
            raise PromptError(f"token ids must lie in [0, {self.vocab_size})")

    def submit(self, prompt_ids: list[int], params: SamplingParams, done: Done) -> None:
        """Queue a request; `done` later receives its n samples (or the exception that failed it)."""
        self.check_prompt(prompt_ids)
        max_new = min(params.max_new_tokens, self.context_length - len(prompt_ids))
        with self._wakeup:
            if self._closing:
                raise RuntimeError("the engine is shutting down")
            self._waiting.append(Request(list(prompt_ids), params, max_new, done, [None] * params.n))
            self._wakeup.notify()

    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> list[Sample]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Sample]] = loop.create_future()
        self.submit(prompt_ids, params, lambda result: loop.call_soon_threadsafe(_settle, future, result))
        return await future

    def live_stats(self) -> dict[str, int]:
        return {**asdict(self.stats), "running_rows": len(self._rows), "waiting_requests": len(self._waiting)}

    def close(self) -> None:
        """Stop the loop; requests still queued or running fail with an error."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        self._thread.join()
        error = RuntimeError("the engine shut down before this request finished")
        for request in [*self._running_requests(), *self._waiting]:
            request.answer(error)

    # -- the engine thread -------------------------------------------------------------------------------
    def _loop(self) -> None:
        with torch.inference_mode():
            while (admitted := self._next_work()) is not None:
                try:
                    if admitted:
                        self._prefill(admitted)
                        self._retire()
                    if self._rows:
                        self._decode()
                        self._retire()
                except Exception as exc:  # a model failure fails the requests in the batch, not the engine
                    log.exception("generation failed; failing %d rows", len(self._rows))
                    for request in [*admitted, *self._running_requests()]:
                        request.answer(exc)
                    self._rows, self._kv = [], None

    def _running_requests(self) -> list[Request]:
        return list({id(row.request): row.request for row in self._rows}.values())

    def _next_work(self) -> list[Request] | None:
        """Wait for something to do; take the waiting requests that fit the batch. None: shut down."""
        with self._wakeup:
            while not (self._closing or self._waiting or self._rows):
                self._wakeup.wait()
            if self._closing:
                return None
            admitted, rows, tokens = [], len(self._rows), 0
            while self._waiting:
                request = self._waiting[0]
                fits = (rows + request.params.n <= self.max_batch_rows
                        and tokens + len(request.prompt_ids) <= self.max_prefill_tokens)
                if not fits and (admitted or self._rows):  # an oversized request runs alone
                    break
                admitted.append(self._waiting.popleft())
                rows += request.params.n
                tokens += len(request.prompt_ids)
            return admitted

    def _prefill(self, requests: list[Request]) -> None:
        width = max(len(r.prompt_ids) for r in requests)
        ids = torch.tensor([[self.pad_id] * (width - len(r.prompt_ids)) + r.prompt_ids for r in requests])
        mask = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in requests])
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0),
                         past_key_values=BatchKV.new_cache(), use_cache=True, logits_to_keep=1)
        kv = BatchKV(out.past_key_values, mask)
        repeats = torch.tensor([r.params.n for r in requests])
        kv.repeat_rows(repeats)
        rows = [Row(r, j, row_generator(r.params.seed, j)) for r in requests for j in range(r.params.n)]
        if self._kv is None:
            self._kv = kv
        else:
            self._kv.append(kv)
        self._rows.extend(rows)
        self.stats.prefill_batches += 1
        self.stats.requests += len(requests)
        self.stats.prompt_tokens += sum(len(r.prompt_ids) for r in requests)
        log.debug("admitted %d requests (%d rows); %d rows running", len(requests), len(rows), len(self._rows))
        self._advance(rows, out.logits[:, -1].repeat_interleave(repeats, dim=0))

    def _decode(self) -> None:
        tokens = torch.tensor([[row.token_ids[-1]] for row in self._rows])
        positions = self._kv.next_positions()
        self._kv.add_column()
        out = self.model(input_ids=tokens, attention_mask=self._kv.mask, position_ids=positions,
                         past_key_values=self._kv.cache, use_cache=True)
        self.stats.decode_steps += 1
        self.stats.peak_batch_rows = max(self.stats.peak_batch_rows, len(self._rows))
        self._advance(self._rows, out.logits[:, -1])

    def _advance(self, rows: list[Row], logits: torch.Tensor) -> None:
        tokens, logprobs = sample_next(logits, [r.request.params for r in rows], [r.generator for r in rows])
        for row, token, logprob in zip(rows, tokens, logprobs):
            row.append(token, logprob, self.eos_ids, self.tokenizer)
        self.stats.generated_tokens += len(rows)

    def _retire(self) -> None:
        """Take finished rows out of the batch and answer the requests whose samples are all done."""
        if all(row.finish is None for row in self._rows):
            return
        running = [i for i, row in enumerate(self._rows) if row.finish is None]
        for row in self._rows:
            if row.finish is not None:
                request = row.request
                request.samples[row.index] = row.result(self.tokenizer)
                if all(s is not None for s in request.samples):
                    self.stats.samples += len(request.samples)
                    request.answer(request.samples)
        self._rows = [self._rows[i] for i in running]
        if running:
            self._kv.keep_rows(running)
        else:
            self._kv = None


def _settle(future: asyncio.Future, result: list[Sample] | BaseException) -> None:
    if future.done():  # the caller went away
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
