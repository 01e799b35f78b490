"""Request bodies (validated) and response shapes of the policy server: SGLang's native `/generate` and the
OpenAI-compatible routes. The shapes follow SGLang's and OpenAI's documented ones, so their clients work
unchanged; fields those servers accept but this engine does not implement are refused by name (422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, ConfigDict, Field, ValidationInfo, field_validator

from environments.types import Strict

from .engine import Sample
from .sampling import SamplingParams

MAX_N = 64  # samples per request
MAX_PROMPTS = 256  # prompts per /generate batch
MAX_NEW_TOKENS = 1 << 16


class _Sampling(Strict):
    temperature: float = Field(default=1.0, ge=0.0, le=100.0)  # 0: greedy
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=-1, ge=-1)  # -1: the whole vocabulary
    n: int = Field(default=1, ge=1, le=MAX_N)
    stop: str | list[str] | None = Field(default=None, validate_default=True)  # becomes a list

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, v: int) -> int:
        if v == 0:
            raise ValueError("top_k must be -1 (no cut) or at least 1")
        return v

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else v or []
        if any(not s for s in stops):
            raise ValueError("stop strings must not be empty")
        return stops

    def engine_params(self, max_new_tokens: int, seed: int | None, stop_token_ids=(), ignore_eos=False) -> SamplingParams:
        return SamplingParams(max_new_tokens=max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                              top_k=self.top_k, stop=tuple(self.stop), stop_token_ids=tuple(stop_token_ids),
                              ignore_eos=ignore_eos, n=self.n, seed=seed)


# -- SGLang native ---------------------------------------------------------------------------------------
class NativeSampling(_Sampling):
    max_new_tokens: int = Field(default=128, ge=1, le=MAX_NEW_TOKENS)
    stop_token_ids: list[int] = Field(default_factory=list)
    ignore_eos: bool = False
    sampling_seed: int | None = Field(default=None, validation_alias=AliasChoices("sampling_seed", "seed"))

    def to_engine(self) -> SamplingParams:
        return self.engine_params(self.max_new_tokens, self.sampling_seed, self.stop_token_ids, self.ignore_eos)


Batch = Field(min_length=1, max_length=MAX_PROMPTS)


class GenerateRequest(Strict):
    text: str | Annotated[list[str], Batch] | None = None
    input_ids: list[int] | Annotated[list[list[int]], Batch] | None = Field(default=None, validate_default=True)
    sampling_params: NativeSampling = Field(default_factory=NativeSampling)
    return_logprob: bool = False
    return_text_in_logprobs: bool = False
    rid: str | None = None
    stream: Literal[False] = False  # streaming is not implemented

    @field_validator("input_ids")
    @classmethod
    def _one_prompt_kind(cls, v: list | None, info: ValidationInfo) -> list | None:
        if (v is None) == (info.data.get("text") is None):
            raise ValueError("give exactly one of text or input_ids")
        return v

    @property
    def batched(self) -> bool:
        """A list of prompts (answered with a list), not one prompt."""
        return isinstance(self.text, list) or (bool(self.input_ids) and isinstance(self.input_ids[0], list))

    @property
    def prompts(self) -> list[str] | list[list[int]]:
        given = self.text if self.text is not None else self.input_ids
        return given if self.batched else [given]


def native_output(sample: Sample, *, rid: str, latency: float, logprobs: bool, token_texts: list[str] | None) -> dict:
    """One output of `/generate`, shaped as SGLang's."""
    if sample.finish_reason == "length":
        finish: dict[str, Any] = {"type": "length", "length": len(sample.token_ids)}
    else:
        finish = {"type": "stop", "matched": sample.matched}
    meta: dict[str, Any] = {"id": rid, "finish_reason": finish, "prompt_tokens": sample.prompt_tokens,
                            "completion_tokens": len(sample.token_ids), "cached_tokens": 0, "e2e_latency": latency}
    if logprobs:
        texts = token_texts or [None] * len(sample.token_ids)
        meta["output_token_logprobs"] = [[lp, t, s] for lp, t, s in zip(sample.logprobs, sample.token_ids, texts)]
    return {"text": sample.text, "output_ids": sample.token_ids, "meta_info": meta}


# -- OpenAI-compatible -----------------------------------------------------------------------------------
class ChatMessage(Strict):
    model_config = ConfigDict(extra="allow")  # tool_calls, tool_call_id, …: passed on to the chat template
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None


class _OpenAISampling(_Sampling):
    model: str | None = None  # any name is accepted: this server serves one model
    seed: int | None = None
    stream: Literal[False] = False  # streaming is not implemented


class ChatRequest(_OpenAISampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS)  # None: up to the model's context
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=0)  # only the chosen tokens' logprobs are returned
    tools: list[dict[str, Any]] | None = None  # rendered by the chat template if it knows tools
    # vLLM's and SGLang's extensions: continue the final assistant message instead of opening a new turn
    # (prefilled answers, the length-control stage's forced `</think>`).
    add_generation_prompt: bool = True
    continue_final_message: bool = False

    @field_validator("continue_final_message")
    @classmethod
    def _continuation(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("add_generation_prompt", True):
            raise ValueError("needs add_generation_prompt = false")
        if value and (messages := info.data.get("messages")) and messages[-1].role != "assistant":
            raise ValueError("needs the last message to be the assistant's")
        return value

    def chat(self) -> list[dict[str, Any]]:
        return [{**m.model_dump(exclude_none=True), "content": m.content or ""} for m in self.messages]

    def to_engine(self, context_length: int) -> SamplingParams:
        return self.engine_params(self.max_completion_tokens or self.max_tokens or context_length, self.seed)


class CompletionRequest(_OpenAISampling):
    prompt: str | list[int]
    max_tokens: int = Field(default=16, ge=1, le=MAX_NEW_TOKENS)  # OpenAI's default
    logprobs: int | None = Field(default=None, ge=0, le=0)  # 0: the chosen tokens' logprobs, no alternatives

    def to_engine(self) -> SamplingParams:
        return self.engine_params(self.max_tokens, self.seed)


def usage(samples: list[Sample]) -> dict[str, int]:
    prompt, completion = samples[0].prompt_tokens, sum(len(s.token_ids) for s in samples)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chat_response(samples: list[Sample], *, rid: str, created: int, model: str,
                  token_texts: list[list[str]] | None) -> dict:
    choices = []
    for i, s in enumerate(samples):
        logprobs = None
        if token_texts is not None:
            logprobs = {"content": [{"token": text, "logprob": lp, "bytes": list(text.encode()), "top_logprobs": []}
                                    for text, lp in zip(token_texts[i], s.logprobs)]}
        choices.append({"index": i, "message": {"role": "assistant", "content": s.text}, "logprobs": logprobs,
                        "finish_reason": s.finish_reason})
    return {"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": created, "model": model,
            "choices": choices, "usage": usage(samples)}


def completion_response(samples: list[Sample], *, rid: str, created: int, model: str,
                        token_texts: list[list[str]] | None, prompt_chars: int) -> dict:
    choices = []
    for i, s in enumerate(samples):
        logprobs = None
        if token_texts is not None:
            offsets, at = [], prompt_chars
            for text in token_texts[i]:
                offsets.append(at)
                at += len(text)
            logprobs = {"tokens": token_texts[i], "token_logprobs": s.logprobs, "top_logprobs": None,
                        "text_offset": offsets}
        choices.append({"index": i, "text": s.text, "logprobs": logprobs, "finish_reason": s.finish_reason})
    return {"id": f"cmpl-{rid}", "object": "text_completion", "created": created, "model": model,
            "choices": choices, "usage": usage(samples)}
