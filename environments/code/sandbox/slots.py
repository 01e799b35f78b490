"""At most N sandboxes at once on this machine, counted across processes.

The environment server verifies in several worker processes, and each runs a program's tests on a thread
pool; without a machine-wide bound, CPU-bound programs would share cores and hit wall-clock limits they
would meet alone. A running sandbox holds an exclusive flock on one of N slot files; the kernel drops the
lock when its holder exits or dies, so a killed worker never leaks a slot.
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Slots:
    def __init__(self, count: int, directory: Path | None = None):
        self.count = count
        self.directory = directory or Path(tempfile.gettempdir()) / f"lachesis-sandbox-slots-{os.geteuid()}"
        self.directory.mkdir(mode=0o700, exist_ok=True)

    @contextmanager
    def hold(self) -> Iterator[int]:
        """Wait for a free slot and hold it for the duration of the block; yields the slot's number."""
        fd, slot = self._acquire()
        try:
            yield slot
        finally:
            os.close(fd)  # closing the only descriptor releases the lock

    def _acquire(self) -> tuple[int, int]:
        delay = 0.0002  # polling, briefly: a freed slot should not sit idle while runs wait
        while True:
            for slot in random.sample(range(self.count), self.count):  # random order: no slot is everyone's first
                fd = os.open(self.directory / f"slot-{slot}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd, slot
                except BlockingIOError:
                    os.close(fd)
            time.sleep(delay)
            delay = min(delay * 2, 0.002)
