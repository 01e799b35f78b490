"""Shared fixtures: a real `lachesis serve` process on an ephemeral loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    url: str
    data_dir: Path
    log: Path  # the server's stderr

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def start_server(data_dir: Path, *args: str) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}.log"  # a file, not a pipe: an unread pipe fills and blocks the server
    with open(log, "ab") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lachesis", "serve", "--port", "0", "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()  # the server prints this one line, then logs to stderr only
    if "listening on " not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r} {log.read_text()}")
    return ServerProcess(proc, line.split("listening on ")[1].split()[0], data_dir, log)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path / "store", "--verify-workers", "2")
    yield srv
    srv.stop()  # SIGTERM: a SIGKILLed server would orphan its verify worker processes


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for a whole module, for tests that do not care about the store's exact contents."""
    srv = start_server(tmp_path_factory.mktemp("store"), "--verify-workers", "2")
    yield srv
    srv.stop()
