"""Rewrite a JSON Schema into an equivalent one that jsonschema checks faster.

jsonschema spends its time descending into subschemas and resolving references, anew for every document.
Three rewrites cut that down, each keeping exactly the same set of valid documents:

1. A reference into the schema's own "$defs" is replaced by the definition it names.
2. Annotations (title, description, default, examples, OpenAPI's discriminator, ...) are dropped: they
   never affect validity.
3. The nullable wrapper `anyOf: [X, {"type": "null"}]` becomes X with `"type": [t, "null"]` when X has one
   "type" t and otherwise only keywords that say nothing about null (a property list, a length, a bound).
   One subschema less, and a plainer error message.

Keywords are walked by their meaning, so a property named "title" or "$ref" is never taken for a keyword.
Schemas where a reference could mean something else once moved (an "$id", anchors, dynamic references,
"unevaluated*", or a reference that is not "#/$defs/<name>") are left as they are.
"""

from __future__ import annotations

from typing import Any

DEFS = "#/$defs/"
MAX_INLINED = 1000  # past this many replacements, shared definitions could blow the schema up; stop
_LOCATION_DEPENDENT = {"$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor",
                       "unevaluatedProperties", "unevaluatedItems"}
_ANNOTATIONS = {"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$comment",
                "discriminator"}
_SCHEMA_MAPS = {"properties", "patternProperties", "dependentSchemas"}
_SCHEMA_LISTS = {"allOf", "anyOf", "oneOf", "prefixItems"}
_SCHEMAS = {"items", "additionalItems", "additionalProperties", "not", "if", "then", "else", "contains",
            "propertyNames"}
# keywords that only constrain objects, arrays, strings or numbers, and so never reject null
_IGNORE_NULL = {"properties", "patternProperties", "additionalProperties", "required", "minProperties",
                "maxProperties", "propertyNames", "dependentRequired", "dependentSchemas", "items", "prefixItems",
                "contains", "minContains", "maxContains", "minItems", "maxItems", "uniqueItems", "minLength",
                "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                "multipleOf"}
_NULL = {"type": "null"}


def compact(schema: Any) -> Any:
    """`schema` rewritten for speed (or itself, when it cannot be rewritten safely)."""
    if not isinstance(schema, dict) or not _movable(schema):
        return schema
    defs = schema.get("$defs", {})
    remaining = MAX_INLINED

    def walk(node: Any, expanding: frozenset[str]) -> Any:
        nonlocal remaining
        if not isinstance(node, dict):
            return node  # a boolean schema
        name = node["$ref"][len(DEFS) :] if isinstance(node.get("$ref"), str) else None
        if name in defs and name not in expanding and remaining > 0 and set(node) - {"$ref"} <= _ANNOTATIONS:
            remaining -= 1
            return walk(defs[name], expanding | {name})
        out = {}
        for key, value in node.items():
            if key in _ANNOTATIONS:
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {k: walk(v, expanding) for k, v in value.items()}
            elif (key in _SCHEMA_LISTS or key in _SCHEMAS) and isinstance(value, list):
                out[key] = [walk(v, expanding) for v in value]
            elif key in _SCHEMAS:
                out[key] = walk(value, expanding)
            else:  # constraints, data (enum, const), "$defs", unknown keywords: as they are
                out[key] = value
        return _fold_nullable(out)

    return walk(schema, frozenset())


def _movable(node: Any) -> bool:
    """No location-dependent keyword anywhere, and every "$ref" of the form "#/$defs/<name>" (conservative:
    data that merely looks like a keyword counts too)."""
    if isinstance(node, list):
        return all(_movable(item) for item in node)
    if not isinstance(node, dict):
        return True
    for key, value in node.items():
        if key in _LOCATION_DEPENDENT:
            return False
        if key == "$ref" and not (isinstance(value, str) and value.startswith(DEFS) and "/" not in value[len(DEFS) :]
                                  and not any(c in value for c in "~%")):
            return False
    return all(_movable(value) for value in node.values())


def _fold_nullable(node: dict[str, Any]) -> dict[str, Any]:
    options = node.get("anyOf")
    if not (isinstance(options, list) and len(options) == 2 and options[1] == _NULL and isinstance(options[0], dict)):
        return node
    option = options[0]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if not isinstance(option.get("type"), str) or not set(option) - {"type"} <= _IGNORE_NULL or set(rest) & set(option):
        return node
    return {**rest, **option, "type": [option["type"], "null"]}
