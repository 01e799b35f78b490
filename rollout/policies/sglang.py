"""SGLang (and the embedded policy server, which serves the same routes).

With a tokenizer the chat template is applied here and the native `/generate` route is used: it takes
token ids and returns the sampled token ids with their logprobs, which training needs exactly. Without one
(a remote server whose tokenizer is not on this machine) the OpenAI-compatible chat route is used.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from environments.types import Completion, Message, ToolSpec, Usage

from .base import Sampling
from .endpoints import EndpointPool
from .openai import OpenAIPolicy, openai_messages, openai_tools

_FINISH = {"stop": "stop", "length": "length", "abort": "abort"}


class SGLangPolicy:
    def __init__(self, urls: list[str] | str, *, tokenizer: str | None = None, model: str = "default",
                 name: str | None = None, version: int = 0, max_concurrency: int = 64, api_key: str | None = None):
        urls = [urls] if isinstance(urls, str) else urls
        self.pool = EndpointPool(urls, max_concurrency=max_concurrency, api_key=api_key)
        self._chat_route = OpenAIPolicy(urls, model, api_key=api_key, max_concurrency=max_concurrency)
        self._tokenizer_path = tokenizer
        self._tokenizer: Any = None
        self._resolved = False
        self._resolving = asyncio.Lock()  # concurrent first requests wait for the answer instead of guessing
        self.name, self.version = name or model, version

    async def _get_tokenizer(self) -> Any:
        """The tokenizer named in the config, else the one the server reports if it is on this machine."""
        async with self._resolving:
            if not self._resolved:
                self._tokenizer = await self._find_tokenizer()
                self._resolved = True
        return self._tokenizer

    async def _find_tokenizer(self) -> Any:
        path = self._tokenizer_path
        if path is None:
            info = await self.pool.get("/get_model_info")
            path = info.get("tokenizer_path") or info.get("model_path")
            if self.name == "default" and info.get("model_path"):
                self.name = Path(info["model_path"]).name
        if not (path and Path(path).exists()):
            return None
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path)

    async def generate(self, chat: list[Message], tools: list[ToolSpec] | None, sampling: Sampling, n: int) -> list[Completion]:
        tokenizer = await self._get_tokenizer()
        if tokenizer is None:
            return await self._chat_route.generate(chat, tools, sampling, n)
        prefill = chat[-1].role == "assistant"  # a chat ending with the assistant's turn asks to continue it
        input_ids = tokenizer.apply_chat_template(openai_messages(chat), tools=openai_tools(tools), tokenize=True,
                                                  add_generation_prompt=not prefill, continue_final_message=prefill)
        if isinstance(input_ids, dict) or hasattr(input_ids, "keys"):  # some tokenizers return a BatchEncoding
            input_ids = input_ids["input_ids"]
        params: dict[str, Any] = {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
                                  "max_new_tokens": sampling.max_tokens, "n": n}
        if sampling.stop:
            params["stop"] = sampling.stop
        if sampling.seed is not None:
            params["sampling_seed"] = sampling.seed
        doc = await self.pool.post("/generate", {"input_ids": list(input_ids), "sampling_params": params,
                                                 "return_logprob": True})
        outputs = doc if isinstance(doc, list) else [doc]
        return [_completion(o, len(input_ids)) for o in outputs]

    async def close(self) -> None:
        await self.pool.close()
        await self._chat_route.close()


def _completion(out: dict[str, Any], prompt_tokens: int) -> Completion:
    meta = out.get("meta_info") or {}
    pairs = meta.get("output_token_logprobs") or []
    token_ids = out.get("output_ids") or [p[1] for p in pairs]
    finish = meta.get("finish_reason") or {}
    return Completion(
        text=out.get("text", ""),
        token_ids=token_ids or None,
        logprobs=[float(p[0]) for p in pairs] or None,
        finish_reason=_FINISH.get(finish.get("type") if isinstance(finish, dict) else finish),
        usage=Usage(prompt_tokens=meta.get("prompt_tokens", prompt_tokens),
                    completion_tokens=meta.get("completion_tokens", len(token_ids))))
