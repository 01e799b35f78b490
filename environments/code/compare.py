"""The comparison rules: when a program's output counts as the expected one.

Standard output (stdin/stdout tests):
1. Line ends may be \\n or \\r\\n; trailing whitespace on a line and trailing blank lines are ignored.
2. Within a line, tokens are separated by any run of spaces or tabs: "1  2" matches "1 2".
3. Two tokens match when they are equal as text, or when both are numbers, at least one of them written
   with a fraction or an exponent, and they differ by at most `float_tol` absolutely or relatively
   (|a - b| <= float_tol * max(1, |b|)). Integers are compared as text, exactly: "007" is not "7".
4. With `unordered`, the lines may come in any order (as a multiset: duplicates count).

Return values (functional tests) are compared after a JSON round trip, so tuples are lists and dict keys
strings: numbers within `float_tol` when either is a float and exactly when both are integers, booleans only
with booleans, lists element by element, dicts key by key. With `unordered`, the top-level list may be in
any order.
"""

from __future__ import annotations

import json
import math
import re

from pydantic import BaseModel, ConfigDict, Field, JsonValue

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class Compare(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    float_tol: float = Field(default=1e-6, ge=0, le=1)
    unordered: bool = False


def _lines(text: str) -> list[list[str]]:
    lines = [line.split() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _close(a: float, b: float, tol: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol * max(1.0, abs(b))


def _tokens_match(got: str, want: str, tol: float) -> bool:
    if got == want:
        return True
    both_numbers = _NUMBER.fullmatch(got) and _NUMBER.fullmatch(want)
    if not both_numbers or (_INTEGER.fullmatch(got) and _INTEGER.fullmatch(want)):
        return False
    return _close(float(got), float(want), tol)


def _line_matches(got: list[str], want: list[str], tol: float) -> bool:
    return len(got) == len(want) and all(_tokens_match(g, w, tol) for g, w in zip(got, want))


def output_matches(got: str, want: str, rules: Compare) -> bool:
    got_lines, want_lines = _lines(got), _lines(want)
    if len(got_lines) != len(want_lines):
        return False
    if rules.unordered:
        got_lines, want_lines = sorted(got_lines), sorted(want_lines)
    return all(_line_matches(g, w, rules.float_tol) for g, w in zip(got_lines, want_lines))


def value_matches(got: JsonValue, want: JsonValue, rules: Compare) -> bool:
    if rules.unordered and isinstance(got, list) and isinstance(want, list):
        def key(v: JsonValue) -> str:
            return json.dumps(v, sort_keys=True)
        got, want = sorted(got, key=key), sorted(want, key=key)
    return _equal(got, want, rules.float_tol)


def _equal(got: JsonValue, want: JsonValue, tol: float) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        if isinstance(got, int) and isinstance(want, int):
            return got == want
        return _close(float(got), float(want), tol)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_equal(g, w, tol) for g, w in zip(got, want))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_equal(got[k], want[k], tol) for k in want)
    return type(got) is type(want) and got == want
