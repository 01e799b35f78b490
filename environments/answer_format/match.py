"""Content correctness: does the extracted answer equal the reference?

Numbers compare by exact value ("0.50", "1/2" and 0.5 are equal; a float is read from its shortest
decimal repr, so 0.1 is one tenth; NFKC-normalised ASCII digits only); a reference string that reads as a
number is a number. Flags accept
true/false and yes/no. Other text compares after Unicode NFKC normalisation, case folding, whitespace
collapsing and dropping one trailing period. Lists compare in order, records key by key.
"""

from __future__ import annotations

import math
import re
import unicodedata
from fractions import Fraction
from typing import Any

_NUMBER = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d{1,3})?|[+-]?\d+/[1-9]\d*", re.ASCII)
_TRUTH = {"true": True, "yes": True, "false": False, "no": False}


def as_number(value: Any) -> Fraction | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()  # full-width digits are digits
        if len(text) <= 100 and _NUMBER.fullmatch(text):
            return Fraction(text.replace(",", ""))
    return None


def as_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return _TRUTH.get(value.strip().casefold()) if isinstance(value, str) else None


def normalise(value: Any) -> str:
    text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return text[:-1].rstrip() if text.endswith(".") else text


def matches(expected: Any, got: Any) -> bool:
    if isinstance(expected, dict):
        return (isinstance(got, dict) and got.keys() == expected.keys()
                and all(matches(value, got[key]) for key, value in expected.items()))
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(matches, expected, got))
    if got is None or isinstance(got, (dict, list)):
        return False
    if isinstance(expected, bool):
        return as_flag(got) is expected
    number = as_number(expected)
    if number is not None:
        return as_number(got) == number
    return normalise(got) == normalise(expected)
