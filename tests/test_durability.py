"""kill -9 under concurrent load loses nothing acknowledged and duplicates nothing."""

from __future__ import annotations

import asyncio
import signal

import pytest
from conftest import start_server
from test_server import make_group

from env_server.client import EnvServerClient


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_group(tmp_path):
    srv = start_server(tmp_path / "store")
    acked_submits: set[str] = set()
    attempted: set[str] = set()
    consumed_before_kill: set[str] = set()  # leased and acknowledged, the ack's reply received
    pending_ack: set[str] = set()  # leased, ack sent, reply not received: committed or not

    async def producer(client: EnvServerClient, worker: int, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            group = make_group(worker * 1_000_000 + i, n=8, tokens=256)
            attempted.add(group.group_id)
            try:
                await client.submit(group)
            except Exception:
                return  # the server died mid-request: this group is unacknowledged
            acked_submits.add(group.group_id)
            i += 1

    async def trainer(client: EnvServerClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                batch = await client.lease(max_groups=4)
                if batch.groups:
                    pending_ack.update(g.group_id for g in batch.groups)
                    await client.ack(batch.lease_id)
                    consumed_before_kill.update(pending_ack)
                    pending_ack.clear()
            except Exception:
                return

    async def load() -> None:
        stop = asyncio.Event()
        async with EnvServerClient(srv.url, retries=0) as client:
            tasks = [asyncio.create_task(producer(client, w, stop)) for w in range(8)]
            tasks.append(asyncio.create_task(trainer(client, stop)))
            await asyncio.sleep(2.0)
            srv.proc.send_signal(signal.SIGKILL)  # mid-load, with requests in flight
            await asyncio.gather(*tasks)
            stop.set()

    asyncio.run(load())
    srv.proc.wait()
    assert len(acked_submits) > 50, "the load did not get going"

    restarted = start_server(srv.data_dir)
    try:
        async def drain() -> tuple[list[str], dict]:
            served: list[str] = []
            async with EnvServerClient(restarted.url) as client:
                stats = await client.stats()
                while True:
                    batch = await client.lease(max_groups=500)
                    if not batch.groups:
                        return served, stats
                    served += [g.group_id for g in batch.groups]
                    await client.ack(batch.lease_id)

        served, stats = asyncio.run(drain())
    finally:
        restarted.stop()

    assert len(served) == len(set(served)), "a group was served twice"
    assert not set(served) & consumed_before_kill, "an acknowledged lease was served again"
    # The ack in flight at the kill either committed (its groups are acknowledged) or not (served again).
    assert stats["acknowledged"] in (len(consumed_before_kill), len(consumed_before_kill) + len(pending_ack))
    ack_committed = stats["acknowledged"] > len(consumed_before_kill)
    assert not (ack_committed and pending_ack & set(served))
    stored = set(served) | consumed_before_kill | (pending_ack if ack_committed else set())
    assert acked_submits <= stored, f"lost {len(acked_submits - stored)} acknowledged groups"
    assert stored <= attempted
    assert stats["queued"] == len(served)
