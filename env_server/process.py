"""Start a `lachesis` server subcommand as a child process and learn its URL from its first line."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM when its parent dies, even by SIGKILL, so a
    killed run never leaves an orphaned server holding a port, the cores and a model in memory."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@asynccontextmanager
async def lachesis_process(*args: str, startup_timeout: float = 300.0) -> AsyncIterator[str]:
    """Run `python -m lachesis ARGS` (a server printing "... listening on URL ..." first); yield the URL;
    SIGTERM it on exit. Its stderr is inherited, so its logs show with ours."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lachesis", *args, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), startup_timeout)).decode()
        if "listening on " not in line:
            raise RuntimeError(f"`lachesis {' '.join(args)}` did not start (exit code {await proc.wait()}): {line!r}")
        yield line.split("listening on ")[1].split()[0]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
