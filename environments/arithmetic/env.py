"""Procedurally generated arithmetic word problems, answered in `\\boxed{}`, verified exactly.

Problems chain one to three integer operations through a small story, so the answer is always an exact
integer and a small model gets some of them right (useful for exercising rejection sampling end to end).
"""

from __future__ import annotations

import random
import re
from fractions import Fraction
from typing import Any

from ..env import Env
from ..reasoning import parse_reasoning
from ..tasks import ProceduralTasks, TaskSource
from ..types import Completion, Score, Task

NAMES = ["Ana", "Ben", "Chen", "Dara", "Emeka", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena"]
ITEMS = ["apples", "books", "coins", "marbles", "pencils", "stamps", "shells", "stickers", "cards", "beads"]
INSTRUCTION = "Solve the problem. Put the final answer, a single number, in \\boxed{}."


def _problem(rng: random.Random) -> dict[str, Any]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    total = rng.randint(2, 60)
    lines = [f"{name} has {total} {item}."]
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["gain", "lose", "packs", "share"])
        if op == "gain":
            n = rng.randint(1, 50)
            total += n
            lines.append(f"Then {name} finds {n} more {item}.")
        elif op == "lose" and total > 1:
            n = rng.randint(1, total - 1)
            total -= n
            lines.append(f"Then {name} gives away {n} {item}.")
        elif op == "packs":
            packs, each = rng.randint(2, 6), rng.randint(2, 12)
            total += packs * each
            lines.append(f"Then {name} buys {packs} packs with {each} {item} in each pack.")
        else:
            divisors = [d for d in range(2, 7) if total % d == 0]
            if not divisors:
                continue
            d = rng.choice(divisors)
            total //= d
            lines.append(f"Then {name} splits the {item} into {d} equal piles and keeps one pile.")
    lines.append(f"How many {item} does {name} have now?")
    return {"prompt": f"{' '.join(lines)}\n\n{INSTRUCTION}", "verifier": {"answer": str(total)}}


def boxed_answer(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


_FRAC = re.compile(r"^\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)(/\d+)?$")


def parse_number(raw: str) -> Fraction | None:
    """Exact value of a number written as an integer, decimal, a/b or \\frac{a}{b}; None if it is not one."""
    s = raw.strip().strip("$").replace("\\,", "").replace("\\!", "").replace(" ", "")
    s = re.sub(r"(?<=\d),(?=\d{3}(\D|$))", "", s)  # thousands separators
    s = s.removesuffix(".")
    if m := _FRAC.match(s):
        try:
            num, den = int(m[1]), int(m[2])
        except ValueError:  # beyond Python's int-string conversion limit (4,300 digits)
            return None
        return Fraction(num, den) if den else None
    if not _NUMBER.match(s):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


class ArithmeticEnv(Env):
    """Arithmetic word problems with an exact numeric answer in \\boxed{}.

    Config: `eval_size` (tasks in the fixed eval split, default 500), `reasoning` (tasks ask for a
    <think> block, default false).
    """

    version = 0

    def __init__(self, name: str, *, eval_size: int = 500, reasoning: bool = False):
        super().__init__(name, eval_size=eval_size, reasoning=reasoning)
        self._source = ProceduralTasks(name, self._generate, eval_size=eval_size)
        self._reasoning = reasoning

    def _generate(self, rng: random.Random) -> dict[str, Any]:
        return {**_problem(rng), "reasoning": self._reasoning}

    def tasks(self) -> TaskSource:
        return self._source

    def verify(self, task: Task, completion: Completion) -> Score:
        expected = Fraction(task.verifier["answer"])
        parsed = parse_reasoning(completion.text, required=task.reasoning)
        if parsed.error:
            return Score(reward=0.0, accepted=False, error=parsed.error, details={"expected": str(expected)})
        raw = boxed_answer(parsed.answer)
        if raw is None:
            return Score(reward=0.0, accepted=False, error="no \\boxed{} answer", details={"expected": str(expected)})
        value = parse_number(raw)
        details = {"expected": str(expected), "extracted": raw}
        if value is None:
            return Score(reward=0.0, accepted=False, error=f"not a number: {raw!r}", details=details)
        correct = value == expected
        return Score(reward=float(correct), accepted=correct, details=details)
