"""Finding the one JSON document in an answer: tolerant of the wrapping, strict about the content.

The answer is bare JSON or exactly one fenced block (```json or ```). Inside, there must be exactly one
JSON document and nothing after it; duplicate keys, NaN, Infinity and numbers that overflow to infinity
are refused (RFC 8259 JSON, not Python's more permissive dialect).
"""

from __future__ import annotations

import json
import math
from typing import Any

FENCE = "```"


class Unparsable(ValueError):
    """The text holds no single well-formed JSON document."""


def extract_json(text: str) -> str:
    """The JSON text of an answer: the whole answer, or the body of the one fenced block that is the answer."""
    answer = text.strip()
    if not answer.startswith(FENCE):
        if FENCE in answer:
            raise Unparsable("text outside the fenced block")
        return answer
    opening, _, rest = answer.partition("\n")
    if opening[len(FENCE) :].strip().lower() not in ("", "json"):
        raise Unparsable(f"the fenced block is not JSON: {opening[:40]!r}")
    body, closing, after = rest.rpartition(FENCE)
    if not closing:
        raise Unparsable("unclosed fenced block")
    if after.strip():
        raise Unparsable("text after the fenced block")
    if FENCE in body:
        raise Unparsable("more than one fenced block")
    return body


def parse_json(body: str) -> Any:
    """The single JSON document in `body`."""
    start = _skip_space(body, 0)
    try:
        value, end = _DECODER.raw_decode(body, start)
    except json.JSONDecodeError as exc:
        raise Unparsable(f"invalid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # from the hooks, integers past Python's digit limit, deep nesting
        raise Unparsable(f"invalid JSON: {str(exc) or type(exc).__name__}") from None
    if _skip_space(body, end) != len(body):
        raise Unparsable(f"trailing content after the JSON document (at character {end})")
    return value


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        keys = [key for key, _ in pairs]
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return obj


def _finite_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {raw[:40]}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_float=_finite_float, parse_constant=_no_constant)
