"""The main job on the embedded default, for now: start the environment server as a real process and drive
every route over HTTP, printing what happens. The answers are scripted (right, wrong and malformed) until
the rollout package brings a real policy.
"""

from __future__ import annotations

import asyncio
import math
import shutil
from pathlib import Path

import environments
from environments import Completion, Group, Message, Trajectory

from .client import EnvServerClient, ServerError
from .process import lachesis_process


def _answers(task: environments.Task) -> list[str]:
    right = task.verifier["answer"]
    return [f"The answer is \\boxed{{{right}}}.", f"\\boxed{{{int(right) + 1}}}", "I think it is " + right]


async def run_demo(workdir: Path) -> int:
    shutil.rmtree(workdir, ignore_errors=True)
    data_dir = workdir / "store"
    env = environments.make("arithmetic")
    tasks = list(env.tasks().iter("train", limit=8))

    async with lachesis_process("serve", "--port", "0", "--data-dir", str(data_dir)) as url, EnvServerClient(url) as client:
        print(f"server: {url}")
        for e in await client.envs():
            print(f"env: {e['name']} v{e['version']} ({e['gym_id']}): {e['description']}")

        first = await client.reset("arithmetic", seed=0, options={"task": tasks[0].model_dump(mode="json")})
        print(f"\nepisode {first['session_id'][:8]}…: {first['observation']['messages'][0]['content'].splitlines()[0]}")
        result = await client.step(first["session_id"], _answers(tasks[0])[0])
        print(f"  step → reward {result['reward']}, terminated {result['terminated']}")

        items = [(t, Completion(text=a)) for t in tasks for a in _answers(t)]
        scores = await client.verify("arithmetic", items)
        accepted = sum(s["accepted"] for s in scores)
        malformed = [s["error"] for s in scores if s["error"]]
        print(f"\nbatch verify: {len(scores)} completions: {accepted} accepted, {len(scores) - accepted - len(malformed)} "
              f"wrong, {len(malformed)} malformed ({sorted(set(malformed))})")

        for i, task in enumerate(tasks):
            trajectories = [
                Trajectory(messages=[*task.prompt, Message(role="assistant", content=item.text)],
                           reward=score["reward"], score=score)
                for (_, item), score in zip(items[3 * i : 3 * i + 3], scores[3 * i : 3 * i + 3])]
            group = Group(group_id=f"demo-{task.task_id}", env="arithmetic", task_id=task.task_id, policy="scripted",
                          trajectories=trajectories)
            await client.submit(group)
        print(f"\nsubmitted {len(tasks)} groups; resubmitting the last: duplicate={await client.submit(group)}")
        try:
            bad = group.model_dump(mode="python")
            bad["trajectories"][0]["reward"] = math.nan
            await client.request("POST", "/v1/groups", bad, msgpack=True)
        except ServerError as exc:
            print(f"a group with a NaN reward is refused: {exc}")

        batch = await client.lease(max_groups=3)
        print(f"\nleased {len(batch.groups)} groups (lease {batch.lease_id[:8]}…); acknowledged {await client.ack(batch.lease_id)}")
        unacked = await client.lease(max_groups=2, lease_seconds=0.5)
        print(f"leased {len(unacked.groups)} more and let the lease lapse")
        await asyncio.sleep(0.6)
        print(f"stats: {await client.stats()}")

    print("\nserver stopped with SIGTERM; restarting on the same data directory")
    async with lachesis_process("serve", "--port", "0", "--data-dir", str(data_dir)) as url, EnvServerClient(url) as client:
        stats = await client.stats()
        print(f"stats after restart: {stats}")
        rest = await client.lease(max_groups=100)
        print(f"the remaining {len(rest.groups)} groups are served again, oldest first: "
              f"{[g.task_id[-6:] for g in rest.groups]}")
        await client.ack(rest.lease_id)
        print(f"final stats: {await client.stats()}")
    return 0
