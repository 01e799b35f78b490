"""The endpoint pool behind SGLang/OpenAI policies: balancing, failover, and what is retried."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from environments import Message
from rollout.policies import EndpointPool, EngineError, RequestError, Sampling
from rollout.policies.openai import OpenAIPolicy


async def _server(handler) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def test_failover_from_dead_and_failing_endpoints():
    hits = {"bad": 0, "good": 0}

    async def bad(request):
        hits["bad"] += 1
        return web.json_response({"error": "overloaded"}, status=503)

    async def good(request):
        hits["good"] += 1
        return web.json_response({"ok": True})

    async def go():
        s_bad, s_good = await _server(bad), await _server(good)
        pool = EndpointPool(["http://127.0.0.1:9", str(s_bad.make_url("")), str(s_good.make_url(""))],
                            retries=3, backoff=0.001)
        try:
            results = [await pool.post("/x", {}) for _ in range(5)]
        finally:
            await pool.close()
            await s_bad.close()
            await s_good.close()
        return results, pool.errors

    results, errors = asyncio.run(go())
    assert results == [{"ok": True}] * 5 and hits["good"] == 5
    assert errors >= 2  # the dead and the failing endpoint were each tried, counted, and skipped


def test_client_errors_are_not_retried_and_exhaustion_raises_engine_error():
    calls = []

    async def refuse(request):
        calls.append(1)
        return web.json_response({"error": "bad field"}, status=400)

    async def go():
        server = await _server(refuse)
        pool = EndpointPool([str(server.make_url(""))], retries=3, backoff=0.001)
        try:
            with pytest.raises(RequestError, match="bad field"):
                await pool.post("/x", {})
        finally:
            await pool.close()
            await server.close()
        dead = EndpointPool(["http://127.0.0.1:9"], retries=2, backoff=0.001)
        with pytest.raises(EngineError, match="after 3 attempts"):
            await dead.post("/x", {})
        await dead.close()

    asyncio.run(go())
    assert len(calls) == 1


def test_rate_limits_and_request_timeouts_are_retried_after_the_asked_wait():
    """429 and 408 mean "not now", not "bad request": retried (after Retry-After), then an EngineError, which
    rollout and datagen defer instead of recording a failed sample."""
    statuses = [429, 408, 200]
    seen = []

    async def limited(request):
        seen.append(asyncio.get_running_loop().time())
        status = statuses[len(seen) - 1]
        return web.json_response({"ok": status == 200}, status=status, headers={"Retry-After": "0.2"})

    async def go():
        server = await _server(limited)
        pool = EndpointPool([str(server.make_url(""))], retries=3, backoff=0.001)
        always = EndpointPool([str(server.make_url(""))], retries=1, backoff=0.001)
        try:
            result = await pool.post("/x", {})
            statuses[:] = [429] * 5
            seen.clear()
            with pytest.raises(EngineError, match="answered 429"):
                await always.post("/x", {})
        finally:
            await pool.close()
            await always.close()
            await server.close()
        return result

    assert asyncio.run(go()) == {"ok": True}
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.19  # the asked wait, not the 1 ms backoff


def test_least_in_flight_balancing():
    seen: list[str] = []

    async def slow(request):
        seen.append(request.host)
        await asyncio.sleep(0.05)
        return web.json_response({})

    async def go():
        a, b = await _server(slow), await _server(slow)
        pool = EndpointPool([str(a.make_url("")), str(b.make_url(""))])
        try:
            await asyncio.gather(*(pool.post("/x", {}) for _ in range(10)))
        finally:
            await pool.close()
            await a.close()
            await b.close()

    asyncio.run(go())
    assert len(set(seen)) == 2 and abs(seen.count(seen[0]) - 5) <= 1


def test_openai_policy_parses_choices_logprobs_and_tool_calls():
    async def chat(request):
        body = await request.json()
        assert body["n"] == 2 and body["tools"][0]["function"]["name"] == "f" and body["seed"] == 7
        choice = {"message": {"role": "assistant", "content": "hi",
                              "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
                  "logprobs": {"content": [{"token": "hi", "logprob": -0.5, "bytes": [104, 105], "top_logprobs": []}]},
                  "finish_reason": "tool_calls"}
        return web.json_response({"choices": [choice, {**choice, "finish_reason": "length"}],
                                  "usage": {"prompt_tokens": 5, "completion_tokens": 2}})

    async def go():
        from environments import ToolSpec

        server = await _server(chat)
        policy = OpenAIPolicy(str(server.make_url("")), "m")
        try:
            return await policy.generate([Message(role="user", content="q")], [ToolSpec(name="f")], Sampling(seed=7), 2)
        finally:
            await policy.close()
            await server.close()

    first, second = asyncio.run(go())
    assert first.text == "hi" and first.logprobs.tolist() == [-0.5] and first.finish_reason == "tool_calls"
    assert first.tool_calls[0].name == "f" and first.tool_calls[0].arguments == {"x": 1}
    assert second.finish_reason == "length" and first.usage.completion_tokens == 1


def test_sglang_policy_concurrent_first_requests_all_use_the_native_route():
    """The first requests arrive together while the tokenizer is still being looked up: all of them must wait
    for it and send token ids to /generate, none may fall back to the chat route (no token ids back)."""
    from rollout.embedded import prepare_default_model
    from rollout.policies.sglang import SGLangPolicy

    model = str(prepare_default_model())
    routes: list[str] = []

    async def handler(request):
        routes.append(request.path)
        if request.path == "/get_model_info":
            await asyncio.sleep(0.2)  # a slow answer: the other requests arrive meanwhile
            return web.json_response({"model_path": model, "tokenizer_path": model})
        body = await request.json()
        assert body["input_ids"] and body["return_logprob"]
        return web.json_response({"text": "ok", "output_ids": [7, 2],
                                  "meta_info": {"output_token_logprobs": [[-0.1, 7, None], [-0.2, 2, None]],
                                                "finish_reason": {"type": "stop"}, "completion_tokens": 2}})

    async def go():
        server = await _server(handler)
        policy = SGLangPolicy(str(server.make_url("")))
        try:
            chat = [Message(role="user", content="q")]
            return await asyncio.gather(*(policy.generate(chat, None, Sampling(), 1) for _ in range(4)))
        finally:
            await policy.close()
            await server.close()

    results = asyncio.run(go())
    assert routes.count("/get_model_info") == 1 and routes.count("/generate") == 4, routes
    assert all(c.token_ids.tolist() == [7, 2] and c.logprobs.tolist() == pytest.approx([-0.1, -0.2]) for [c] in results)
