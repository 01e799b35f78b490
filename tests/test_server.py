"""Integration tests against a real `lachesis serve` process, through the real async client."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import numpy as np
import pytest
from conftest import start_server

import environments
from env_server.app import ServerConfig, create_app
from env_server.client import EnvServerClient, ServerError
from environments import Completion, Group, Message, Trajectory


def run(coro):
    return asyncio.run(coro)


def make_group(i: int, *, n: int = 2, tokens: int = 4, policy_version: int = 0) -> Group:
    rng = np.random.default_rng(i)
    return Group(group_id=f"g{i}", env="arithmetic", task_id=f"t{i}", policy_version=policy_version, trajectories=[
        Trajectory(messages=[Message(role="user", content="q"), Message(role="assistant", content=f"a{j}")],
                   tokens=rng.integers(0, 1000, tokens, dtype=np.int32), masks=np.ones(tokens, np.int32),
                   logprobs=-rng.random(tokens, dtype=np.float32), reward=float(j % 2))
        for j in range(n)])


async def _client_call(url: str, fn, **kwargs):
    async with EnvServerClient(url, **kwargs) as client:
        return await fn(client)


def call(server, fn, **kwargs):
    return run(_client_call(server.url, fn, **kwargs))


def test_envs_listed_and_described(shared_server):
    envs = call(shared_server, lambda c: c.envs())
    assert {"name": "arithmetic", "version": 0}.items() <= next(e for e in envs if e["name"] == "arithmetic").items()
    info = call(shared_server, lambda c: c.describe("arithmetic"))
    assert info["gym_id"] == "lachesis/Arithmetic-v0"
    assert "task_id" in info["task_schema"]["properties"] and "content" in info["action_schema"]["properties"]
    with pytest.raises(ServerError) as err:
        call(shared_server, lambda c: c.describe("nope"))
    assert err.value.status == 404 and "arithmetic" in str(err.value)


def test_episode_reset_step_close(shared_server):
    task = environments.make("arithmetic").tasks().get("train", 3)

    async def episode(c: EnvServerClient):
        first = await c.reset("arithmetic", seed=1, options={"task": task.model_dump(mode="json")})
        assert first["observation"]["messages"][0]["content"] == task.prompt[0].content
        assert first["info"]["task_id"] == task.task_id
        result = await c.step(first["session_id"], f"\\boxed{{{task.verifier['answer']}}}")
        assert (result["reward"], result["terminated"], result["truncated"]) == (1.0, True, False)
        assert result["observation"]["messages"][-1]["role"] == "assistant"
        with pytest.raises(ServerError) as over:
            await c.step(first["session_id"], "again")
        assert over.value.status == 409
        await c.close_session(first["session_id"])
        with pytest.raises(ServerError) as gone:
            await c.step(first["session_id"], "x")
        assert gone.value.status == 404
        # The same seed draws the same task; an explicit index is honoured.
        a = await c.reset("arithmetic", seed=7)
        b = await c.reset("arithmetic", seed=7)
        assert a["info"]["task_id"] == b["info"]["task_id"]
        e = await c.reset("arithmetic", options={"split": "eval", "index": 0})
        assert e["info"] == {"task_id": environments.make("arithmetic").tasks().get("eval", 0).task_id,
                             "split": "eval", "reasoning": False}
        with pytest.raises(ServerError) as bad:
            await c.reset("arithmetic", options={"split": "eval", "index": 10**6})
        assert bad.value.status == 422
        with pytest.raises(ServerError) as role:
            await c.step(a["session_id"], Message(role="user", content="hi"))
        assert role.value.status == 422

    call(shared_server, episode)


def test_batch_verify_scores_in_order(shared_server):
    tasks = list(environments.make("arithmetic").tasks().iter("eval", limit=20))
    items = []
    for i, t in enumerate(tasks):
        answer = t.verifier["answer"] if i % 2 == 0 else "-1"
        items.append((t, Completion(text=f"\\boxed{{{answer}}}" if i % 3 else f"{answer}")))
    scores = call(shared_server, lambda c: c.verify("arithmetic", items))
    local = environments.make("arithmetic")
    assert [s["accepted"] for s in scores] == [local.verify(t, comp).accepted for t, comp in items]
    assert any(s["accepted"] for s in scores) and not all(s["accepted"] for s in scores)
    assert call(shared_server, lambda c: c.verify("arithmetic", [])) == []


def test_groups_lease_ack_and_formats(server):
    groups = [make_group(i, n=3, tokens=5) for i in range(6)]

    async def flow(c: EnvServerClient):
        assert [await c.submit(g) for g in groups] == [False] * 6
        assert await c.submit(groups[0]) is True
        batch = await c.lease(max_groups=2)
        assert [g.group_id for g in batch.groups] == ["g0", "g1"]
        assert batch.groups[0] == groups[0]  # numpy arrays survive the round trip exactly
        assert await c.ack(batch.lease_id) == 2
        assert await c.ack(batch.lease_id) == 2  # a retried ack is answered the same
        by_tokens = await c.lease(max_tokens=30)  # 15 tokens per group → two groups
        assert [g.group_id for g in by_tokens.groups] == ["g2", "g3"]
        # JSON clients get the same documents, with lists.
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{server.url}/v1/batches", json={"max_groups": 1}) as r:
                doc = await r.json()
        assert r.status == 200 and doc["groups"][0]["group_id"] == "g4"
        assert Group.model_validate(doc["groups"][0]) == groups[4]
        stats = await c.stats()
        assert (stats["queued"], stats["leased"], stats["leases"], stats["acknowledged"]) == (1, 3, 2, 2)
        assert stats["queued_tokens"] == 15
        with pytest.raises(ServerError) as unknown:
            await c.ack("no-such-lease")
        assert unknown.value.status == 409
        empty = await c.lease(max_groups=5, min_policy_version=1)
        assert empty.lease_id == "" and empty.groups == []
        assert (await c.stats())["stale"] == 1

    call(server, flow)


def test_lease_expiry_requeues_in_original_order(server):
    async def flow(c: EnvServerClient):
        for i in range(4):
            await c.submit(make_group(i))
        first = await c.lease(max_groups=2, lease_seconds=0.3)
        assert [g.group_id for g in first.groups] == ["g0", "g1"]
        await asyncio.sleep(0.4)
        again = await c.lease(max_groups=4)
        assert [g.group_id for g in again.groups] == ["g0", "g1", "g2", "g3"]
        with pytest.raises(ServerError):
            await c.ack(first.lease_id)
        assert await c.ack(again.lease_id) == 4

    call(server, flow)


def test_sigterm_is_graceful_and_data_survives_restart(server, tmp_path):
    async def fill(c: EnvServerClient):
        for i in range(5):
            await c.submit(make_group(i))
        batch = await c.lease(max_groups=2)
        await c.ack(batch.lease_id)
        await c.lease(max_groups=1)  # leased, never acknowledged

    call(server, fill)
    assert server.stop(signal.SIGTERM) == 0
    assert "shutting down" in server.log.read_text()
    restarted = start_server(server.data_dir)
    try:
        stats = call(restarted, lambda c: c.stats())
        assert (stats["queued"], stats["acknowledged"], stats["leased"]) == (3, 2, 0)
        batch = call(restarted, lambda c: c.lease(max_groups=10))
        assert [g.group_id for g in batch.groups] == ["g2", "g3", "g4"]
    finally:
        restarted.stop()


def test_token_required_beyond_loopback_and_enforced(tmp_path):
    with pytest.raises(ValueError, match="requires a token"):
        ServerConfig(host="0.0.0.0", data_dir=tmp_path).check()
    with pytest.raises(ValueError, match="requires a token"):
        create_app(ServerConfig(host="192.0.2.1", data_dir=tmp_path))
    ServerConfig(host="::1", data_dir=tmp_path).check()  # loopback needs none

    srv = start_server(tmp_path / "s", "--token", "s3cret")
    try:
        with pytest.raises(ServerError) as denied:
            call(srv, lambda c: c.stats())
        assert denied.value.status == 401
        with pytest.raises(ServerError):
            call(srv, lambda c: c.stats(), token="wrong")
        assert call(srv, lambda c: c.stats(), token="s3cret")["queued"] == 0
        assert call(srv, lambda c: c.health())["status"] == "ok"  # liveness stays open for probes
    finally:
        srv.stop()


def test_cli_refuses_public_bind_without_token(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "lachesis", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "requires a token" in out.stderr


def test_no_state_changing_get(shared_server):
    async def probe():
        async with aiohttp.ClientSession() as s:
            for path in ("/v1/groups", "/v1/batches", "/v1/envs/arithmetic/reset", "/v1/envs/arithmetic/verify"):
                async with s.get(shared_server.url + path) as r:
                    assert r.status == 405, path
                    assert "error" in await r.json()

    run(probe())


def test_metrics_and_openapi(shared_server):
    async def probe():
        async with aiohttp.ClientSession() as s:
            async with s.get(shared_server.url + "/v1/stats"):
                pass
            async with s.get(shared_server.url + "/metrics") as r:
                text = await r.text()
            async with s.get(shared_server.url + "/openapi.json") as r:
                doc = await r.json()
        return text, doc

    text, doc = run(probe())
    assert 'lachesis_http_requests_total{method="GET",route="/v1/stats",status="200"}' in text
    assert "lachesis_store_queued" in text
    assert doc["openapi"].startswith("3.1")
    for path in ("/v1/groups", "/v1/batches", "/v1/envs/{name}/reset", "/v1/sessions/{session_id}/step"):
        assert path in doc["paths"]
    group_ref = doc["paths"]["/v1/groups"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert group_ref.split("/")[-1] in doc["components"]["schemas"]


def test_a_verify_batch_that_times_out_asks_for_a_retry():
    """The verify pool timing out is the server's failure, not the answers': no verdict, retry later."""
    from env_server.envs import EnvService

    env = environments.make("arithmetic")
    items = [(env.tasks().get("train", i), Completion(text="\\boxed{1}")) for i in range(4)]

    async def flow():
        service = EnvService(verify_workers=1)
        try:
            return await service.verify("arithmetic", items, timeout=1e-4)  # the worker has not even started
        finally:
            service.shutdown()

    scores = run(flow())
    assert all(s.retry and not s.accepted and s.error == "verification timed out" for s in scores)


def test_idle_sessions_expire(tmp_path):
    from env_server.envs import EnvService
    from environments.env import ResetOptions

    async def flow():
        service = EnvService(session_idle_seconds=0.05)
        sid, _, _ = await service.reset("arithmetic", 0, ResetOptions())
        assert sid in service.sessions
        time.sleep(0.1)
        assert service.close_idle() == 1 and sid not in service.sessions
        service.shutdown()

    run(flow())
