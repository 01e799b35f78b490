"""The rollout pipeline with every real part: a Ray local cluster, the environment server and the embedded
policy server (SmolLM2-135M-Instruct on the CPU). Small n, few tasks, short completions."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from env_server.client import EnvServerClient
from rollout.embedded import prepare_default_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def policy_url(tmp_path_factory):
    """One embedded policy server for the module (`lachesis policy serve`)."""
    log = tmp_path_factory.mktemp("policy") / "server.log"
    with open(log, "ab") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "lachesis", "policy", "serve", "--port", "0",
                                 "--model", str(prepare_default_model())],
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    assert "listening on " in line, log.read_text()
    yield line.split("listening on ")[1].split()[0]
    proc.terminate()
    proc.wait(timeout=60)


def write_config(path: Path, out: Path, policy_url: str, envs: dict[str, int], env_server: str | None = None) -> Path:
    lines = ['run_id = "pipeline"', f'out_dir = "{out}"', "n = 2", "workers = 2", "concurrency = 1", "shard_tasks = 1",
             *([f'env_server = "{env_server}"'] if env_server else []),
             "[sampling]", "max_tokens = 12", "temperature = 0.8",
             "[policy]", 'kind = "sglang"', f'urls = ["{policy_url}"]',
             "[selection]", "keep = 2", "keep_rejected = true"]
    for name, tasks in envs.items():
        lines += ["[[envs]]", f'name = "{name}"', f"tasks = {tasks}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def lachesis(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lachesis", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def manifest(out: Path) -> list[str]:
    path = out / "manifest.jsonl"
    return [json.loads(line)["task"] for line in path.read_text().splitlines()] if path.exists() else []


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_rollout_on_the_embedded_policy_scores_and_stores_every_sample(tmp_path, policy_url, server):
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "c.toml", out, policy_url, {"arithmetic": 2, "answer_format": 2}, env_server=server.url)
    run = lachesis("rollout", str(cfg))
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    assert sorted(manifest(out)) == ["answer_format/train/0", "answer_format/train/1",
                                     "arithmetic/train/0", "arithmetic/train/1"]
    assert re.search(r"arithmetic\s+2\s+4\s", stdout) and re.search(r"answer_format\s+2\s+4\s", stdout), stdout

    async def leased():  # every group reached the store with the engine's token ids and logprobs
        async with EnvServerClient(server.url) as client:
            return (await client.lease(max_groups=100)).groups

    groups = asyncio.run(leased())
    assert len(groups) == 4
    for g in groups:
        assert g.policy == "default" or g.policy  # the model name the server reports
        assert len(g.trajectories) == 2
        for t in g.trajectories:
            assert t.tokens is not None and t.logprobs is not None
            assert t.score is not None and t.reward == t.score.reward
            assert (t.logprobs[t.masks.astype(bool)] <= 0).all()
    for row in (r for f in out.glob("accepted-*.parquet") for r in pq.read_table(f).to_pylist()):
        assert row["accepted"] and row["token_ids"] and row["policy"]

    log = events(out)
    assert log[0]["event"] == "run_start" and log[-1]["event"] == "run_end"
    assert sum(e["event"] == "task_done" for e in log) == 4
    assert log[-1]["envs"]["arithmetic"]["samples"] == 4


def test_killed_actor_is_requeued_and_a_grown_run_resumes(tmp_path, policy_url):
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "c.toml", out, policy_url, {"arithmetic": 6})
    run = lachesis("rollout", str(cfg), start_new_session=True)
    killed, deadline = False, time.time() + 240
    while not killed and time.time() < deadline and run.poll() is None:
        pids = subprocess.run(["pgrep", "-f", "ray::RolloutWorker"], capture_output=True, text=True).stdout.split()
        if pids and manifest(out):
            os.kill(int(pids[0]), signal.SIGKILL)  # mid-run: it holds tasks in flight
            killed = True
        time.sleep(0.1)
    stdout, stderr = run.communicate(timeout=300)
    assert killed and run.returncode == 0, stderr
    assert re.search(r"requeued [1-9]", stdout), stdout
    assert sorted(manifest(out)) == sorted(f"arithmetic/train/{i}" for i in range(6))
    assert any(e["event"] == "task_requeued" and "died" in e["error"] for e in events(out))

    cfg = write_config(tmp_path / "c.toml", out, policy_url, {"arithmetic": 7})
    rerun = lachesis("rollout", str(cfg))
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert "skipped (done before) 6" in stdout
    keys = manifest(out)
    assert len(keys) == len(set(keys)) == 7
    ids = [r["id"] for f in out.glob("accepted-*.parquet") for r in pq.read_table(f).to_pylist()]
    assert len(ids) == len(set(ids))
