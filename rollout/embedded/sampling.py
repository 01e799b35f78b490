"""Choosing each row's next token: temperature, top-k, top-p, and a random stream of its own per row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

GREEDY_BELOW = 1e-5  # a temperature this small means greedy decoding (dividing by it would overflow)
CANDIDATES = 1024  # top-k/top-p look at this many most likely tokens first, at the whole vocabulary only if needed


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1: the whole vocabulary
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    n: int = 1
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


def row_generator(seed: int | None, sample_index: int) -> torch.Generator:
    """Sample j of a request seeded with s draws from a stream derived from (s, j), so the n samples of one
    request differ and the same request gives the same samples again; unseeded rows draw fresh entropy."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(np.random.SeedSequence([seed % 2**64, sample_index]).generate_state(1, np.uint64)[0]))
    return generator


def sample_next(logits: torch.Tensor, params: list[SamplingParams],
                generators: list[torch.Generator]) -> tuple[list[int], list[float]]:
    """The next token of each row of `logits` ([rows, vocab]) and its logprob.

    The logprob is taken under the temperature-scaled distribution, log_softmax(logits / T), before top-k/top-p
    truncation (the raw logits for greedy rows): what a trainer computes for the same token at the same
    temperature.
    """
    temperatures = torch.tensor([1.0 if p.greedy else p.temperature for p in params])
    logprobs = torch.log_softmax(logits.float() / temperatures[:, None], dim=-1)
    tokens = [int(row.argmax()) if p.greedy else _draw(row, p, g) for row, p, g in zip(logprobs, params, generators)]
    chosen = logprobs[torch.arange(len(tokens)), torch.tensor(tokens)]
    return tokens, chosen.tolist()


def _draw(logprobs: torch.Tensor, p: SamplingParams, generator: torch.Generator) -> int:
    """Gumbel-max: argmax(logprob + Gumbel noise) is a draw from softmax(logprobs). Unlike inverting a float32
    CDF, it barely depends on last-bit differences in the logits, so a seeded request draws the same tokens
    whichever batch it runs in (the CDF flipped between rare neighbouring tokens about once per 100 draws)."""
    scores, ids = logprobs, None
    vocab = logprobs.shape[0]
    k = p.top_k if 0 < p.top_k < vocab else vocab
    if k < vocab or p.top_p < 1.0:
        scores, ids = logprobs.topk(min(k, CANDIDATES))
        if len(scores) < k and scores.exp().sum() < p.top_p:  # the nucleus reaches past the candidates
            scores, ids = logprobs.topk(k)
        if p.top_p < 1.0:  # keep the most likely tokens while the mass before each is below top_p
            probs = scores.exp()
            scores = scores[probs.cumsum(0) - probs < p.top_p]
    gumbel = -torch.log(-torch.log(torch.rand(len(scores), generator=generator)))
    j = int((scores + gumbel).argmax())
    return j if ids is None else int(ids[j])
