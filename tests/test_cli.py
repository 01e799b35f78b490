"""The `lachesis` command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from conftest import start_server


def lachesis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lachesis", *args], capture_output=True, text=True, timeout=120)


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


def test_demo_runs_end_to_end(tmp_path):
    out = lachesis("demo", "--workdir", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    assert "8 accepted" in out.stdout and "duplicate=True" in out.stdout and "NaN reward is refused" in out.stdout
    assert "'acknowledged': 8" in out.stdout.splitlines()[-1]
