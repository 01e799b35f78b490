"""The instruction-following environment: verify a response against every instruction of its task.

Reward: 1.0 when every instruction is followed strictly (the RLVR-IFEval rule, `reward="all"`), or the share
followed (`reward="fraction"`); a response is accepted only when it follows all of them. Score.details
holds the per-instruction verdicts, strict and loose, as IFEval reports them.

Length penalty: a single verification cannot see the other answers of its GRPO group, so the penalty is the
pure function `group_length_penalty(lengths, rewards, weight=...)`, for the rollout code to apply to a
group's rewards. The env's `length_penalty` setting (0 = off) travels in every task's verifier as
`"length_penalty"`, so the rollout finds the weight next to the task.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..env import Env
from ..reasoning import CLOSE, parse_reasoning
from ..tasks import ProceduralTasks, TaskSource
from ..types import Completion, Score, Split, Task
from .registry import FAMILIES, Args, Constraint, ConstraintError, get
from .tasks import IFEvalFile, WithSettings, compose
from .text import loose_variants, normalize

REWARD_MODES = ("all", "fraction")


class IFEvalEnv(Env):
    """Verifiable instruction following: IFEval's 25 instruction types plus RLVR-IFEval and IFBench constraints.

    Tasks are seed prompts carrying 1 to `max_constraints` compatible instructions, deterministic from the
    seed, or the rows of an IFEval-format JSONL file (`tasks_path`). Every constraint is listed, with its
    arguments and meaning, by `python -m environments.ifeval`.

    Config: `tasks_path` (IFEval-format JSONL; procedural tasks when absent), `tasks_split` (put every row of
    the file in this split: "eval" makes a benchmark file the eval split), `skip_unknown` (skip rows with
    instruction ids this environment lacks instead of failing), `max_constraints` (default 3),
    `families` (constraint families drawn from: "ifeval", "iftrain", "ifbench"; default all; leave out
    "ifbench" to keep IFBench's constraints out of distribution for evaluation, as IFBench intends), `reward`
    ("all": 1 only when every instruction is followed; "fraction": the share followed), `length_penalty`
    (weight for `group_length_penalty`, default 0 = off), `reasoning` (tasks ask for a <think> block),
    `eval_size` (procedural eval split size, default 500).
    """

    version = 0

    def __init__(self, name: str, *, tasks_path: str | None = None, tasks_split: Split | None = None,
                 skip_unknown: bool = False, max_constraints: int = 3, families: Iterable[str] = FAMILIES,
                 reward: str = "all", length_penalty: float = 0.0, reasoning: bool = False, eval_size: int = 500):
        families = tuple(families)
        if reward not in REWARD_MODES:
            raise ValueError(f"reward must be one of {REWARD_MODES}, got {reward!r}")
        if not families or not set(families) <= set(FAMILIES):
            raise ValueError(f"families must be a non-empty subset of {FAMILIES}, got {families!r}")
        if tasks_split not in (None, "train", "eval"):
            raise ValueError(f"tasks_split must be 'train', 'eval' or None, got {tasks_split!r}")
        if max_constraints < 1:
            raise ValueError(f"max_constraints must be at least 1, got {max_constraints}")
        if not 0.0 <= length_penalty <= 1.0:
            raise ValueError(f"length_penalty must be between 0 and 1, got {length_penalty}")
        super().__init__(name, tasks_path=tasks_path, tasks_split=tasks_split, skip_unknown=skip_unknown,
                         max_constraints=max_constraints, families=families, reward=reward,
                         length_penalty=length_penalty, reasoning=reasoning, eval_size=eval_size)
        self._max_constraints, self._families, self._reasoning = max_constraints, families, reasoning
        if tasks_path is not None:
            source: TaskSource = IFEvalFile(name, Path(tasks_path), split=tasks_split, reasoning=reasoning,
                                            skip_unknown=skip_unknown)
        else:
            source = ProceduralTasks(name, self._generate, eval_size=eval_size)
        self._source = WithSettings(source, {"reward": reward, "length_penalty": length_penalty})

    def _generate(self, rng: random.Random) -> dict[str, Any]:
        return {**compose(rng, max_constraints=self._max_constraints, families=self._families),
                "reasoning": self._reasoning}

    def tasks(self) -> TaskSource:
        return self._source

    def verify(self, task: Task, completion: Completion) -> Score:
        try:
            ids, constraints = _instructions(task.verifier)
            mode = task.verifier.get("reward", "all")
            if mode not in REWARD_MODES:
                raise ValueError(f"reward must be one of {REWARD_MODES}, got {mode!r}")
        except (ConstraintError, KeyError, TypeError, ValueError) as exc:
            return Score(reward=0.0, accepted=False, error=f"bad task verifier: {exc}")
        parsed = parse_reasoning(completion.text, required=task.reasoning)
        if parsed.error:  # a malformed reasoning block fails every instruction
            failed = [False] * len(ids)
            return Score(reward=0.0, accepted=False, error=parsed.error, details=_details(ids, failed, failed))
        answer = completion.text.split(CLOSE, 1)[1] if CLOSE in completion.text else completion.text
        strict, loose = verdicts(constraints, normalize(answer))
        followed = all(strict)
        reward = float(followed) if mode == "all" else sum(strict) / len(strict)
        return Score(reward=reward, accepted=followed, details=_details(ids, strict, loose))


def _instructions(verifier: dict[str, Any]) -> tuple[list[str], list[tuple[Constraint, Args]]]:
    ids, kwargs = verifier["instruction_id_list"], verifier["kwargs"]
    if not isinstance(ids, list) or not ids:
        raise ValueError("instruction_id_list must be a non-empty list")
    constraints = [(get(cid), get(cid).parse(kw)) for cid, kw in zip(ids, kwargs, strict=True)]
    return ids, constraints


def verdicts(constraints: Sequence[tuple[Constraint, Args]], text: str) -> tuple[list[bool], list[bool]]:
    """Strict and loose verdicts for each (constraint, args) on normalised text."""
    variants = loose_variants(text)
    strict = [c.follows(args, variants[:1]) for c, args in constraints]
    loose = [s or c.follows(args, variants[1:]) for s, (c, args) in zip(strict, constraints)]
    return strict, loose


def _details(ids: list[str], strict: list[bool], loose: list[bool]) -> dict[str, Any]:
    return {"instruction_id_list": ids, "strict": strict, "loose": loose, "strict_all": all(strict),
            "loose_all": all(loose)}


def group_length_penalty(lengths: Sequence[int], rewards: Sequence[float], *, weight: float) -> list[float]:
    """A GRPO group's rewards after the length penalty: only when every member earned 1.0 (the group
    would otherwise carry no signal), the shortest answer keeps 1.0, the longest gets 1 - weight, and the
    rest fall in between in proportion to length. Any other group comes back unchanged."""
    if len(lengths) != len(rewards):
        raise ValueError(f"{len(lengths)} lengths for {len(rewards)} rewards")
    shortest, longest = min(lengths, default=0), max(lengths, default=0)
    if weight == 0 or longest == shortest or any(r != 1.0 for r in rewards):
        return list(rewards)
    return [1.0 - weight * (n - shortest) / (longest - shortest) for n in lengths]
