"""The two validators: jsonschema (the verdict) and the pydantic model rebuilt from the spec (a second opinion).

jsonschema validates against Draft 2020-12 unless the schema's "$schema" names another draft, with formats
checked (formats.py). Compiled validators are cached per schema, and compiled from an equivalent schema
that jsonschema checks faster (compact.py). A document the quick check (quick.py) finds valid skips
jsonschema's slower walk, which only names the violations of invalid ones, in the part they break.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft3Validator, Draft4Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation
from jsonschema.exceptions import best_match, relevance
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from pydantic import BaseModel, ValidationError

from .compact import compact
from .document import canonical, pointer_of
from .formats import FORMATS
from .quick import QuickSchema, quick_schema

MAX_REASON = 200
# drafts where "id" (a common property name) sets the base URI: compact.py cannot tell the two apart
_ID_WITHOUT_DOLLAR = (Draft3Validator, Draft4Validator)


def violation(pointer: str, reason: str) -> dict[str, str]:
    return {"pointer": pointer, "reason": reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"}


@dataclass(frozen=True)
class Compiled:
    validator: Validator  # jsonschema's: the verdict, and the violations
    quick: QuickSchema | None  # the same verdict for decoded JSON, faster, where quick.py compiles the schema

    def violations(self, doc: Any) -> list[dict[str, str]]:
        """Every way the decoded JSON `doc` breaks the schema. A document the quick check passes is valid;
        jsonschema names the violations of the others, in the part of the schema they break."""
        if self.quick is None:
            return named(self.validator.iter_errors(doc))
        if self.quick.is_valid(doc):
            return []
        return named(self.validator.evolve(schema=self.quick.failing_part(doc)).iter_errors(doc))


def compiled(schema: Any, generated_key: bytes | None = None) -> Compiled:
    """The compiled validators of a schema (cached); raises SchemaError when the schema itself is invalid.

    Checking a schema against its metaschema costs twice as much as building a model and its schema from
    a spec, so a schema whose canonical JSON is `generated_key` (the schema pydantic made from the task's
    spec) skips that check: pydantic's schemas are valid, and the tests hold the generator to it."""
    key = canonical(schema)
    return _compiled(key, check=key != generated_key)


@lru_cache(maxsize=1024)
def _compiled(schema_json: bytes, check: bool) -> Compiled:
    schema = json.loads(schema_json)
    cls = validator_for(schema, default=Draft202012Validator)
    if check:
        cls.check_schema(schema)
    if cls not in _ID_WITHOUT_DOLLAR:
        schema = compact(schema)
    validator = cls(schema, format_checker=FORMATS)
    return Compiled(validator, quick_schema(validator))


def schema_violations(schema: Any, doc: Any, generated_key: bytes | None = None) -> list[dict[str, str]]:
    """Every way the decoded JSON `doc` breaks `schema`, as (pointer, reason)."""
    return compiled(schema, generated_key).violations(doc)


def named(errors: Iterable[SchemaViolation]) -> list[dict[str, str]]:
    """jsonschema's errors as (pointer, reason). For a failed anyOf/oneOf the reason names the closest
    option's failure (jsonschema's best match, passing over options meant for other values)."""
    found = []
    for error in errors:
        reason = error.message
        if error.context:
            closest = best_match([error], key=_telling)
            where = pointer_of(closest.absolute_path) or "/"
            reason = f"matches no option of {error.validator}; closest: {where}: {closest.message}"
        found.append(violation(pointer_of(error.absolute_path), reason))
    return found


def _telling(error: SchemaViolation) -> tuple:
    """best_match's ranking, after errors that show an option was meant for other values: the wrong type
    for the whole value, or the wrong constant in a member (a discriminator tag)."""
    other_option = ((error.validator == "type" and not error.relative_path)
                    or (error.validator == "const" and len(error.relative_path) == 1))
    return (other_option, *relevance(error))


def model_violations(model: type[BaseModel], body: str) -> list[dict[str, str]]:
    """Pydantic's objections to the JSON text `body`. Locations read as pointers; inside unions they name
    the option pydantic tried (e.g. /value/int)."""
    try:
        model.model_validate_json(body)
    except ValidationError as exc:
        return [violation(pointer_of(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
    return []
