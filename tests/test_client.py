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


def test_verify_sends_each_task_once_and_text_not_token_arrays():
    """Consecutive completions of one task travel as a group (the task once); verifiers judge what was said,
    so token ids and logprobs (most of a completion's bytes) stay behind. Scores come back flat, in order."""
    import environments
    from environments import Completion

    bodies = []

    async def verify(request):
        body = await request.json()
        bodies.append(body)
        return web.json_response({"scores": [[{"reward": float(i), "accepted": True} for i, _ in enumerate(g["completions"])]
                                             for g in body["groups"]]})

    tasks = environments.make("arithmetic").tasks()
    first, second = tasks.get("train", 0), tasks.get("train", 1)
    completion = Completion(text="\\boxed{1}", token_ids=[1, 2, 3], logprobs=[-0.1, -0.2, -0.3], finish_reason="stop")
    items = [(first, completion), (first, completion), (second, completion)]
    scores = asyncio.run(_with_server(verify, lambda c: c.verify("arithmetic", items)))
    assert [s["reward"] for s in scores] == [0.0, 1.0, 0.0]
    groups = bodies[0]["groups"]
    assert [g["task"]["task_id"] for g in groups] == [first.task_id, second.task_id]
    assert groups[0]["completions"] == [{"text": "\\boxed{1}", "tool_calls": None, "finish_reason": "stop",
                                         "usage": None}] * 2
