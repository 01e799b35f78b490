"""TrajectoryStore in process: idempotent submit, FIFO leases, budgets, expiry, durable acks, staleness."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from env_server import wire
from env_server.store import TrajectoryStore
from environments.types import Group, Message, Trajectory


def _group(gid: str, *, tokens: int = 4, n: int = 1, policy_version: int = 0, **kw) -> Group:
    trajectories = [
        Trajectory(
            messages=[Message(role="user", content=f"q {gid}"), Message(role="assistant", content=f"a {gid} {i}")],
            tokens=np.arange(i, i + tokens, dtype=np.int32),
            masks=np.array([0, 1] * (tokens // 2) + [1] * (tokens % 2), dtype=np.int32),
            logprobs=np.linspace(-2.0, -0.1, tokens, dtype=np.float32),
            reward=float(i % 2),
            timings={"generate": 0.5},
        )
        for i in range(n)
    ]
    return Group(group_id=gid, env="arithmetic", task_id=f"task-{gid}", policy_version=policy_version,
                 trajectories=trajectories, **kw)


def _ids(payloads: list[bytes]) -> list[str]:
    return [wire.unpackb(p)["group_id"] for p in payloads]


async def _submit_all(store: TrajectoryStore, groups: list[Group]) -> list[bool]:
    return [await store.submit(g) for g in groups]


def _stats(**kw: int) -> dict[str, int]:
    base = {"queued": 0, "queued_tokens": 0, "leased": 0, "leases": 0, "acknowledged": 0, "stale": 0}
    return {**base, **kw}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


# -- submit -----------------------------------------------------------------------------------------
def test_submit_reports_duplicates_and_stores_once(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            assert store.stats() == _stats()
            assert await store.submit(_group("g1")) is False
            assert await store.submit(_group("g1")) is True
            # same group_id, different content: still a duplicate, the first copy wins
            assert await store.submit(_group("g1", tokens=10)) is True
            assert store.stats() == _stats(queued=1, queued_tokens=4)
            lease_id, payloads = await store.lease(max_groups=10)
            assert _ids(payloads) == ["g1"]
            assert len(wire.unpackb(payloads[0])["trajectories"][0]["tokens"]) == 4
        finally:
            await store.close()

    asyncio.run(main())


def test_concurrent_duplicate_submits_store_one_copy(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            results = await asyncio.gather(*(store.submit(_group("same")) for _ in range(20)),
                                           *(store.submit(_group(f"other-{i}")) for i in range(5)))
            same, others = results[:20], results[20:]
            assert sorted(same) == [False] + [True] * 19  # exactly one copy stored
            assert others == [False] * 5
            assert store.stats() == _stats(queued=6, queued_tokens=24)
            _, payloads = await store.lease(max_groups=100)
            ids = _ids(payloads)
            assert ids.count("same") == 1 and len(ids) == 6
        finally:
            await store.close()
        # and on disk, too
        store = TrajectoryStore(data_dir)
        try:
            assert store.stats()["queued"] == 6
            assert await store.submit(_group("same")) is True
        finally:
            await store.close()

    asyncio.run(main())


# -- leasing ----------------------------------------------------------------------------------------
def test_leases_are_fifo(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            names = [f"g{i:02d}" for i in range(10)]
            await _submit_all(store, [_group(n) for n in names])
            served = []
            for size in (3, 1, 4, 5):
                _, payloads = await store.lease(max_groups=size)
                served.append(_ids(payloads))
            assert served == [names[0:3], names[3:4], names[4:8], names[8:10]]
            assert await store.lease(max_groups=5) == ("", [])  # empty queue: no lease
            assert store.stats() == _stats(leased=10, leases=4)
        finally:
            await store.close()

    asyncio.run(main())


def test_max_groups_and_max_tokens_budgets(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            # token counts: a=4, b=6, c=20 (bigger than the budget), d=2, e=2, f=2 (2 trajectories × 1 token)
            await _submit_all(store, [_group("a", tokens=4), _group("b", tokens=6), _group("c", tokens=10, n=2),
                                      _group("d", tokens=2), _group("e", tokens=2), _group("f", tokens=1, n=2)])
            assert store.stats() == _stats(queued=6, queued_tokens=36)
            _, p = await store.lease(max_tokens=10)  # a + b = 10 fits exactly
            assert _ids(p) == ["a", "b"]
            _, p = await store.lease(max_tokens=10)  # c alone exceeds the budget: served alone
            assert _ids(p) == ["c"]
            _, p = await store.lease(max_tokens=100, max_groups=2)  # the group budget binds first
            assert _ids(p) == ["d", "e"]
            assert store.stats() == _stats(queued=1, queued_tokens=2, leased=5, leases=3)
            _, p = await store.lease(max_tokens=1)  # f (2 tokens) alone, even with a budget of 1
            assert _ids(p) == ["f"]
        finally:
            await store.close()

    asyncio.run(main())


def test_big_group_behind_small_one_waits_for_next_lease(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            await _submit_all(store, [_group("small", tokens=2), _group("big", tokens=50), _group("tail", tokens=2)])
            _, p = await store.lease(max_tokens=10)
            assert _ids(p) == ["small"]  # big does not fit after small, and is not skipped over
            _, p = await store.lease(max_tokens=10)
            assert _ids(p) == ["big"]
            _, p = await store.lease(max_tokens=10)
            assert _ids(p) == ["tail"]
        finally:
            await store.close()

    asyncio.run(main())


def test_expired_lease_requeues_groups_at_their_original_place(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            await _submit_all(store, [_group(n) for n in ("a", "b", "c", "d")])
            expiring, p = await store.lease(max_groups=2, lease_seconds=0.05)
            assert _ids(p) == ["a", "b"]
            kept, p = await store.lease(max_groups=1)  # default lease: 300 s
            assert _ids(p) == ["c"]
            await _submit_all(store, [_group("e"), _group("f")])
            assert store.stats() == _stats(queued=3, queued_tokens=12, leased=3, leases=2)
            await asyncio.sleep(0.1)
            assert store.stats() == _stats(queued=5, queued_tokens=20, leased=1, leases=1)
            _, p = await store.lease(max_groups=10)
            assert _ids(p) == ["a", "b", "d", "e", "f"]  # before the newer groups
            with pytest.raises(KeyError):
                await store.ack(expiring)  # too late: its groups went back to the queue
            assert await store.ack(kept) == 1
        finally:
            await store.close()

    asyncio.run(main())


# -- acknowledgement --------------------------------------------------------------------------------
def test_ack_unknown_lease_raises_and_ack_is_idempotent(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            with pytest.raises(KeyError):
                await store.ack("no-such-lease")
            with pytest.raises(KeyError):
                await store.ack("")  # the "nothing queued" lease id is not a lease either
            await _submit_all(store, [_group(n) for n in ("a", "b", "c")])
            lease_id, p = await store.lease(max_groups=3)
            assert len(p) == 3
            assert await store.ack(lease_id) == 3
            assert await store.ack(lease_id) == 3  # a retried ack succeeds with the same count
            assert store.stats() == _stats(acknowledged=3)
            assert await store.lease(max_groups=3) == ("", [])
        finally:
            await store.close()

    asyncio.run(main())


def test_acks_are_durable_across_reopen(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            await _submit_all(store, [_group(f"g{i}") for i in range(8)])
            acked, p = await store.lease(max_groups=2)
            assert _ids(p) == ["g0", "g1"]
            assert await store.ack(acked) == 2
            unacked, p = await store.lease(max_groups=2)
            assert _ids(p) == ["g2", "g3"]
            acked2, p = await store.lease(max_groups=1)
            assert _ids(p) == ["g4"]
            assert await store.ack(acked2) == 1
            assert store.stats() == _stats(queued=3, queued_tokens=12, leased=2, leases=1, acknowledged=3)
        finally:
            await store.close()

        store = TrajectoryStore(data_dir)
        try:
            # the unacked lease is gone with the process: its groups are queued again, in their old place
            assert store.stats() == _stats(queued=5, queued_tokens=20, acknowledged=3)
            with pytest.raises(KeyError):
                await store.ack(unacked)
            await store.submit(_group("g8"))
            _, p = await store.lease(max_groups=100)
            assert _ids(p) == ["g2", "g3", "g5", "g6", "g7", "g8"]
            assert await store.submit(_group("g0")) is True  # acked groups still count as stored
        finally:
            await store.close()

    asyncio.run(main())


# -- policy versions --------------------------------------------------------------------------------
def test_min_policy_version_marks_old_groups_stale(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            await _submit_all(store, [_group("v0a", policy_version=0), _group("v2a", policy_version=2),
                                      _group("v1", policy_version=1), _group("v0b", policy_version=0),
                                      _group("v3", policy_version=3), _group("v2b", policy_version=2)])
            _, p = await store.lease(max_groups=2, min_policy_version=2)
            assert _ids(p) == ["v2a", "v3"]  # v0a, v1, v0b skipped on the way
            assert store.stats() == _stats(queued=1, queued_tokens=4, leased=2, leases=1, stale=3)
            # a stale group never comes back, even for a consumer that would accept it
            _, p = await store.lease(max_groups=10, min_policy_version=0)
            assert _ids(p) == ["v2b"]
            await store.submit(_group("v1late", policy_version=1))
            await store.submit(_group("v5", policy_version=5))
        finally:
            await store.close()

        store = TrajectoryStore(data_dir)
        try:
            # the stale marks were written through before close; leases were dropped, so v2a, v3, v2b return
            assert store.stats() == _stats(queued=5, queued_tokens=20, stale=3)
            _, p = await store.lease(max_groups=10, min_policy_version=3)
            assert _ids(p) == ["v3", "v5"]
            assert store.stats() == _stats(leased=2, leases=1, stale=6)
        finally:
            await store.close()

        store = TrajectoryStore(data_dir)
        try:
            assert store.stats() == _stats(queued=2, queued_tokens=8, stale=6)
            _, p = await store.lease(max_groups=10)
            assert _ids(p) == ["v3", "v5"]
        finally:
            await store.close()

    asyncio.run(main())


def test_lease_of_only_stale_groups_is_empty(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            await _submit_all(store, [_group("old1"), _group("old2")])
            assert await store.lease(max_groups=5, min_policy_version=1) == ("", [])
            assert store.stats() == _stats(stale=2)
        finally:
            await store.close()

    asyncio.run(main())


# -- stats through a whole life cycle ---------------------------------------------------------------
def test_stats_at_each_step(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir, default_lease_seconds=0.1)
        try:
            assert store.stats() == _stats()
            await store.submit(_group("a", tokens=3))
            assert store.stats() == _stats(queued=1, queued_tokens=3)
            await store.submit(_group("b", tokens=5, n=2))
            assert store.stats() == _stats(queued=2, queued_tokens=13)
            await store.submit(_group("b", tokens=5, n=2))  # duplicate changes nothing
            assert store.stats() == _stats(queued=2, queued_tokens=13)
            l1, _ = await store.lease(max_groups=1, lease_seconds=60)
            assert store.stats() == _stats(queued=1, queued_tokens=10, leased=1, leases=1)
            l2, _ = await store.lease(max_groups=1)  # default lease, 0.1 s
            assert store.stats() == _stats(leased=2, leases=2)
            await asyncio.sleep(0.2)
            assert store.stats() == _stats(queued=1, queued_tokens=10, leased=1, leases=1)
            assert await store.ack(l1) == 1
            assert store.stats() == _stats(queued=1, queued_tokens=10, acknowledged=1)
            await store.submit(_group("c", tokens=2, policy_version=4))
            _, p = await store.lease(max_groups=5, min_policy_version=4, lease_seconds=60)
            assert _ids(p) == ["c"]
            assert store.stats() == _stats(leased=1, leases=1, acknowledged=1, stale=1)
        finally:
            await store.close()

    asyncio.run(main())


# -- payloads ---------------------------------------------------------------------------------------
def test_payloads_round_trip_to_equal_groups(data_dir: Path) -> None:
    groups = [
        _group("plain", tokens=7, n=3, meta={"sampler": {"temperature": 0.7, "top_p": [0.9, 1]}, "tag": "x"}),
        _group("policy", tokens=1, policy_version=9, policy="qwen-0.5b", env_version=2),
        Group(group_id="bare", env="arithmetic", task_id="t", trajectories=[Trajectory(reward=-1.5)]),
    ]

    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            await _submit_all(store, groups)
            _, payloads = await store.lease(max_groups=10)
        finally:
            await store.close()
        assert len(payloads) == 3
        for original, payload in zip(groups, payloads):
            decoded = Group.model_validate(wire.unpackb(payload))
            assert decoded == original
            for got, want in zip(decoded.trajectories, original.trajectories):
                for name in ("tokens", "masks", "logprobs"):
                    a, b = getattr(got, name), getattr(want, name)
                    if b is None:
                        assert a is None
                        continue
                    assert a.dtype == b.dtype and np.array_equal(a, b)
                if want.tokens is not None:
                    assert got.tokens.dtype == np.int32 and got.logprobs.dtype == np.float32
        # the raw document carries the arrays as numpy arrays of the same dtype, not lists
        raw = wire.unpackb(payloads[0])["trajectories"][0]
        assert isinstance(raw["tokens"], np.ndarray) and raw["tokens"].dtype == np.dtype("<i4")
        assert isinstance(raw["logprobs"], np.ndarray) and raw["logprobs"].dtype == np.dtype("<f4")

    asyncio.run(main())


def test_group_from_lists_is_stored_as_arrays(data_dir: Path) -> None:
    group = Group.model_validate({"group_id": "lists", "env": "arithmetic", "task_id": "t", "trajectories": [
        {"reward": 1.0, "tokens": [5, 6, 7], "masks": [0, 1, 1], "logprobs": [-0.5, -0.25, -0.125]}]})

    async def main() -> list[bytes]:
        store = TrajectoryStore(data_dir)
        try:
            await store.submit(group)
            return (await store.lease(max_groups=1))[1]
        finally:
            await store.close()

    (payload,) = asyncio.run(main())
    t = Group.model_validate(wire.unpackb(payload)).trajectories[0]
    assert t.tokens.dtype == np.int32 and t.tokens.tolist() == [5, 6, 7]
    assert t.logprobs.dtype == np.float32 and t.logprobs.tolist() == [-0.5, -0.25, -0.125]


def test_lease_expiry_uses_monotonic_deadline(data_dir: Path) -> None:
    async def main() -> None:
        store = TrajectoryStore(data_dir)
        try:
            await store.submit(_group("a"))
            lease_id, _ = await store.lease(max_groups=1, lease_seconds=0.3)
            start = time.monotonic()
            assert await store.lease(max_groups=1) == ("", [])  # still leased
            await asyncio.sleep(max(0.0, 0.35 - (time.monotonic() - start)))
            new_id, p = await store.lease(max_groups=1)
            assert _ids(p) == ["a"] and new_id != lease_id
        finally:
            await store.close()

    asyncio.run(main())
