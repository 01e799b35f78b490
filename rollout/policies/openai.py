"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs): `/v1/chat/completions`."""

from __future__ import annotations

import json
from typing import Any

from environments.types import Completion, Message, ToolCall, ToolSpec, Usage

from .base import Sampling
from .endpoints import EndpointPool

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "abort": "abort"}


def openai_messages(chat: list[Message]) -> list[dict[str, Any]]:
    out = []
    for m in chat:
        msg: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.name:
            msg["name"] = m.name
        if m.tool_calls:
            msg["tool_calls"] = [{"id": c.id or f"call_{i}", "type": "function",
                                  "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                 for i, c in enumerate(m.tool_calls)]
        out.append(msg)
    return out


def openai_tools(tools: list[ToolSpec] | None) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    return [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools]


def _tool_calls(raw: list[dict[str, Any]] | None) -> list[ToolCall] | None:
    if not raw:
        return None
    calls = []
    for c in raw:
        fn = c.get("function", {})
        try:
            arguments = json.loads(fn.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = {"__unparsed__": fn.get("arguments")}  # kept, so the verifier can reject it with a reason
        calls.append(ToolCall(id=c.get("id", ""), name=fn.get("name") or "?", arguments=arguments if isinstance(arguments, dict) else {"__unparsed__": arguments}))
    return calls


class OpenAIPolicy:
    def __init__(self, urls: list[str] | str, model: str, *, api_key: str | None = None, name: str | None = None,
                 version: int = 0, max_concurrency: int = 64, logprobs: bool = True):
        self.pool = EndpointPool([urls] if isinstance(urls, str) else urls, max_concurrency=max_concurrency, api_key=api_key)
        self.model, self.logprobs = model, logprobs
        self.name, self.version = name or model, version

    async def generate(self, chat: list[Message], tools: list[ToolSpec] | None, sampling: Sampling, n: int) -> list[Completion]:
        body: dict[str, Any] = {
            "model": self.model, "messages": openai_messages(chat), "n": n, "temperature": sampling.temperature,
            "top_p": sampling.top_p, "max_tokens": sampling.max_tokens, "logprobs": self.logprobs}
        if sampling.stop:
            body["stop"] = sampling.stop
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if (spec := openai_tools(tools)) is not None:
            body["tools"] = spec
        if chat[-1].role == "assistant":  # continue that message (vLLM's and SGLang's extension), as SGLangPolicy does
            body["continue_final_message"], body["add_generation_prompt"] = True, False
        doc = await self.pool.post("/v1/chat/completions", body)
        usage = doc.get("usage") or {}
        completions = []
        for choice in doc["choices"]:
            message = choice.get("message") or {}
            content = (choice.get("logprobs") or {}).get("content") or []
            completions.append(Completion(
                text=message.get("content") or "",
                tool_calls=_tool_calls(message.get("tool_calls")),
                logprobs=[float(t["logprob"]) for t in content] or None,
                finish_reason=_FINISH.get(choice.get("finish_reason")),
                usage=Usage(prompt_tokens=usage.get("prompt_tokens", 0),
                            completion_tokens=usage.get("completion_tokens", 0) // max(1, n))))
        return completions

    async def close(self) -> None:
        await self.pool.close()
