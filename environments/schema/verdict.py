"""From a model's text to a Score: find the one JSON document (parse.py), validate it (validate.py), check
the values the task fixes, and name every violation as a JSON pointer and a reason.

jsonschema's verdict decides the reward. Where the task carries the generator's spec, the pydantic model
rebuilt from it gives a second opinion: `validators_agree` says whether it matched, and when it did not,
`pydantic_violations` lists pydantic's objections (known differences: pydantic refuses 2.0 as an integer,
accepts date-times without an offset and UUIDs without hyphens, and takes true for the literal 1).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from ..types import Score
from .document import MISSING, resolve, same
from .models import build
from .parse import Unparsable, extract_json, parse_json
from .validate import model_violations, schema_violations, violation

MAX_VIOLATIONS = 100  # details list at most this many; "violation_count" has the full number


def judge(schema: Any, text: str, *, spec: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> Score:
    """Reward 1 when the JSON in `text` is valid for `schema` and holds every value in `values` (pointer →
    value), else 0."""
    try:
        body = extract_json(text)
        doc = parse_json(body)
    except Unparsable as exc:
        return Score(reward=0.0, accepted=False, error=str(exc),
                     details={"valid": False, "violations": [violation("", str(exc))], "violation_count": 1})
    built = build(spec) if spec is not None else None
    try:
        violations = schema_violations(schema, doc, built.schema_key if built else None)
    except SchemaError as exc:
        return Score(reward=0.0, accepted=False, error=f"invalid schema: {exc.message}")
    except Unresolvable as exc:
        return Score(reward=0.0, accepted=False, error=f"unresolvable reference in the schema: {exc}")
    except RecursionError:
        violations = [violation("", "document nested too deeply to validate")]
    valid = not violations
    details: dict[str, Any] = {"valid": valid}
    if built is not None:
        objections = model_violations(built.model, body)
        details["validators_agree"] = valid == (not objections)
        if not details["validators_agree"]:
            details["pydantic_violations"] = objections[:MAX_VIOLATIONS]
    wrong_values = value_violations(values or {}, doc)
    violations += wrong_values
    details.update(values_ok=not wrong_values, violations=violations[:MAX_VIOLATIONS], violation_count=len(violations))
    ok = valid and not wrong_values
    return Score(reward=float(ok), accepted=ok, details=details)


def value_violations(values: dict[str, Any], doc: Any) -> list[dict[str, str]]:
    """The values (pointer → value) that `doc` lacks or holds differently."""
    found = []
    for pointer, expected in values.items():
        actual = resolve(doc, pointer)
        if actual is MISSING:
            found.append(violation(pointer, f"missing; expected {_show(expected)}"))
        elif not same(actual, expected):
            found.append(violation(pointer, f"expected {_show(expected)}, found {_show(actual)}"))
    return found


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:59] + "…"


def check(schema: dict[str, Any], text: str) -> Score:
    """Validity of the JSON document found in `text` against the JSON Schema `schema`.

    `text` may be bare JSON or one ```json fenced block; anything else around it is a violation. Reward is
    1.0 for a valid document, else 0.0; `details["violations"]` lists every violation as
    {"pointer": JSON pointer, "reason": ...}. Unparsable text or an invalid schema gives an error score.
    """
    return judge(schema, text)
