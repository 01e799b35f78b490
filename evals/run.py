"""The evaluation runner: every environment's eval split (or a benchmark file) against any policy.

Samples are generated concurrently (bounded per endpoint); each finished completion goes to verification
worker processes while the others are still generating, and every sample is logged as soon as it is judged,
so a killed run resumes without regenerating anything it finished. A transient engine failure (EngineError,
an aborted generation) is retried up to `retries` times and counted; a timeout, a refused request or any
other policy failure is logged as that sample's error, never as a wrong answer. Multi-turn environments
play their episodes in this process, against the environment itself.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import Field

import environments
from environments import Completion, Message, Score, Task
from environments.config import validated
from environments.reasoning import parse_reasoning
from environments.types import Split
from rollout.config import Lax
from rollout.episode import assistant_message, prompt_chat
from rollout.policies import EngineError, Policy, RequestError, Sampling

from .adapters import Verify, env_verifier, load_benchmark
from .log import MANIFEST, PARQUET, SUMMARY, SampleLog, SampleRecord, write_json, write_parquet
from .metrics import EnvMetrics, error_kind, is_overlong, summarize
from .policy import describe_policy, open_policy, policy_config, redacted
from .verify import VerifyPool

MAX_TURNS = 32  # a multi-turn episode's own limit (the environment's max_turns) normally ends it first
PARQUET_FROM = 5000  # samples; below, the JSONL log alone is handy (and pyarrow's start-up is not paid)


class EnvRequest(Lax):
    """One environment to evaluate: its eval split (or `split`), or the benchmark file `tasks_path`."""

    name: str
    config: dict[str, Any] = Field(default_factory=dict)  # the environment's own options
    split: Split = "eval"
    limit: int | None = Field(default=None, ge=1)  # the first `limit` tasks
    tasks_path: str | None = None  # a benchmark file in the environment's format (evals.adapters)


class EvalConfig(Lax):
    run_dir: str
    envs: list[EnvRequest] = Field(min_length=1)
    policy: str  # "embedded", "sglang:URL[,URL…]", "openai:URL[,URL…]" or "my_pkg.my_module:MyPolicy"
    policy_options: dict[str, Any] = Field(default_factory=dict)  # the policy's keyword arguments
    samples: int = Field(default=1, ge=1)  # per task: pass@k for every k up to it
    sampling: Sampling = Field(default_factory=Sampling)  # a seed is turned into one per sample
    reasoning: bool | None = None  # force every task's reasoning mode; None: as the tasks say
    concurrency: int = Field(default=32, ge=1)  # requests in flight per endpoint
    retries: int = Field(default=2, ge=0)  # per sample, for transient engine errors
    timeout_s: float = Field(default=600.0, gt=0)  # per generation request
    verify_workers: int = Field(default=2, ge=1)
    verify_timeout_s: float = Field(default=120.0, gt=0)  # per sample judged (a batch gets this times its size)
    parquet: bool | None = None  # also write samples.parquet; None: for large runs (PARQUET_FROM samples or more)

    @classmethod
    def build(cls, **fields: Any) -> EvalConfig:
        """Validate, with errors that name the field."""
        return validated(cls, fields, "evaluation config")


@dataclass
class Suite:
    """One environment's tasks and how they are judged."""

    name: str
    version: int
    config: dict[str, Any]
    pending: Iterator[Task]  # the tasks, made as the run takes them: generation overlaps inference
    verifier: Callable[[], Verify]  # picklable factory, built in each verification worker
    episodes: bool  # multi-turn: played here against the environment, which judges as it goes
    source: str  # where the tasks came from
    tasks: list[Task] = field(default_factory=list)  # those taken so far
    duplicates: int = 0  # tasks skipped because an earlier one had the same id


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, EnvMetrics]
    generated: int  # samples produced by this invocation
    resumed: int  # samples an earlier invocation had finished
    seconds: float


# -- tasks ----------------------------------------------------------------------------------------------


def build_suites(config: EvalConfig) -> list[Suite]:
    names = [e.name for e in config.envs]
    if len(set(names)) != len(names):
        raise ValueError(f"envs: each environment once, got {names}")
    return [_suite(i, e, config.reasoning) for i, e in enumerate(config.envs)]


def _suite(index: int, request: EnvRequest, reasoning: bool | None) -> Suite:
    try:
        spec = environments.spec(request.name)
    except KeyError as exc:
        raise ValueError(f"envs[{index}].name: {exc.args[0]}") from None
    if request.tasks_path:
        bench = load_benchmark(request.name, request.tasks_path, request.config)
        tasks: Iterator[Task] = iter(bench.tasks[:request.limit])
        verifier, episodes, source = bench.verifier, False, f"{bench.format} file {request.tasks_path}"
    else:
        try:
            env = environments.make(request.name, **request.config)
            tasks = env.tasks().iter(request.split, request.limit)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"envs[{index}]: {exc}") from None
        verifier = functools.partial(env_verifier, request.name, request.config)
        episodes, source = spec.cls.multi_turn, f"{request.split} split"
    if reasoning is not None:
        tasks = (t.model_copy(update={"reasoning": reasoning}) for t in tasks)
    if not episodes:
        verifier()  # fail now, in this process, if the verifier cannot be built (a missing module, bad config)
    return Suite(request.name, spec.version, request.config, tasks, verifier, episodes, source)


def _work(suites: list[Suite], samples: int, finished: dict[str, SampleRecord]) -> Iterator[tuple[int, Task, int]]:
    """Every (suite, task, sample) still to do, taking each suite's tasks as they come; each task once."""
    for i, suite in enumerate(suites):
        seen: set[str] = set()
        for task in suite.pending:
            if task.task_id in seen:
                suite.duplicates += 1
                continue
            seen.add(task.task_id)
            suite.tasks.append(task)
            for k in range(samples):
                if _unfinished(finished.get(_key(suite, task, k))):
                    yield i, task, k


# -- one sample -----------------------------------------------------------------------------------------


@dataclass
class Generation:
    completion: Completion | None
    error: str | None
    kind: str | None  # "engine" or "timeout" when no completion came back
    attempts: int
    seconds: float


class _Runner:
    def __init__(self, config: EvalConfig, suites: list[Suite], policy: Policy, log: SampleLog,
                 verifier: VerifyPool | None, progress: Any):
        self.config, self.suites, self.policy, self.log = config, suites, policy, log
        self.verifier, self.progress = verifier, progress
        self._chats: dict[tuple[int, str], tuple[list[Message], list[dict[str, Any]]]] = {}
        self._tasks_json: dict[tuple[int, str], str] = {}
        self._judging: set[asyncio.Task] = set()
        self.generated = 0

    async def run(self, work: Iterator[tuple[int, Task, int]], in_flight: int) -> None:
        async def worker() -> None:
            for item in work:  # shared by every worker: each takes the next item when it is free
                await self._sample(*item)

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        await asyncio.gather(*list(self._judging))

    def _chat(self, suite: int, task: Task) -> tuple[list[Message], list[dict[str, Any]]]:
        key = (suite, task.task_id)
        if key not in self._chats:
            chat = prompt_chat(task)
            self._chats[key] = (chat, [m.model_dump(mode="json", exclude_none=True) for m in chat])
        return self._chats[key]

    def _task_json(self, suite: int, task: Task) -> str:
        key = (suite, task.task_id)
        if key not in self._tasks_json:  # once per task, not per sample
            self._tasks_json[key] = task.model_dump_json()
        return self._tasks_json[key]

    def _sampling(self, task: Task, sample: int) -> Sampling:
        """A base seed becomes one seed per sample: n requests of one sample each must not repeat each other."""
        seed = self.config.sampling.seed
        if seed is None:
            return self.config.sampling
        digest = hashlib.sha256(f"{seed}/{task.task_id}/{sample}".encode()).hexdigest()
        return self.config.sampling.model_copy(update={"seed": int(digest[:8], 16)})

    async def _sample(self, suite: int, task: Task, sample: int) -> None:
        if self.suites[suite].episodes:
            self._finish(await self._episode(suite, task, sample))
            return
        chat, chat_json = self._chat(suite, task)
        sampling = self._sampling(task, sample)
        gen = await self._generate(chat, task, sampling)
        self.generated += 1
        record = self._record(suite, task, sample, chat_json, gen, sampling.seed)
        if gen.completion is None:
            self._finish(record)
            return
        judging = asyncio.create_task(self._judge(suite, task, gen.completion, record))  # overlaps generation
        self._judging.add(judging)
        judging.add_done_callback(self._judging.discard)

    async def _generate(self, chat: list[Message], task: Task, sampling: Sampling) -> Generation:
        start, attempts = time.perf_counter(), 0
        while True:
            attempts += 1
            try:
                async with asyncio.timeout(self.config.timeout_s):  # no extra task per request, unlike wait_for
                    completions = await self.policy.generate(chat, task.tools, sampling, 1)
                if len(completions) != 1:
                    raise RequestError(f"the policy returned {len(completions)} completions for n=1")
                [completion] = completions
                if completion.finish_reason != "abort":
                    return Generation(completion, None, None, attempts, time.perf_counter() - start)
                error = "the engine aborted the generation"
            except TimeoutError:
                return Generation(None, f"no completion within {self.config.timeout_s:g} s", "timeout", attempts,
                                  time.perf_counter() - start)
            except EngineError as exc:  # the only failure worth trying again: the fleet, not the request
                error = str(exc)
            except RequestError as exc:
                return Generation(None, f"request refused: {exc}", "engine", attempts, time.perf_counter() - start)
            except Exception as exc:
                return Generation(None, f"policy failed: {type(exc).__name__}: {exc}", "engine", attempts,
                                  time.perf_counter() - start)
            if attempts > self.config.retries:
                return Generation(None, error, "engine", attempts, time.perf_counter() - start)

    def _record(self, suite: int, task: Task, sample: int, chat_json: list[dict[str, Any]], gen: Generation,
                seed: int | None) -> SampleRecord:
        c = gen.completion
        usage = c.usage if c is not None else None
        return SampleRecord(
            key=_key(self.suites[suite], task, sample), env=self.suites[suite].name,
            task_id=task.task_id, sample=sample, prompt=chat_json, output=c.text if c is not None else None,
            reasoning=parse_reasoning(c.text, required=task.reasoning).reasoning if c is not None else None,
            error=gen.error, error_kind=gen.kind, finish_reason=c.finish_reason if c is not None else None,
            overlong=c is not None and is_overlong(c.text, c.finish_reason),
            prompt_tokens=usage.prompt_tokens if usage else None, completion_tokens=_output_tokens(c),
            latency_s=gen.seconds, attempts=gen.attempts, seed=seed)

    async def _judge(self, suite: int, task: Task, completion: Completion, record: SampleRecord) -> None:
        score, seconds = await self.verifier.verify(suite, self._task_json(suite, task), completion)
        self._finish(_with_score(record, score, seconds))

    async def _episode(self, suite: int, task: Task, sample: int) -> SampleRecord:
        """One multi-turn episode against the environment itself; its final step carries the verdict."""
        s = self.suites[suite]
        env = environments.make(s.name, **s.config)
        await env.reset(options={"task": task})
        chat, chat_json = self._chat(suite, task)
        sampling = self._sampling(task, sample)
        retried, latency, judging, tokens = 0, 0.0, 0.0, 0
        info: dict[str, Any] = {}
        gen = Generation(None, None, None, 1, 0.0)
        for _ in range(MAX_TURNS):
            gen = await self._generate([*chat, *env.messages[len(task.prompt):]], task, sampling)
            retried, latency = retried + gen.attempts - 1, latency + gen.seconds
            if gen.completion is None:
                break
            usage = gen.completion.usage
            tokens += usage.completion_tokens if usage else 0
            start = time.perf_counter()
            _, _, terminated, truncated, info = await env.step(assistant_message(task, gen.completion))
            judging += time.perf_counter() - start
            if terminated or truncated:
                break
        self.generated += 1
        episode = Generation(gen.completion, gen.error, gen.kind, 1 + retried, latency)  # attempts: 1 + retries
        record = self._record(suite, task, sample, chat_json, episode, sampling.seed)
        transcript = [m.model_dump(mode="json", exclude_none=True) for m in env.messages[len(task.prompt):]]
        record = record.model_copy(update={"transcript": transcript, "completion_tokens": tokens or None})
        if gen.completion is None:
            return record
        if "score" in info:
            score = Score.model_validate(info["score"])
        else:  # truncated: the environment's turn limit ended the episode without a verdict
            score = Score(reward=0.0, accepted=False, details={"reason": "episode truncated", **info})
        return _with_score(record, score, judging)

    def _finish(self, record: SampleRecord) -> None:
        self.log.append(record)
        if self.progress is not None:
            self.progress.update(1)


def _output_tokens(c: Completion | None) -> int | None:
    if c is None:
        return None
    if c.usage is not None:
        return c.usage.completion_tokens
    return None if c.token_ids is None else len(c.token_ids)


def _with_score(record: SampleRecord, score: Score, seconds: float) -> SampleRecord:
    return record.model_copy(update={
        "reward": score.reward, "accepted": score.accepted, "details": score.details, "error": score.error,
        "error_kind": error_kind(score.error, score.details), "retry": score.retry,
        "extracted": score.details.get("extracted"), "verify_s": seconds})


# -- the run --------------------------------------------------------------------------------------------


def _identity(config: EvalConfig) -> dict[str, Any]:
    """What must not change when a run is resumed (limits and sample counts may grow)."""
    return {"policy": config.policy, "policy_options": redacted(config.policy_options),
            "sampling": config.sampling.model_dump(mode="json"), "reasoning": config.reasoning,
            "envs": [{"name": e.name, "config": e.config, "split": e.split, "tasks_path": e.tasks_path}
                     for e in config.envs]}


def _check_resumable(run_dir: Path, config: EvalConfig) -> None:
    path = run_dir / MANIFEST
    if not path.exists():
        return
    before = json.loads(path.read_text()).get("identity", {})
    now = json.loads(json.dumps(_identity(config)))
    changed = sorted(k for k in now.keys() | before.keys() if before.get(k) != now.get(k))
    if changed:
        raise ValueError(f"{run_dir} holds a run with a different {', '.join(changed)}: resume it with the same "
                         "settings, or write this run elsewhere")


async def run_eval(config: EvalConfig, *, progress: bool = False) -> RunResult:
    """Run (or resume) an evaluation; write RUN/samples.jsonl, summary.json, manifest.json (and samples.parquet)."""
    run_dir = Path(config.run_dir)
    policy_config(config.policy, config.policy_options)  # a bad spec fails before anything is written
    suites = build_suites(config)
    _check_resumable(run_dir, config)
    log = SampleLog(run_dir)
    start, generated = time.perf_counter(), 0
    try:
        work = _work(suites, config.samples, dict(log.records))
        first = next(work, None)
        if first is not None or not (run_dir / MANIFEST).exists():
            pending = itertools.chain([first] if first else [], work)
            generated = await _generate_all(config, suites, log, pending, progress)
    finally:
        log.close()
    seconds = time.perf_counter() - start
    planned = {_key(s, task, k) for s in suites for task in s.tasks for k in range(config.samples)}
    records = [r for key, r in log.records.items() if key in planned]
    if config.parquet or (config.parquet is None and len(records) >= PARQUET_FROM):
        write_parquet(run_dir / PARQUET, records)
    rows = [r.model_dump() for r in records]
    metrics = {s.name: summarize(s.name, [r for r in rows if r["env"] == s.name], samples_per_task=config.samples)
               for s in suites}
    write_json(run_dir / SUMMARY, _jsonable({name: asdict(m) for name, m in metrics.items()}))
    manifest = json.loads((run_dir / MANIFEST).read_text())
    manifest.update(finished=_now(), seconds=round(manifest.get("seconds", 0.0) + seconds, 3),
                    samples_generated=generated, samples_resumed=len(planned) - generated,
                    envs=_env_entries(suites, finished=True))
    write_json(run_dir / MANIFEST, manifest)
    return RunResult(run_dir, metrics, generated, len(planned) - generated, seconds)


async def _generate_all(config: EvalConfig, suites: list[Suite], log: SampleLog,
                        work: Iterator[tuple[int, Task, int]], progress: bool) -> int:
    """Open the policy, record it in the manifest, and sample and judge every work item."""
    # the verification workers start first, so that they get ready while the policy opens (or its server starts)
    verifier = VerifyPool([s.verifier for s in suites], workers=config.verify_workers,
                          timeout=config.verify_timeout_s) if any(not s.episodes for s in suites) else None
    bar = _progress_bar() if progress else None
    try:
        async with open_policy(config.policy, config.policy_options, config.concurrency) as (policy, endpoints):
            manifest = await _manifest(config, suites, policy, log.path.parent / MANIFEST)
            write_json(log.path.parent / MANIFEST, manifest)
            runner = _Runner(config, suites, policy, log, verifier, bar)
            await runner.run(work, config.concurrency * endpoints)
            manifest["policy"]["name"] = policy.name  # some clients learn the model's name from the server
            manifest["engine_retries_inside_policy"] = getattr(getattr(policy, "pool", None), "errors", 0)
            write_json(log.path.parent / MANIFEST, manifest)
            return runner.generated
    finally:
        if verifier is not None:
            await verifier.close()
        if bar is not None:
            bar.close()


def _key(suite: Suite, task: Task, sample: int) -> str:
    return f"{suite.name}/{task.task_id}/{sample}"


def _unfinished(record: SampleRecord | None) -> bool:
    """Not yet logged, logged without a completion (engine error, timeout), or not judged because the
    verifier failed (Score.retry): those are tried again."""
    return record is None or record.retry or (record.error_kind in ("engine", "timeout") and record.output is None)


async def _manifest(config: EvalConfig, suites: list[Suite], policy: Policy, path: Path) -> dict[str, Any]:
    """The run's manifest; on resume, the earlier one's start and time, after checking the model is the same."""
    from importlib.metadata import PackageNotFoundError, version

    described = await describe_policy(policy, config.policy, config.policy_options)
    earlier = json.loads(path.read_text()) if path.exists() else {}
    for key in ("model", "chat_template"):
        if earlier and earlier["policy"].get(key) != described.get(key):
            raise ValueError(f"{path.parent} was run with policy {key} {earlier['policy'].get(key)}, now "
                             f"{described.get(key)}: write this run elsewhere")
    try:
        lachesis_version = version("lachesis-rl")
    except PackageNotFoundError:
        lachesis_version = None
    return {
        "run_id": Path(config.run_dir).name, "started": earlier.get("started", _now()), "identity": _identity(config),
        "seconds": earlier.get("seconds", 0.0), "policy": described,
        "sampling": config.sampling.model_dump(mode="json"), "max_tokens": config.sampling.max_tokens,
        "reasoning": {None: "as each task says", True: "on", False: "off"}[config.reasoning],
        "samples": config.samples, "concurrency": config.concurrency, "retries": config.retries,
        "timeout_s": config.timeout_s,
        "envs": _env_entries(suites, finished=False),
        "lachesis": lachesis_version, "python": platform.python_version(), "host": platform.node(),
    }


def _env_entries(suites: list[Suite], *, finished: bool) -> list[dict[str, Any]]:
    """The environments as the manifest records them; their tasks once the run has taken them all."""
    entries = [{"name": s.name, "version": s.version, "config": s.config, "source": s.source} for s in suites]
    if finished:
        for entry, s in zip(entries, suites):
            entry.update(tasks=len(s.tasks), duplicate_tasks=s.duplicates, task_ids=[t.task_id for t in s.tasks])
    return entries


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    """NaN (an empty estimate) as null: summary.json stays strict JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _progress_bar() -> Any:
    from tqdm import tqdm

    return tqdm(desc="eval", unit="sample", dynamic_ncols=True)  # no total: tasks are made as the run goes
