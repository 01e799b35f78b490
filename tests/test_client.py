"""The client: its retry policy (back off and retry on 5xx and connection errors, never on 4xx) and what it sends."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from env_server.client import EnvServerClient, ServerError


async def _with_server(handler, fn):
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with EnvServerClient(str(server.make_url("")), retries=3, backoff=0.001) as client:
            return await fn(client)
    finally:
        await server.close()


def test_retries_5xx_then_succeeds():
    calls = []

    async def flaky(request):
        calls.append(request.path)
        if len(calls) < 3:
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"queued": 1})

    assert asyncio.run(_with_server(flaky, lambda c: c.stats())) == {"queued": 1}
    assert calls == ["/v1/stats"] * 3


def test_gives_up_after_retries_with_the_server_message():
    calls = []

    async def broken(request):
        calls.append(1)
        return web.json_response({"error": "disk full", "fields": []}, status=500)

    with pytest.raises(ServerError, match="disk full") as err:
        asyncio.run(_with_server(broken, lambda c: c.stats()))
    assert err.value.status == 500 and len(calls) == 4


def test_4xx_is_not_retried():
    calls = []

    async def refuse(request):
        calls.append(1)
        return web.json_response({"error": "invalid Group", "fields": [{"field": "group_id", "message": "missing"}]},
                                 status=422)

    with pytest.raises(ServerError, match="group_id: missing"):
        asyncio.run(_with_server(refuse, lambda c: c.request("POST", "/v1/groups", {})))
    assert len(calls) == 1


def test_connection_errors_are_retried_then_raised():
    async def go():
        async with EnvServerClient("http://127.0.0.1:9", retries=2, backoff=0.001) as client:
            await client.health()

    with pytest.raises(Exception) as err:
        asyncio.run(go())
    assert not isinstance(err.value, ServerError)


def test_verify_sends_text_not_token_arrays():
    """Verifiers judge what was said; token ids and logprobs (most of a completion's bytes) stay behind."""
    import environments
    from environments import Completion

    bodies = []

    async def verify(request):
        bodies.append(await request.json())
        return web.json_response({"scores": [{"reward": 1.0, "accepted": True}]})

    task = environments.make("arithmetic").tasks().get("train", 0)
    completion = Completion(text="\\boxed{1}", token_ids=[1, 2, 3], logprobs=[-0.1, -0.2, -0.3], finish_reason="stop")
    scores = asyncio.run(_with_server(verify, lambda c: c.verify("arithmetic", [(task, completion)])))
    assert scores == [{"reward": 1.0, "accepted": True}]
    [item] = bodies[0]["items"]
    assert item["completion"] == {"text": "\\boxed{1}", "tool_calls": None, "finish_reason": "stop", "usage": None}
    assert item["task"]["task_id"] == task.task_id

