"""Rollout: rejection sampling, and the Ray driver end to end (real Ray, real environment server).

The inference endpoint here is a small canned OpenAI-compatible server started by the test: it stands in
for the engine only so the driver's own behaviour (requeue on actor death, resume) can be checked quickly.
The embedded model's real server is exercised in tests/test_pipeline.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from environments.types import Message, Score, Trajectory
from rollout.config import RolloutConfig
from rollout.selection import SelectionConfig, group_advantages, select

CANNED = textwrap.dedent('''
    import asyncio, random, sys
    from aiohttp import web
    delay = float(sys.argv[2])
    async def chat(request):
        body = await request.json()
        await asyncio.sleep(delay)
        n = body.get("n", 1)
        choices = [{"index": i, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "\\\\boxed{%d}" % random.randint(1, 60)}}
                   for i in range(n)]
        return web.json_response({"choices": choices, "usage": {"prompt_tokens": 9, "completion_tokens": 4 * n}})
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda *a: print("ready", flush=True))
''')


def traj(text: str, accepted: bool, reasoning: str | None = None) -> Trajectory:
    return Trajectory(messages=[Message(role="user", content="q"), Message(role="assistant", content=text, reasoning=reasoning)],
                      reward=float(accepted), score=Score(reward=float(accepted), accepted=accepted))


def test_select_keeps_k_distinct_accepted_and_pairs():
    group = [traj("the answer is \\boxed{4}", True), traj("The  answer is \\boxed{4}", True),  # exact dup after normalising
             traj("so two plus two makes \\boxed{4} in the end", True), traj("\\boxed{5}", False),
             traj("I computed it carefully and found that it is \\boxed{4}", True), traj("\\boxed{6}", False)]
    chosen = select(group, SelectionConfig(keep=2, keep_rejected=True))
    assert chosen.kept == [0, 2]
    assert chosen.duplicates == 1
    assert chosen.pairs == [(0, 3), (2, 5)]
    assert select(group, SelectionConfig(keep=5)).kept == [0, 2, 4]
    assert select(group, SelectionConfig(keep=5)).pairs == []


def test_select_near_duplicates_and_no_accepted():
    base = " ".join(f"word{i}" for i in range(60))
    near = base.replace("word59", "word99")
    group = [traj(base, True), traj(near, True), traj("entirely different reasoning here", True)]
    assert select(group, SelectionConfig(keep=3, near_duplicate=0.9)).kept == [0, 2]
    assert select(group, SelectionConfig(keep=3, near_duplicate=1.0)).kept == [0, 1, 2]
    assert select([traj("x", False)], SelectionConfig()).kept == []


def test_group_advantages():
    assert group_advantages([1.0, 1.0]) == [0.0, 0.0]
    adv = group_advantages([1.0, 0.0, 0.0, 1.0])
    assert adv == pytest.approx([1.0, -1.0, -1.0, 1.0])


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text('run_id = "x"\nout_dir = "o"\nn = 0\n[policy]\nkind = "openai"\n[[envs]]\nname = "arithmetic"\ntasks = 2\n')
    with pytest.raises(ValueError, match="n: Input should be greater than or equal to 1"):
        RolloutConfig.load(bad)
    bad.write_text('run_id = "x"\n')
    with pytest.raises(ValueError, match="out_dir: Field required"):
        RolloutConfig.load(bad)


def test_a_group_the_verifier_could_not_judge_is_retried_not_rejected(monkeypatch):
    """A Score with retry (the judge model down, the sandbox failing) is no verdict: the worker hands the task
    back as an error, which the driver requeues, instead of storing a group of false rejections."""
    from rollout import worker as rollout_worker

    judged = traj("\\boxed{4}", True)
    group = [judged, Trajectory(messages=judged.messages, reward=0.0, score=Score(
        reward=0.0, accepted=False, error="judge unavailable: 503", retry=True))]
    submitted = []

    async def sample(task, policy, env, sampling, n):  # stands in for the engine and the server's verify route
        return group

    async def submit(g):
        submitted.append(g)

    monkeypatch.setattr(rollout_worker, "sample_single_turn", sample)
    config = {"run_id": "r", "out_dir": "o", "n": 2, "envs": [{"name": "arithmetic", "tasks": 1}],
              "policy": {"kind": "openai", "urls": ["http://127.0.0.1:9"], "model": "m"}}
    item = {"key": "arithmetic/train/0", "env": "arithmetic", "split": "train", "index": 0, "reasoning": None,
            "max_turns": 1, "config": {}}

    async def main():
        worker = rollout_worker.RolloutWorker(config, config["policy"], "http://127.0.0.1:9")
        worker.env.submit = submit
        try:
            unjudged = await worker.run_task(item)
            group[1] = traj("\\boxed{5}", False)  # a real rejection: stored and selected as usual
            return unjudged, await worker.run_task(item)
        finally:
            await worker.close()

    unjudged, judged_result = asyncio.run(main())
    assert unjudged == {"key": item["key"], "error": "no verdict: judge unavailable: 503"}
    assert judged_result["samples"] == 2 and judged_result["accepted_samples"] == 1 and len(submitted) == 1


@pytest.fixture
def canned(tmp_path):
    script = tmp_path / "canned.py"
    script.write_text(CANNED)

    def start(delay: float = 0.0):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, str(script), str(port), str(delay)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        procs.append(proc)
        return f"http://127.0.0.1:{port}"

    procs: list[subprocess.Popen] = []
    yield start
    for p in procs:
        p.kill()


def write_config(path: Path, url: str, out: Path, tasks: int, **extra) -> Path:
    lines = [f'run_id = "test"', f'out_dir = "{out}"', "n = 4", "workers = 2", "concurrency = 4", "shard_tasks = 5",
             *(f"{k} = {json.dumps(v)}" for k, v in extra.items()),
             "[policy]", 'kind = "openai"', f'urls = ["{url}"]', 'model = "canned"',
             "[selection]", "keep = 2", "keep_rejected = true",
             "[[envs]]", 'name = "arithmetic"', f"tasks = {tasks}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def rows(out: Path, kind: str = "accepted") -> list[dict]:
    return [r for f in sorted(out.glob(f"{kind}-*.parquet")) for r in pq.read_table(f).to_pylist()]


def manifest(out: Path) -> list[str]:
    return [json.loads(line)["task"] for line in (out / "manifest.jsonl").read_text().splitlines()]


def lachesis(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lachesis", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


@pytest.mark.slow
def test_rollout_writes_shards_and_resumes_without_duplicates(tmp_path, canned):
    url = canned()
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "c.toml", url, out, tasks=12)
    first = lachesis("rollout", str(cfg))
    stdout, stderr = first.communicate(timeout=240)
    assert first.returncode == 0, stderr
    assert "arithmetic" in stdout and "failed 0" in stdout
    assert sorted(manifest(out)) == sorted(f"arithmetic/train/{i}" for i in range(12))
    accepted = rows(out)
    assert all(r["accepted"] and r["env"] == "arithmetic" for r in accepted)
    assert len({r["id"] for r in accepted}) == len(accepted)
    assert all(r["messages"][-1]["role"] == "assistant" for r in accepted)
    for p in rows(out, "pairs"):
        assert p["chosen"]["accepted"] and not p["rejected"]["accepted"] and p["chosen"]["task_key"] == p["rejected"]["task_key"]

    # Grow the run: the first 12 are skipped, an orphan shard (crash before the manifest) is removed.
    (out / "accepted-99999.parquet").write_bytes(b"orphan")
    cfg = write_config(tmp_path / "c.toml", url, out, tasks=20)
    second = lachesis("rollout", str(cfg))
    stdout, stderr = second.communicate(timeout=240)
    assert second.returncode == 0, stderr
    assert "skipped (done before) 12" in stdout
    assert not (out / "accepted-99999.parquet").exists()
    keys = manifest(out)
    assert len(keys) == len(set(keys)) == 20


@pytest.mark.slow
def test_killed_driver_resumes_and_killed_actor_is_requeued(tmp_path, canned):
    url = canned(delay=0.15)
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "c.toml", url, out, tasks=40)

    # 1. kill -9 the whole driver once a shard is on disk; the rerun finishes the rest exactly once.
    run = lachesis("rollout", str(cfg), start_new_session=True)
    deadline = time.time() + 120
    while not (out / "manifest.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    done_before = len(manifest(out))
    assert 0 < done_before < 40

    # 2. the rerun: one rollout actor is killed mid-run; its tasks are requeued.
    rerun = lachesis("rollout", str(cfg), start_new_session=True)
    killed = False
    deadline = time.time() + 120
    while not killed and time.time() < deadline:
        pids = subprocess.run(["pgrep", "-f", "ray::RolloutWorker"], capture_output=True, text=True).stdout.split()
        if pids and (out / "manifest.jsonl").exists() and len(manifest(out)) > done_before:
            os.kill(int(pids[0]), signal.SIGKILL)
            killed = True
        time.sleep(0.1)
    stdout, stderr = rerun.communicate(timeout=300)
    assert killed
    assert rerun.returncode == 0, stderr
    assert f"skipped (done before) {done_before}" in stdout
    assert re.search(r"requeued [1-9]", stdout), stdout  # the dead actor's in-flight tasks ran again
    keys = manifest(out)
    assert sorted(keys) == sorted(f"arithmetic/train/{i}" for i in range(40))
    ids = [r["id"] for r in rows(out)]
    assert len(ids) == len(set(ids))


def test_load_policy_from_module_and_errors(tmp_path, monkeypatch):
    from rollout.policies import Sampling, load_policy

    (tmp_path / "my_policy_mod.py").write_text(textwrap.dedent('''
        from environments import Completion

        class EchoPolicy:
            def __init__(self, prefix="", version=0):
                self.name, self.version, self.prefix = "echo", version, prefix

            async def generate(self, chat, tools, sampling, n):
                return [Completion(text=self.prefix + chat[-1].content, finish_reason="stop") for _ in range(n)]

            async def close(self):
                pass

        class NotAPolicy:
            pass
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    policy = load_policy({"kind": "my_policy_mod:EchoPolicy", "prefix": "> ", "version": 3})
    out = asyncio.run(policy.generate([Message(role="user", content="hi")], None, Sampling(), 2))
    assert [c.text for c in out] == ["> hi", "> hi"] and policy.version == 3
    with pytest.raises(ValueError, match="does not implement the Policy protocol"):
        load_policy({"kind": "my_policy_mod:NotAPolicy"})
    with pytest.raises(ValueError, match="bad configuration"):
        load_policy({"kind": "my_policy_mod:EchoPolicy", "nope": 1})
    with pytest.raises(ValueError, match="cannot import"):
        load_policy({"kind": "no_such_mod:X"})
    with pytest.raises(ValueError, match="policy.kind is required"):
        load_policy({})
