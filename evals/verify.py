"""Verification in worker processes, overlapping generation.

Finished completions queue up; whenever a worker is free, everything queued (up to MAX_VERIFY_BATCH) goes to it
as one batch, so the event loop pays one hand-off per batch rather than per sample. Items travel as JSON, which
pydantic reads and writes in compiled code. A batch that hangs or kills its worker comes back as error scores
(kinds "timeout" and "verifier") and the pool is rebuilt; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from environments import Completion, Score, Task

from .adapters import Verify

MAX_VERIFY_BATCH = 16  # enough to amortise the hand-off; small enough to keep every worker busy

# Worker-process side: the verifier factories of the run, and the verifiers built from them on first use.
_factories: list[Callable[[], Verify]] = []
_verifiers: dict[int, Verify] = {}


def _init_worker(factories: list[Callable[[], Verify]], owner: int) -> None:
    _factories[:] = factories
    threading.Thread(target=_exit_with, args=(owner,), daemon=True).start()


def _exit_with(owner: int) -> None:
    """Exit once the evaluation process is gone: a worker of a killed run would otherwise wait on its task
    queue forever (and keep the fork server alive with it)."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(0)


def _verifier(suite: int) -> Verify:
    verify = _verifiers.get(suite)
    if verify is None:
        verify = _verifiers[suite] = _factories[suite]()
    return verify


def _warm_up() -> None:
    for suite in range(len(_factories)):
        _verifier(suite)


def _verify_batch(items: list[tuple[int, str, str]]) -> list[tuple[str, float]]:
    """(suite, task JSON, completion JSON) → (score JSON, seconds). JSON both ways: pydantic reads and writes it
    in compiled code, where pickling the models would walk them in Python on both sides of the pipe."""
    out = []
    for suite, task_json, completion_json in items:
        verify = _verifier(suite)
        task, completion = Task.model_validate_json(task_json), Completion.model_validate_json(completion_json)
        start = time.perf_counter()
        score = verify(task, completion)
        out.append((score.model_dump_json(), time.perf_counter() - start))
    return out


class VerifyPool:
    """Verification in worker processes. Whatever finished while every worker was busy goes as one batch,
    so the event loop pays one hand-off per batch rather than per sample."""

    def __init__(self, factories: list[Callable[[], Verify]], *, workers: int, timeout: float):
        self.factories, self.workers, self.timeout = factories, workers, timeout
        self._queue: list[tuple[int, str, str, asyncio.Future]] = []
        self._ready = asyncio.Event()
        self._slots = asyncio.Semaphore(workers)
        self._pool: ProcessPoolExecutor | None = None
        # Starting blocks until the fork server has imported the environments (a second or more): in a thread,
        # so the first samples generate meanwhile.
        self._starting = asyncio.create_task(asyncio.to_thread(self._start))
        self._batches: set[asyncio.Task] = set()
        self._dispatcher = asyncio.create_task(self._dispatch())

    def _start(self) -> ProcessPoolExecutor:
        pool = self._new_pool()
        for _ in range(self.workers):  # launch every worker and build its verifiers before the first batch
            pool.submit(_warm_up)
        return pool

    def _new_pool(self) -> ProcessPoolExecutor:
        # Workers fork from a single-threaded fork server that has imported every environment once: a plain
        # fork would copy this process's threads (Ray, aiohttp) in an unknown state, and spawn would pay the
        # imports again in every worker of every run.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                   initargs=(self.factories, os.getpid()))

    async def verify(self, suite: int, task_json: str, completion: Completion) -> tuple[Score, float]:
        """The verdict on one completion of the task (given as its JSON) and the seconds it took."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((suite, task_json, completion.model_dump_json(exclude={"token_ids", "logprobs"}), future))
        self._ready.set()
        score_json, seconds = await future
        return Score.model_validate_json(score_json), seconds

    async def _dispatch(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                await self._slots.acquire()
                batch, self._queue = self._queue[:MAX_VERIFY_BATCH], self._queue[MAX_VERIFY_BATCH:]
                task = asyncio.create_task(self._run(batch))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)

    async def _run(self, batch: list[tuple[int, str, str, asyncio.Future]]) -> None:
        try:
            if self._pool is None:
                self._pool = await self._starting
            pool = self._pool
            items = [(suite, task, completion) for suite, task, completion, _ in batch]
            future = asyncio.get_running_loop().run_in_executor(pool, _verify_batch, items)
            results = await asyncio.wait_for(future, self.timeout * len(batch))  # a worker judges one at a time
        except (TimeoutError, BrokenProcessPool) as exc:
            self._restart(pool)  # a hung or dead worker would hold its slot forever
            kind = "timeout" if isinstance(exc, TimeoutError) else "verifier"
            reason = (f"verification timed out ({self.timeout:g} s per sample)" if kind == "timeout"
                      else f"verification process died: {exc!r}")
            error = Score(reward=0.0, accepted=False, error=reason, details={"error_kind": kind})
            results = [(error.model_dump_json(), 0.0)] * len(batch)
        except Exception as exc:  # e.g. a verifier factory that fails in the worker
            error = Score(reward=0.0, accepted=False, error=f"verification failed: {type(exc).__name__}: {exc}",
                          details={"error_kind": "verifier"})
            results = [(error.model_dump_json(), 0.0)] * len(batch)
        finally:
            self._slots.release()
        for (*_, waiter), result in zip(batch, results):
            if not waiter.done():
                waiter.set_result(result)

    def _restart(self, bad: ProcessPoolExecutor) -> None:
        if self._pool is bad:
            for process in list(getattr(bad, "_processes", {}).values()):  # no public API kills workers
                process.terminate()
            bad.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    async def close(self) -> None:
        self._dispatcher.cancel()
        await asyncio.gather(self._dispatcher, return_exceptions=True)
        try:
            pool = self._pool or await self._starting
        except Exception:  # the pool never started: every batch already came back as an error score
            return
        await asyncio.to_thread(functools.partial(pool.shutdown, cancel_futures=True))
