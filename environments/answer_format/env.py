"""The answer-format environment: a small question plus one output-format instruction from the catalog;
the reward says whether the response follows the format exactly (and, by default, whether the answer it
carries is right)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..env import Env
from ..reasoning import parse_reasoning
from ..tasks import DatasetTasks, ProceduralTasks, TaskSource
from ..types import Completion, Score, Task
from .catalog import CATALOG, Format, summary
from .match import matches
from .validators import Spec


class AnswerFormatEnv(Env):
    """Answer in an exact output format, one of 200+ from a data catalog, checked by strict validators.

    Each task is a small question with a known answer (arithmetic, facts, lists, records, tables, dates)
    plus an instruction drawn from environments/answer_format/catalog.toml: LaTeX wrappers such as
    \\boxed{}, JSON, YAML, TOML, XML, CSV/TSV, Markdown, HTML, INI and key–value lines, S-expressions,
    ISO 8601 dates and times, number notations, currency, units, enumerated choices, quoted strings,
    regex templates, answer markers (Answer:, ####), tags (<answer>…</answer>) and multi-part answers.
    A validator checks the format and extracts the answer; the reward is 1 when the format is exact and,
    if the task carries a reference answer and content checking is on, the answer is right.
    `AnswerFormatEnv.catalog_summary()` lists every format.

    Config: `eval_size` (tasks in the fixed eval split, default 500); `reasoning` (share of tasks that ask
    for a <think> block before the answer, 0–1 or a bool, default false); `check_content` (tasks ask for
    the right answer as well as the format, default true); `format_reward` (reward for a well-formatted
    wrong answer, default 0: binary); `formats` / `families` (restrict tasks to these format ids or
    families); `tasks_path` (Parquet/JSONL of tasks instead of generated ones).

    A task's verifier is {"format": id, "params"?: the catalog entry's validator params, "spec": {...},
    "answer"?: reference, "check_content"?: bool, "format_reward"?: float}. The params are recorded so a
    task shows exactly what was checked; a task whose params no longer match the catalog is refused
    (rather than silently verified by a changed format). Without "answer" only the format is checked.
    """

    version = 0

    def __init__(self, name: str, *, eval_size: int = 500, reasoning: bool | float = False,
                 check_content: bool = True, format_reward: float = 0.0, formats: list[str] | None = None,
                 families: list[str] | None = None, tasks_path: str | None = None):
        super().__init__(name, eval_size=eval_size, reasoning=reasoning, check_content=check_content,
                         format_reward=format_reward, formats=formats, families=families, tasks_path=tasks_path)
        if not 0 <= float(reasoning) <= 1 or not 0 <= format_reward < 1:
            raise ValueError("reasoning must be a share in [0, 1] and format_reward in [0, 1)")
        self._formats = _select(formats, families)
        self._reasoning, self._check_content, self._format_reward = float(reasoning), check_content, format_reward
        self._source = DatasetTasks(name, Path(tasks_path)) if tasks_path else \
            ProceduralTasks(name, self._generate, eval_size=eval_size)

    @classmethod
    def catalog_summary(cls) -> str:
        """Every format of the catalog, by family, for `lachesis envs show answer_format`."""
        return summary(CATALOG)

    def tasks(self) -> TaskSource:
        return self._source

    def _generate(self, rng: random.Random) -> dict[str, Any]:
        fmt = rng.choice(self._formats)
        content = fmt.generate(rng)
        verifier: dict[str, Any] = {"format": fmt.id, "params": dict(fmt.params), "spec": content.spec.to_json(),
                                    "answer": content.answer}
        if not self._check_content:
            verifier["check_content"] = False
        if self._format_reward:
            verifier["format_reward"] = self._format_reward
        return {"prompt": f"{content.question}\n\n{fmt.instruction_for(content.spec)}", "verifier": verifier,
                "reasoning": rng.random() < self._reasoning}

    def verify(self, task: Task, completion: Completion) -> Score:
        try:
            fmt, spec, expected, check_content, partial = _read_verifier(task.verifier)
        except ValueError as exc:
            return Score(reward=0.0, accepted=False, error=f"bad task: {exc}", details={})
        details: dict[str, Any] = {"format": fmt.id}
        text = completion.text.replace("\r\n", "\n").replace("\r", "\n")  # CRLF responses mean the same
        parsed = parse_reasoning(text, required=task.reasoning)
        check = fmt.check(parsed.answer, spec) if parsed.error is None else None
        if check is None or not check.ok:
            reason = parsed.error or check.error
            return Score(reward=0.0, accepted=False, error=reason, details={**details, "reason": reason})
        details["extracted"] = check.answer
        if check_content and expected is not None:
            details["expected"] = expected
            if not matches(expected, check.answer):
                return Score(reward=partial, accepted=False,
                             details={**details, "reason": "the answer is well formatted but wrong"})
        return Score(reward=1.0, accepted=True, details=details)


def _select(formats: list[str] | None, families: list[str] | None) -> list[Format]:
    unknown = sorted(set(formats or []) - set(CATALOG)) + sorted(
        set(families or []) - {f.family for f in CATALOG.values()})
    if unknown:
        raise ValueError(f"unknown format ids or families: {unknown}")
    chosen = [f for f in CATALOG.values()
              if (formats is None or f.id in formats) and (families is None or f.family in families)]
    if not chosen:
        raise ValueError("no format matches both `formats` and `families`")
    return chosen


def _read_verifier(verifier: dict[str, Any]) -> tuple[Format, Spec, Any, bool, float]:
    name = verifier.get("format")
    fmt = CATALOG.get(name) if isinstance(name, str) else None
    if fmt is None:
        raise ValueError(f"unknown format {verifier.get('format')!r}")
    if "params" in verifier and verifier["params"] != fmt.params:
        raise ValueError(f"the task's params for {fmt.id!r} differ from the catalog's (made by another catalog "
                         f"version?): {verifier['params']} != {dict(fmt.params)}")
    spec = Spec.from_json(verifier.get("spec", {"shape": "scalar"}))
    if not fmt.accepts(spec):
        raise ValueError(f"format {fmt.id!r} cannot carry a {spec.shape} answer")
    check_content, partial = verifier.get("check_content", True), verifier.get("format_reward", 0.0)
    if not isinstance(check_content, bool) or isinstance(partial, bool) or not isinstance(partial, (int, float)) \
            or not 0 <= partial < 1:
        raise ValueError("check_content must be a bool and format_reward a number in [0, 1)")
    return fmt, spec, verifier.get("answer"), check_content, float(partial)
