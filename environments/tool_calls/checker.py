"""Checking function calls the way BFCL's AST checker does, with a proper matching for parallel calls.

An expected call is written in BFCL's possible-answer form, `{name: {argument: [accepted values…]}}`. A call
passes when
  - it names that function;
  - every argument the function's schema requires is present, and no argument is unknown to the schema or
    absent from the expected call;
  - every value has the schema's type: an integer is accepted where a number (BFCL: float) is expected, a
    boolean only where a boolean is; array items are checked against `items`;
  - every value equals one of the accepted values, and every expected argument is present unless its
    accepted list holds "" (BFCL's mark for "may be left out").
Equality is BFCL's: strings case-insensitively and ignoring spaces and `,./-_*^`; lists item by item, in
order; a dict against an accepted dict that maps each key to its accepted values; numbers by value.

Parallel calls are order-free: calls are paired with expected calls by a maximum bipartite matching, so a call
that fits two expected calls cannot take the partner that another call needed (BFCL pairs greedily).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..types import Score
from .hermes import Call, FormatError, parse_calls

Failure = dict[str, Any]  # {"expected_index", "call_index", "function", "argument", "reason"}; JSON values only

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "tuple": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "dict": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}
_IGNORED_IN_STRINGS = str.maketrans("", "", " ,./-_*^")


# -- one argument, one call -----------------------------------------------------------------------------


def type_error(schema: dict[str, Any], value: Any) -> str | None:
    """Why `value` does not have the schema's type (array items included), or None. Type names this checker
    does not know ("any", custom ones) are not checked."""
    declared = schema.get("type")
    names = declared if isinstance(declared, list) else [declared]
    if all(isinstance(n, str) and n in _TYPES for n in names) and not any(_TYPES[n](value) for n in names):
        return f"expected type {'/'.join(names)}, got {_json_type(value)}"
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        for i, item in enumerate(value):
            if reason := type_error(items, item):
                return f"item {i}: {reason}"
    return None


def argument_errors(parameters: dict[str, Any], arguments: dict[str, Any]) -> list[Failure]:
    """Schema-level faults: missing required arguments, unknown arguments, wrong types."""
    properties = parameters.get("properties", {})
    failures = [_failure(name, "missing required argument") for name in parameters.get("required", [])
                if name not in arguments]
    for name, value in arguments.items():
        if name not in properties:
            failures.append(_failure(name, "unknown argument (not a parameter of the function)"))
        elif reason := type_error(properties[name], value):
            failures.append(_failure(name, reason))
    return failures


def call_failures(parameters: dict[str, Any], arguments: dict[str, Any], accepted: dict[str, list]) -> list[Failure]:
    """Every fault of one call against one expected call of the same function; empty when it passes."""
    failures = argument_errors(parameters, arguments)
    reported = {f["argument"] for f in failures}
    for name, value in arguments.items():
        if name in reported:
            continue
        if name not in accepted:
            failures.append(_failure(name, "unexpected argument (the expected call does not set it)"))
        elif not any(matches(value, option) for option in accepted[name]):
            reason = f"{_show(value)} is not an accepted value (accepted: {_show(accepted[name])})"
            failures.append(_failure(name, reason))
    for name, options in accepted.items():
        if name not in arguments and name not in reported and "" not in options:
            failures.append(_failure(name, "missing argument (the expected call sets it)"))
    return failures


def matches(value: Any, accepted: Any) -> bool:
    """BFCL's equality of a value and one accepted value."""
    if isinstance(accepted, str):
        return isinstance(value, str) and _normal(value) == _normal(accepted)
    if isinstance(accepted, bool) or isinstance(value, bool):
        return value is accepted
    if isinstance(accepted, (int, float)):
        return isinstance(value, (int, float)) and value == accepted
    if isinstance(accepted, list):
        return isinstance(value, list) and len(value) == len(accepted) and all(map(matches, value, accepted))
    if isinstance(accepted, dict):  # each key maps to its accepted values; "" among them: the key may be left out
        return isinstance(value, dict) and value.keys() <= accepted.keys() and all(
            any(matches(value[key], option) for option in options) if key in value else "" in options
            for key, options in accepted.items())
    return value is None and accepted is None


# -- a completion's calls against the expected calls ----------------------------------------------------


def score_calls(schemas: dict[str, dict[str, Any]], expected: list[dict[str, dict[str, list]]], calls: list[Call],
                *, partial: bool = False) -> Score:
    """Score `calls` against `expected` (schemas: function name → parameters schema).

    Accepted when every call pairs with a distinct expected call and none is left over on either side. The
    reward is 1/0, or with `partial` the share of paired calls over max(#expected, #calls).
    """
    wanted = [next(iter(e.items())) for e in expected]
    faults: dict[tuple[int, int], list[Failure]] = {}
    fitting: list[list[int]] = []
    for i, (name, accepted_arguments) in enumerate(wanted):
        fitting.append([])
        for j, call in enumerate(calls):
            if call.name == name:
                faults[i, j] = call_failures(schemas[name], call.arguments, accepted_arguments)
                if not faults[i, j]:
                    fitting[i].append(j)
    partner = _max_matching(fitting, len(calls))
    matched = sum(p is not None for p in partner)
    accepted = matched == len(wanted) == len(calls)
    share = matched / max(len(wanted), len(calls)) if calls or wanted else 1.0
    details = {"expected_calls": len(wanted), "calls": len(calls), "matched": matched,
               "failures": _explain(wanted, calls, schemas, partner, faults)}
    return Score(reward=1.0 if accepted else (share if partial else 0.0), accepted=accepted, details=details)


def check(functions: list[dict[str, Any]], expected: list[dict[str, dict[str, list]]], text: str, *,
          reward: str = "binary") -> Score:
    """BFCL-style check of a raw completion against expected calls.

    `functions`: the offered functions, `{"name", "description", "parameters"}` (OpenAI's
    `{"type": "function", "function": {…}}` wrapper is accepted too). `expected`: BFCL's possible answer,
    `[{name: {argument: [accepted values…]}}]`, empty when no call should be made. `text`: the completion,
    with calls in <tool_call> tags or as a bare JSON list; a leading <think>…</think> block is skipped.
    `reward`: "binary" or "partial". Malformed `functions`/`expected` raise ValueError; model output never does.
    """
    if reward not in ("binary", "partial"):
        raise ValueError(f"reward must be 'binary' or 'partial', got {reward!r}")
    schemas = {f["name"]: f.get("parameters", {}) for f in map(_unwrap, functions)}
    _validate_expected(expected, schemas)
    try:
        calls = parse_calls(text.rsplit("</think>", 1)[-1])
    except FormatError as exc:
        return Score(reward=0.0, accepted=False, error=str(exc), details={"expected_calls": len(expected)})
    return score_calls(schemas, expected, calls, partial=reward == "partial")


# -- helpers --------------------------------------------------------------------------------------------


def _max_matching(fitting: list[list[int]], n_calls: int) -> list[int | None]:
    """Kuhn's augmenting paths: partner[j] is the expected call that call j is paired with, or None."""
    partner: list[int | None] = [None] * n_calls

    def augment(i: int, seen: set[int]) -> bool:
        for j in fitting[i]:
            if j not in seen:
                seen.add(j)
                if partner[j] is None or augment(partner[j], seen):
                    partner[j] = i
                    return True
        return False

    for i in range(len(fitting)):
        augment(i, set())
    return partner


def _explain(wanted: list[tuple[str, dict]], calls: list[Call], schemas: dict[str, Any], partner: list[int | None],
             faults: dict[tuple[int, int], list[Failure]]) -> list[Failure]:
    """What went wrong: each unpaired expected call against its closest unpaired call of the same function
    (fewest faults), then the calls left over."""
    paired = set(partner)
    spare = [j for j, p in enumerate(partner) if p is None]
    failures = []
    for i, (name, _) in enumerate(wanted):
        if i in paired:
            continue
        candidates = [j for j in spare if calls[j].name == name]
        if not candidates:
            failures.append({"expected_index": i, "call_index": None, "function": name, "argument": None,
                             "reason": "missing call"})
            continue
        j = min(candidates, key=lambda j: len(faults[i, j]))
        spare.remove(j)
        failures += [{"expected_index": i, "call_index": j, "function": name, **f} for f in faults[i, j]]
    for j in spare:
        reason = "unexpected call" if calls[j].name in schemas else "unknown function"
        failures.append({"expected_index": None, "call_index": j, "function": calls[j].name, "argument": None,
                         "reason": reason})
    return failures


def _failure(argument: str, reason: str) -> Failure:
    return {"argument": argument, "reason": reason}


def _normal(text: str) -> str:
    return text.translate(_IGNORED_IN_STRINGS).lower().replace("'", '"')


def _json_type(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object", "null"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def _show(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError):  # nested deeper than the encoder goes
        text = "…"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unwrap(function: dict[str, Any]) -> dict[str, Any]:
    return function["function"] if function.get("type") == "function" and "function" in function else function


def _validate_expected(expected: list[Any], schemas: dict[str, Any]) -> None:
    for i, call in enumerate(expected):
        if not (isinstance(call, dict) and len(call) == 1):
            raise ValueError(f"expected[{i}] must be {{name: {{argument: [accepted values]}}}}")
        ((name, arguments),) = call.items()
        if name not in schemas:
            raise ValueError(f"expected[{i}] calls {name!r}, which is not among the functions")
        if not (isinstance(arguments, dict) and all(isinstance(v, list) for v in arguments.values())):
            raise ValueError(f"expected[{i}]: each argument must map to a list of accepted values")
