"""DataForge tasks as an environment, rewarded by the rubric judge's verdict.

The same rubric that filters DataForge's generated answers scores a policy's answer here, so one graph
drives data generation, rejection sampling (`lachesis rollout` over this environment) and evaluation.
Each task carries everything its verdict needs (the rubric, the instruction and passage, the judge policy's
configuration), so the verifier runs anywhere, including the environment server's verify processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from datagen.catalog import BUILTIN_SEEDS, load_catalog
from datagen.judge import Rubric

from ..env import Env, StepResult
from ..reasoning import parse_reasoning
from ..tasks import ProceduralTasks, TaskSource, _task, content_hash, split_of
from ..types import Completion, Message, Score, Split, Task

USER_TURN = "Text:\n{passage}\n\n{instruction}"


class RunTasks(TaskSource):
    """The accepted samples of a DataForge run (its out_dir), split by content hash."""

    def __init__(self, env: str, run_dir: str | Path, verifier: dict[str, Any]):
        from datagen.output import read_rows

        rows = read_rows(run_dir, "samples")
        if not rows:
            raise ValueError(f"dataforge: {run_dir} has no accepted samples")
        self._splits: dict[str, list[Task]] = {"train": [], "eval": []}
        for row in rows:
            prompt = ([{"role": "system", "content": row["system"]}] if row["system"] else []) + [
                {"role": "user", "content": row["prompt"]}]
            fields = {"prompt": [Message(**m) for m in prompt], "verifier": {
                **verifier, "instruction": {"kind": row["instruction_kind"], "mode": row["instruction_mode"],
                                            "text": row["instruction"]},
                "passage": None if row["passage"] is None else {"text": row["passage"]}, "license": row["license"]}}
            digest = content_hash({"prompt": prompt, "walk": row["walk_id"]})
            task = _task(env, fields, split_of(digest), f"{env}-{digest[:16]}")
            self._splits[task.split].append(task)

    def size(self, split: Split) -> int | None:
        return len(self._splits[split])

    def get(self, split: Split, index: int) -> Task:
        return self._splits[split][index]


class DataForgeEnv(Env):
    """Open-ended instructions (DataForge's), rewarded by a rubric judge model: the mean rubric score mapped
    to [0, 1]; accepted when the verdict passes the rubric's thresholds.

    Config: `judge` (the judge policy: {"kind": "openai" | "sglang" | "module:Class", ...}; required for
    verdicts), `samples` (a DataForge run's out_dir: its accepted samples are the tasks; default: the
    catalog's direct instructions over its example passages), `rubric` (a catalog rubric, default "answer"),
    `catalog` (a directory extending the catalog), `judge_max_tokens` (default 256), `eval_size` (default 50).
    """

    version = 0

    def __init__(self, name: str, *, judge: dict[str, Any] | None = None, samples: str | None = None,
                 rubric: str = "answer", catalog: str | None = None, judge_max_tokens: int = 256, eval_size: int = 50):
        super().__init__(name, judge=judge, samples=samples, rubric=rubric, catalog=catalog,
                         judge_max_tokens=judge_max_tokens, eval_size=eval_size)
        cat = load_catalog(catalog)
        if rubric not in cat.rubrics:
            raise ValueError(f"rubric {rubric!r}: not in the catalog (rubrics: {', '.join(sorted(cat.rubrics))})")
        if judge is not None and "kind" not in judge:
            raise ValueError("judge.kind is required ('openai', 'sglang' or 'module:Class')")
        verifier = {"rubric": cat.rubrics[rubric].model_dump(), "judge": judge, "max_tokens": judge_max_tokens}
        if samples is not None:
            self._source: TaskSource = RunTasks(name, samples, verifier)
        else:
            passages = [d["text"] for line in BUILTIN_SEEDS.read_text().splitlines()
                        if line.strip() and (d := json.loads(line)).get("kind", "passage") == "passage"]
            kinds = [k for k in cat.instructions.items if k.direct]
            self._source = ProceduralTasks(name, lambda rng: self._direct_task(rng, passages, kinds, verifier),
                                           eval_size=eval_size)

    @staticmethod
    def _direct_task(rng: random.Random, passages: list[str], kinds: list, verifier: dict[str, Any]) -> dict[str, Any]:
        passage, kind = rng.choice(passages), rng.choice(kinds)
        return {"prompt": USER_TURN.format(passage=passage, instruction=kind.direct), "verifier": {
            **verifier, "instruction": {"kind": kind.id, "mode": "contextual", "text": kind.direct},
            "passage": {"text": passage}, "license": "CC0-1.0"}}

    def tasks(self) -> TaskSource:
        return self._source

    async def judge(self, task: Task, completion: Completion) -> Score:
        """The rubric verdict on an answer. Never raises: an unreachable judge is an error score."""
        from rollout.policies import EngineError, RequestError, Sampling, load_policy

        v = task.verifier
        parsed = parse_reasoning(completion.text, required=task.reasoning)
        if parsed.error:
            return Score(reward=0.0, accepted=False, error=parsed.error)
        if v.get("judge") is None:
            return Score(reward=0.0, accepted=False, error="no judge policy: configure the environment with judge={...}")
        rubric = Rubric.model_validate(v["rubric"])
        parts = {"instruction": v["instruction"], "passage": v["passage"], "answer": {"text": parsed.answer}}
        seed = int(hashlib.sha256(f"{task.task_id}|{parsed.answer}".encode()).hexdigest()[:8], 16)
        sampling = Sampling(temperature=0.0, max_tokens=int(v.get("max_tokens", 256)), seed=seed)
        chat = [Message(role="system", content=rubric.system_prompt),
                Message(role="user", content=rubric.user_prompt(parts))]
        policy = load_policy(dict(v["judge"]))
        try:
            [verdict_text] = [c.text for c in await policy.generate(chat, None, sampling, 1)]
        except EngineError as exc:  # down or overloaded: the same answer is judged again later
            return Score(reward=0.0, accepted=False, error=f"judge unavailable: {exc}", retry=True,
                         details={"error_kind": "verifier"})
        except RequestError as exc:  # the judge refused this request (e.g. beyond its context): no verdict
            return Score(reward=0.0, accepted=False, error=f"judge refused the request: {exc}",
                         details={"error_kind": "verifier"})
        finally:
            await policy.close()
        verdict = rubric.verdict(verdict_text, "dataforge", 0)
        if not verdict.scores:
            return Score(reward=0.0, accepted=False, error="the judge's verdict could not be parsed",
                         details={"verdict": verdict_text[:500]})
        return Score(reward=rubric.reward(verdict.scores), accepted=verdict.passed,
                     details={"scores": verdict.scores, "feedback": verdict.feedback, "judge": policy.name})

    def verify(self, task: Task, completion: Completion) -> Score:
        """Synchronous verdict (batch verification): the judge call runs on its own event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.judge(task, completion))
        with ThreadPoolExecutor(1) as pool:  # called from inside a loop: do not nest it
            return pool.submit(asyncio.run, self.judge(task, completion)).result()

    async def step(self, action: Message) -> StepResult:
        """As Env.step, but the judge call is awaited instead of blocking the event loop."""
        completion = self.record(action)
        try:
            score = await self.judge(self.task, completion)
        except Exception as exc:  # as Env.score: a verifier bug is an error score, not a dead session
            score = Score(reward=0.0, accepted=False, error=f"verifier error: {type(exc).__name__}: {exc}")
        return self.finish(score)
