"""DataForge runs end to end: real Parquet shards and manifests, export to the trajectory schema, kill -9 and
resume to the identical output, deferral of engine failures, Ray actors, the command line, the dataforge
environment, and a small run on the real embedded policy server.

The endpoint for most tests is a canned OpenAI-compatible aiohttp server started by the test: deterministic
(its reply is a hash of the messages and the seed) so that two runs can be compared byte for byte; it
stands in for the engine only so the orchestration itself can be checked quickly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import environments
from datagen.output import done_walks, export, manifests, read_rows
from datagen.run import DatagenConfig, run_datagen
from environments.types import Completion, Message
from lachesis.cli import main
from rollout.policies import EngineError
from rollout.policies.openai import OpenAIPolicy
from rollout.shards import read_messages

CANNED = textwrap.dedent('''
    import asyncio, hashlib, json, sys
    from aiohttp import web
    delay = float(sys.argv[2])
    async def chat(request):
        body = await request.json()
        await asyncio.sleep(delay)
        msgs = body["messages"]
        h = hashlib.sha256((json.dumps(msgs) + str(body.get("seed"))).encode()).hexdigest()
        system = msgs[0]["content"] if msgs[0]["role"] == "system" else ""
        if "Score each criterion" in system:  # a judge: a quarter of the verdicts fail
            names = [line.split(":")[0][2:] for line in system.splitlines() if line.startswith("- ")]
            ok = int(h[:2], 16) >= 64
            text = json.dumps({"scores": {n: 5 if ok else 2 for n in names}, "feedback": "" if ok else "be specific"})
        elif "Reply with JSON only" in system:
            text = json.dumps({"name": "a reader " + h[:4], "description": "wants to learn"})
        elif "taxonomies" in system:
            text = "\\n".join(f"- Subtopic {h[i:i + 3]}" for i in range(3))
        else:
            text = f"Generated text {h[:12]} for the request."
        return web.json_response({"choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": text}}],
                                  "usage": {"prompt_tokens": 20, "completion_tokens": 7}})
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    async def start():
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print("listening on http://127.0.0.1:%d" % site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()
    asyncio.run(start())
''')


def start_endpoint(tmp: Path, delay: float) -> tuple[subprocess.Popen, str]:
    script = tmp / "canned.py"
    script.write_text(CANNED)
    proc = subprocess.Popen([sys.executable, str(script), "0", str(delay)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening on " in line, line
    return proc, line.split("listening on ")[1].strip()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory) -> Iterator[str]:
    proc, url = start_endpoint(tmp_path_factory.mktemp("canned"), 0.0)
    yield url
    proc.kill()
    proc.wait()


def config_doc(out: Path, url: str, **overrides) -> dict:
    doc = {"run_id": "test", "out_dir": str(out), "replicates": 2, "concurrency": 8, "shard_walks": 5,
           "seeds": [{"path": "builtin", "license": "CC0-1.0"}], "dedup": {"semantic": False},
           "policies": {"canned": {"kind": "openai", "urls": [url], "model": "canned"}},
           "sampling": {"default": {"max_tokens": 64}}, "graph": {"taxonomy_breadth": 3}}
    return {**doc, **overrides}


def toml(doc: dict) -> str:
    """Just enough TOML for these configs (JSON strings, numbers and arrays are TOML too)."""
    def value(v):
        return str(v).lower() if isinstance(v, bool) else json.dumps(v)
    lines = [f"{k} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict | list)]

    def table(name: str, d: dict) -> None:
        lines.extend(["", f"[{name}]"] + [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, dict)])
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{name}.{k}", v)
    for item in doc.get("seeds", []):
        lines.extend(["", "[[seeds]]"] + [f"{k} = {value(v)}" for k, v in item.items()])
    for k, v in doc.items():
        if isinstance(v, dict):
            table(k, v)
    return "\n".join(lines) + "\n"


def outputs(out: Path) -> dict[str, set]:
    """The output set of a run, as comparable tuples."""
    walks = {(w["walk_id"], tuple(w["path"]), w["status"], w["final_state"]) for w in read_rows(out, "walks")}
    samples = {(s["walk_id"], s["prompt"], s["answer"]) for s in read_rows(out, "samples")}
    calls = {(c["call_id"], c["response"], c["accepted"]) for c in read_rows(out, "calls")}
    return {"walks": walks, "samples": samples, "calls": calls}


@pytest.fixture(scope="module")
def reference(endpoint, tmp_path_factory) -> Path:
    """One complete in-process run, the reference other runs are compared with."""
    out = tmp_path_factory.mktemp("reference") / "run"
    summary = asyncio.run(run_datagen(DatagenConfig.model_validate(config_doc(out, endpoint))))
    assert summary.deferred == 0 and sum(summary.statuses.values()) == 24
    return out


def test_a_run_writes_walks_calls_samples_and_a_manifest(reference):
    walks, calls, samples = (read_rows(reference, k) for k in ("walks", "calls", "samples"))
    assert len(walks) == 24 and len({w["walk_id"] for w in walks}) == 24  # 12 seeds x 2 replicates
    statuses = {w["status"] for w in walks}
    assert "accepted" in statuses and statuses <= {"accepted", "judge_exhausted", "node_failed"}
    accepted = [w for w in walks if w["status"] == "accepted"]
    assert len(samples) == len(accepted) and {s["license"] for s in samples} == {"CC0-1.0"}
    assert any(p.startswith("taxonomy/expand") for w in accepted for p in w["path"])  # domain seeds
    assert any(p.startswith("transform/") for w in accepted for p in w["path"])
    roles = {c["role"] for c in calls}
    assert {"transform", "instruct", "answer", "judge", "taxonomy"} <= roles
    judge = next(c for c in calls if c["role"] == "judge")
    assert judge["messages"][0]["role"] == "system" and json.loads(judge["parsed"])["scores"]
    assert all(c["completion_tokens"] == 7 and c["latency_ms"] > 0 and c["model"] == "canned" for c in calls)
    assert any(c["accepted"] is False for c in calls) and any(c["attempt"] == 1 for c in calls)  # retries happened
    assert len(manifests(reference)) == 24 and sorted(p.name for p in reference.glob("walks-*.parquet")) == [
        f"walks-w000-0000{i}.parquet" for i in range(1, 6)]
    sample = samples[0]
    assert sample["answer"] and sample["instruction"] and sample["call_ids"] and sample["system"]
    assert "rejected your previous attempt" not in sample["prompt"]
    assert json.loads((reference / "run.json").read_text())["run_id"] == "test"
    assert pq.read_table(reference / "seeds.parquet").num_rows == 12


def test_export_renders_trajectory_rows(reference, tmp_path):
    n = export(reference, tmp_path / "final")
    rows = pq.read_table(tmp_path / "final" / "trajectories.parquet").to_pylist()
    samples = read_rows(reference, "samples")
    assert n == len(rows) == len(samples)
    chat = read_messages(rows[0])  # what the trainer consumes
    assert [m.role for m in chat] == ["system", "user", "assistant"] and rows[0]["env"] == "dataforge"
    assert {r["answer"] for r in samples} == {read_messages(r)[-1].content for r in rows}
    assert json.loads(rows[0]["score"])["details"]["license"] == "CC0-1.0"
    n_all = export(reference, tmp_path / "all", intermediate=True)
    rows = pq.read_table(tmp_path / "all" / "trajectories.parquet").to_pylist()
    roles = {json.loads(r["score"])["details"]["task_role"] for r in rows}
    assert n_all > n and {"final", "transform", "instruct", "answer", "judge"} <= roles
    judged = [r for r in rows if json.loads(r["score"])["details"]["task_role"] == "judge"]
    assert all("Score each criterion" in read_messages(r)[0].content for r in judged)
    assert export(reference, tmp_path / "none", exclude_licenses=["CC0-1.0"]) == 0


def test_a_finished_run_is_skipped_and_a_changed_one_refused(reference, endpoint):
    config = DatagenConfig.model_validate(config_doc(reference, endpoint))
    before = outputs(reference)
    summary = asyncio.run(run_datagen(config))
    assert summary.skipped == 24 and summary.calls == 0 and outputs(reference) == before
    changed = DatagenConfig.model_validate(config_doc(reference, endpoint, graph={"refine": False}))
    with pytest.raises(ValueError, match="made with another graph, models or sampling"):
        asyncio.run(run_datagen(changed))


def test_kill_and_resume_gives_the_identical_output(reference, tmp_path):
    proc, url = start_endpoint(tmp_path, 0.03)  # a slower endpoint, so the kill lands mid-run
    try:
        out = tmp_path / "run"
        config = tmp_path / "run.toml"
        config.write_text(toml(config_doc(out, url, concurrency=4, shard_walks=2)))
        cmd = [sys.executable, "-m", "lachesis", "datagen", "run", str(config)]
        log = open(tmp_path / "killed.log", "w")  # a file, not a pipe: an unread pipe would block the run
        run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 120
        while len(done_walks(out)) < 4 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        run.send_signal(signal.SIGKILL)
        run.wait()
        log.close()
        killed_at = done_walks(out)
        assert 4 <= len(killed_at) < 24, (tmp_path / "killed.log").read_text()
        resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert f"{len(killed_at)} done before" in resumed.stdout
    finally:
        proc.kill()
        proc.wait()
    entries = manifests(out)
    assert len(entries) == len({e["walk"] for e in entries}) == 24  # nothing written twice
    named = {f"{k}-{e['worker']}-{e['shard']:05d}.parquet" for e in entries for k in ("walks", "calls", "samples")}
    assert {p.name for p in out.glob("*.parquet") if p.name != "seeds.parquet"} == named  # no orphan shard
    mine, theirs = outputs(out), outputs(reference)
    assert mine["walks"] == theirs["walks"] and mine["samples"] == theirs["samples"]
    assert mine["calls"] == theirs["calls"]
    # walks in flight at the kill replayed their finished calls from the cache
    replayed = [c for c in read_rows(out, "calls") if c["cache_hit"] and c["walk_id"] not in killed_at
                and c["role"] != "taxonomy"]
    assert replayed


class FlakyPolicy(OpenAIPolicy):
    """Test double around the real OpenAI client: the first `fail` calls raise EngineError (a fleet outage)."""

    failed = 0

    def __init__(self, *, fail: int, **kwargs):
        super().__init__(**kwargs)
        self.fail = fail

    async def generate(self, chat, tools, sampling, n):
        if FlakyPolicy.failed < self.fail:
            FlakyPolicy.failed += 1
            raise EngineError("inference failed after 5 attempts; last: 503")
        return await super().generate(chat, tools, sampling, n)


def test_engine_failures_defer_walks_and_never_record_them(reference, endpoint, tmp_path):
    flaky = {"kind": "test_datagen_run:FlakyPolicy", "fail": 6, "urls": [endpoint], "model": "canned"}
    FlakyPolicy.failed = 0
    doc = config_doc(tmp_path / "a", endpoint, policies={"canned": flaky}, defer_seconds=0)
    summary = asyncio.run(run_datagen(DatagenConfig.model_validate(doc)))
    assert FlakyPolicy.failed == 6 and summary.deferred == 0
    assert outputs(tmp_path / "a")["walks"] == outputs(reference)["walks"]  # as if nothing had failed

    FlakyPolicy.failed = 0
    doc = config_doc(tmp_path / "b", endpoint, policies={"canned": flaky}, max_deferrals=0)
    summary = asyncio.run(run_datagen(DatagenConfig.model_validate(doc)))
    assert 1 <= summary.deferred <= 6 and len(done_walks(tmp_path / "b")) == 24 - summary.deferred
    assert all(w["status"] != "node_failed" for w in read_rows(tmp_path / "b", "walks") if "503" in (w["error"] or ""))
    summary = asyncio.run(run_datagen(DatagenConfig.model_validate(doc)))  # the next run finishes them
    assert summary.deferred == 0 and outputs(tmp_path / "b")["walks"] == outputs(reference)["walks"]


@pytest.mark.slow  # starts a Ray cluster
def test_ray_actors_produce_the_same_output_even_when_one_is_killed(reference, tmp_path):
    """Two actors against a slow endpoint; one is killed -9 once a shard is on disk. Its share goes to a fresh
    actor, which skips the walks already written: the output equals the in-process reference exactly."""
    import threading

    import ray

    proc, slow = start_endpoint(tmp_path, 0.15)
    out = tmp_path / "ray"
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = asyncio.run(run_datagen(DatagenConfig.model_validate(
                config_doc(out, slow, workers=2, concurrency=2))))
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        driver = threading.Thread(target=run)
        driver.start()
        killed, deadline = False, time.time() + 120
        while not killed and driver.is_alive() and time.time() < deadline:
            pids = subprocess.run(["pgrep", "-f", "ray::WalkWorker"], capture_output=True, text=True).stdout.split()
            if pids and manifests(out) and len(manifests(out)) < 24:
                os.kill(int(pids[0]), signal.SIGKILL)
                killed = True
            time.sleep(0.05)
        driver.join(timeout=300)
    finally:
        ray.shutdown()
        proc.kill()
        proc.wait()
    assert killed, "the run finished before an actor could be killed"
    assert "error" not in result, result.get("error")
    assert result["summary"].deferred == 0
    assert {e["worker"] for e in manifests(out)} == {"w000", "w001"}
    walk_ids = [w["walk_id"] for w in read_rows(out, "walks")]
    assert len(walk_ids) == len(set(walk_ids)) == 24  # nothing lost, nothing written twice
    assert outputs(out) == outputs(reference)


def test_command_line(reference, endpoint, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(toml(config_doc(tmp_path / "out", endpoint)))
    assert main(["datagen", "draw", str(config), "--format", "dot", "--collapse", "3"]) == 0
    assert capsys.readouterr().out.startswith('digraph "dataforge"')
    assert main(["datagen", "draw", "datagen.pipeline:build_graph", "-o", str(tmp_path / "g.mmd")]) == 0
    assert "instruct_summarize --> respond" in (tmp_path / "g.mmd").read_text()
    assert main(["datagen", "export", str(reference), "--dest", str(tmp_path / "x"), "--intermediate"]) == 0
    assert "conversations written to" in capsys.readouterr().out
    config.write_text(toml({**config_doc(tmp_path / "out", endpoint), "replicates": 0}))
    assert main(["datagen", "run", str(config)]) == 2
    assert "replicates: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert main(["datagen", "draw", "datagen.state:Seed"]) == 2
    assert "not a datagen Graph" in capsys.readouterr().err


def test_config_errors_name_the_field(endpoint, tmp_path):
    doc = config_doc(tmp_path, endpoint)
    for change, message in ((dict(roles={"judge": "big"}), "roles.judge: no policy named 'big'"),
                            (dict(roles={"judges": "canned"}), "roles.judges: unknown role"),
                            (dict(policies={"a": {"kind": "openai"}, "b": {"kind": "openai"}}), "roles.default"),
                            (dict(policies={"a": {"urls": []}}), "policies.a.kind: required")):
        with pytest.raises(ValueError, match=message):
            DatagenConfig.model_validate({**doc, **change})


# -- the environment -------------------------------------------------------------------------------------
def test_dataforge_environment_rewards_with_the_rubric_judge(endpoint, reference, shared_server):
    judge = {"kind": "openai", "urls": [endpoint], "model": "canned"}
    env = environments.make("dataforge", judge=judge)
    tasks = [env.tasks().get("train", i) for i in range(6)]
    scores = [env.verify(t, Completion(text=f"An answer {i}.")) for i, t in enumerate(tasks)]
    assert all(s.error is None and set(s.details["scores"]) == {"coherence", "relevance", "complexity", "style", "tone"}
               for s in scores)
    assert {s.accepted for s in scores} <= {True, False} and all(s.reward == (1.0 if s.accepted else 0.25) for s in scores)

    async def episode():
        obs, info = await env.reset(seed=3)
        return await env.step(Message(role="assistant", content="An answer."))
    _, reward, terminated, _, info = asyncio.run(episode())
    assert terminated and 0 <= reward <= 1 and "scores" in info["score"]["details"]

    from env_server.client import EnvServerClient  # the verdict also travels through the server's verify workers

    async def via_server():
        async with EnvServerClient(shared_server.url) as client:
            return await client.verify("dataforge", [(tasks[0], Completion(text="An answer 0."))])
    [remote] = asyncio.run(via_server())
    assert remote["reward"] == scores[0].reward and remote["accepted"] == scores[0].accepted

    from_run = environments.make("dataforge", judge=judge, samples=str(reference))
    size = from_run.tasks().size("train") + from_run.tasks().size("eval")
    assert size == len(read_rows(reference, "samples"))
    unjudged = environments.make("dataforge")  # tasks carry their judge: these have none
    score = unjudged.verify(unjudged.tasks().get("train", 0), Completion(text="x"))
    assert not score.accepted and "no judge policy" in score.error


def test_dataforge_judge_failures_are_no_verdicts(tmp_path, monkeypatch):
    """A judge that is down asks for a retry (rollout samples the task again later); one that refuses the
    request gives no verdict without a retry. Neither is the answer's fault: evals leave both out."""
    from evals.metrics import error_kind

    (tmp_path / "judges_mod.py").write_text(textwrap.dedent('''
        from rollout.policies import EngineError, RequestError

        class Judge:  # stands in for the judge's endpoint pool after its own retries
            name, version, error = "judge", 0, EngineError

            def __init__(self, **_):
                pass

            async def generate(self, chat, tools, sampling, n):
                raise self.error("the endpoint answered 503")

            async def close(self):
                pass

        class Refusing(Judge):
            error = RequestError
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    for kind, retry, message in (("judges_mod:Judge", True, "judge unavailable"),
                                 ("judges_mod:Refusing", False, "judge refused the request")):
        env = environments.make("dataforge", judge={"kind": kind})
        score = env.verify(env.tasks().get("train", 0), Completion(text="An answer."))
        assert score.retry is retry and not score.accepted and score.error.startswith(message)
        assert error_kind(score.error, score.details) == "verifier"


# -- the real embedded model -----------------------------------------------------------------------------
@pytest.mark.slow  # starts the embedded policy server (SmolLM2-135M on the CPU)
def test_a_small_run_on_the_embedded_policy(tmp_path):
    """Two walks (instruction, answer, judged) on SmolLM2-135M: short passages and few tokens keep it small."""
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\n".join(json.dumps({"id": f"s{i}", "text": text}) for i, text in enumerate((
        "Honeybees tell each other where flowers are with a waggle dance; its angle gives the direction.",
        "Tides come mainly from the Moon's gravity, which pulls the oceans into two bulges.")) ) + "\n")
    doc = {"run_id": "embedded", "out_dir": str(tmp_path / "run"), "replicates": 1,
           "seeds": [{"path": str(seeds), "license": "CC0-1.0"}], "cleaning": {"min_chars": 20},
           "dedup": {"semantic": False}, "policies": {"smol": {"kind": "embedded"}},
           "sampling": {"default": {"max_tokens": 12, "temperature": 0.7}, "judge": {"max_tokens": 16, "temperature": 0.0}},
           "graph": {"transformations": [], "instructions": ["summarize", "short_answer"], "answerers": ["concise"],
                     "personas": False, "taxonomy": False, "refine": False,
                     "judge": {"families": ["answer"], "max_attempts": 1}}}
    summary = asyncio.run(run_datagen(DatagenConfig.model_validate(doc)))
    walks, calls = read_rows(tmp_path / "run", "walks"), read_rows(tmp_path / "run", "calls")
    assert summary.deferred == 0 and len(walks) == 2 and len(calls) == 6  # instruct, answer, judge per walk
    assert [c["role"] for c in calls] == ["instruct", "answer", "judge"] * 2
    assert all(c["model"].startswith("smollm2") and not c["cache_hit"] and c["latency_ms"] > 0 for c in calls)
    assert all(0 < c["completion_tokens"] <= (16 if c["role"] == "judge" else 12) for c in calls)
    judged = [c for c in calls if c["role"] == "judge"]
    assert all(c["accepted"] is not None for c in judged)  # a verdict, readable or not, decided each answer
