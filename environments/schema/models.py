"""Pydantic models rebuilt from a spec (spec.py) with `pydantic.create_model`, and their JSON Schemas.

The same spec always gives the same model and the same Draft 2020-12 schema. Models are strict, so JSON
types are not coerced ("1" is not an integer, 1 is not a boolean), which keeps pydantic's verdicts close
to jsonschema's. Built models are cached by the spec's canonical JSON.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from .document import canonical
from .formats import FORMATS

_CHARSETS = {"upper": "[A-Z]", "lower": "[a-z]", "digit": "[0-9]"}
_SEPARATORS = {"-": "-", "_": "_", ".": r"\."}


def _email(value: str) -> str:
    if not FORMATS.conforms(value, "email"):
        raise ValueError("value is not an email address")
    return value


Email = Annotated[str, AfterValidator(_email), WithJsonSchema({"type": "string", "format": "email"})]
_FORMAT_TYPES: dict[str, Any] = {"email": Email, "date-time": dt.datetime, "date": dt.date, "uuid": uuid.UUID}


@dataclass(frozen=True)
class Built:
    model: type[BaseModel]
    schema_key: bytes  # the canonical JSON of the model's JSON Schema


def build(spec: dict[str, Any]) -> Built:
    """The model of a root object spec, and its schema's key (cached by the spec's canonical JSON)."""
    return _built(canonical(spec))


def json_schema(spec: dict[str, Any]) -> dict[str, Any]:
    return build(spec).model.model_json_schema()


@lru_cache(maxsize=512)
def _built(spec_json: bytes) -> Built:
    model = _model(json.loads(spec_json))
    return Built(model, canonical(model.model_json_schema()))


def pattern_regex(parts: list[list[Any]]) -> str:
    """The anchored regex of a pattern node's parts."""
    pieces = [_SEPARATORS[p] if p in _SEPARATORS else f"{_CHARSETS[p]}{{{n}}}" for p, n in parts]
    return "^" + "".join(pieces) + "$"


def _model(node: dict[str, Any]) -> type[BaseModel]:
    fields = {}
    for field in node["fields"]:
        annotation = _annotation(field["type"])
        if field["nullable"]:
            annotation = annotation | None
        fields[field["name"]] = (annotation, ... if field["required"] else field["default"])
    config = ConfigDict(extra=node["extra"], strict=True)
    return create_model(node["name"], __config__=config, **fields)


def _annotation(node: dict[str, Any]) -> Any:
    kind = node["type"]
    if kind == "object":
        return _model(node)
    if kind == "string":
        return Annotated[str, Field(min_length=node.get("min_length"), max_length=node.get("max_length"))]
    if kind == "pattern":
        return Annotated[str, Field(pattern=pattern_regex(node["parts"]))]
    if kind == "format":
        return _FORMAT_TYPES[node["format"]]
    if kind in ("integer", "number"):
        bounds = Field(ge=node.get("minimum"), le=node.get("maximum"), gt=node.get("exclusive_minimum"),
                       lt=node.get("exclusive_maximum"), multiple_of=node.get("multiple_of"))
        return Annotated[int if kind == "integer" else float, bounds]
    if kind == "boolean":
        return bool
    if kind == "literal":
        return Literal[tuple(node["values"])]
    if kind == "enum":
        return enum.Enum(node["name"], [(v, v) for v in node["values"]])
    if kind == "array":
        bounds = Field(min_length=node.get("min_items"), max_length=node.get("max_items"))
        return Annotated[list[_annotation(node["items"])], bounds]
    if kind == "map":
        bounds = Field(min_length=node.get("min_properties"), max_length=node.get("max_properties"))
        return Annotated[dict[str, _annotation(node["values"])], bounds]
    if kind == "union":
        return Union[tuple(_annotation(option) for option in node["options"])]
    if kind == "tagged":
        return Annotated[Union[tuple(_model(option) for option in node["options"])], Field(discriminator=node["tag"])]
    raise ValueError(f"unknown spec node type {kind!r}")
