"""The `lachesis` command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import start_server


def lachesis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lachesis", *args], capture_output=True, text=True, timeout=600)


def test_help_explains_each_command():
    out = lachesis("--help")
    assert out.returncode == 0
    for command in ("serve", "envs", "store", "demo"):
        assert command in out.stdout
    serve = lachesis("serve", "--help")
    assert "--token" in serve.stdout and "--data-dir" in serve.stdout and "bearer token" in serve.stdout


def test_envs_list_and_show():
    listed = lachesis("envs", "list")
    assert listed.returncode == 0 and "arithmetic" in listed.stdout and "lachesis/Arithmetic-v0" in listed.stdout
    shown = lachesis("envs", "show", "arithmetic")
    assert shown.returncode == 0
    assert "eval tasks: 500" in shown.stdout and '"verifier"' in shown.stdout
    missing = lachesis("envs", "show", "nope")
    assert missing.returncode == 2 and "unknown environment 'nope'" in missing.stderr


def test_store_stats_reads_a_running_server(tmp_path):
    srv = start_server(tmp_path / "store")
    try:
        out = lachesis("store", "stats", "--url", srv.url)
        assert out.returncode == 0 and "queued" in out.stdout and "acknowledged" in out.stdout
    finally:
        srv.stop()
    down = lachesis("store", "stats", "--url", srv.url)
    assert down.returncode == 1 and "cannot read" in down.stderr


@pytest.mark.timeout(900)  # the README's main job at its smallest (about 80 s on 2 cores): kept in the default run
def test_main_job_runs_end_to_end_on_the_embedded_model(tmp_path):
    work = tmp_path / "demo"
    out = lachesis("demo", "--workdir", str(work), "--tasks", "2", "--n", "3", "--max-tokens", "48",
                   "--train-steps", "1", "--eval-tasks", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    for env in ("arithmetic", "answer_format", "ifeval"):
        assert f"\n{env} " in out.stdout  # a row of the rollout summary
    assert "failed 0" in out.stdout and "[4/4]" in out.stdout
    assert (work / "rollout" / "manifest.jsonl").read_text().count("\n") == 6
    assert (work / "train" / "hf" / "config.json").exists()
    report = (work / "eval-after" / "report.md").read_text()
    assert "before" in out.stdout and "after" in out.stdout and "arithmetic" in report


def test_envs_show_lists_the_answer_format_catalog():
    shown = lachesis("envs", "show", "answer_format")
    assert shown.returncode == 0
    assert "answer formats in" in shown.stdout and "json" in shown.stdout.lower() and "boxed" in shown.stdout


def test_a_server_started_for_a_run_dies_with_the_run(tmp_path):
    """`kill -9` of a run (rollout, eval, demo) must not orphan the servers it started."""
    import signal
    import textwrap
    import time
    import urllib.request

    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f'''
        import asyncio, sys
        from env_server.process import lachesis_process
        async def main():
            async with lachesis_process("serve", "--port", "0", "--data-dir", {str(tmp_path / "store")!r}) as url:
                print(url, flush=True)
                await asyncio.sleep(600)
        asyncio.run(main())
    '''))
    run = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    url = run.stdout.readline().strip()
    assert urllib.request.urlopen(url + "/healthz", timeout=10).status == 200
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
        except OSError:
            return  # the server is gone
        time.sleep(0.2)
    pytest.fail("the server outlived the run that started it")
