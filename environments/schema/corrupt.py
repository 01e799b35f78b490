"""Corruptions for "repair" tasks: each turns a valid document into an invalid text, or returns None when
the document offers nothing to break that way (no required field present, no constrained value, ...).

Every corruption returns the damaged text and the pointers of the values it destroyed; the repair must keep
every other leaf of the original document. Invalidity holds by construction: union options accept disjoint
JSON types (spec.py), so a value broken inside the option it matched cannot be rescued by another option.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .document import child, layout
from .reference import MAP_KEYS, reference

EXTRA_NAMES = ["comment", "notes", "internal_id", "debug", "legacy_code"]
BAD_FORMATS = {"email": "not an email address", "date-time": "yesterday at noon", "date": "2024-13-45",
               "uuid": "not-a-uuid"}
WRONG_VALUES = ["oops", 7, 2.5, True, None, [], {}]  # one of every JSON type
_PYTHON_LITERALS = {"true": "True", "false": "False", "null": "None"}


@dataclass(frozen=True)
class Corruption:
    text: str
    touched: list[str]  # pointers of the original values that were lost or changed


@dataclass(frozen=True)
class Position:
    pointer: str
    value: Any
    node: dict[str, Any]  # the spec node the value matched (for a union: the option it matched)
    types: frozenset[str]  # JSON types accepted here (every option of a union, and null when nullable)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def node_types(node: dict[str, Any]) -> frozenset[str]:
    kind = node["type"]
    if kind == "union":
        return frozenset().union(*(node_types(option) for option in node["options"]))
    if kind == "literal":
        return frozenset(json_type(v) for v in node["values"])
    if kind == "number":
        return frozenset({"number", "integer"})
    simple = {"string": "string", "pattern": "string", "format": "string", "enum": "string", "integer": "integer",
              "boolean": "boolean", "array": "array", "object": "object", "map": "object", "tagged": "object"}
    return frozenset({simple[kind]})


def positions(value: Any, node: dict[str, Any], pointer: str = "", nullable: bool = False) -> Iterator[Position]:
    """Every value in a document that conforms to `node`, with the spec node it conforms to."""
    types = node_types(node) | ({"null"} if nullable else set())
    node = _matched(value, node)
    yield Position(pointer, value, node, frozenset(types))
    if value is None:
        return
    if node["type"] == "object":
        for field in node["fields"]:
            name = field["name"]
            if name in value:
                yield from positions(value[name], field["type"], child(pointer, name), field["nullable"])
    elif node["type"] == "array":
        for i, item in enumerate(value):
            yield from positions(item, node["items"], child(pointer, i))
    elif node["type"] == "map":
        for key, item in value.items():
            yield from positions(item, node["values"], child(pointer, key))


def _matched(value: Any, node: dict[str, Any]) -> dict[str, Any]:
    if node["type"] == "union" and value is not None:
        return next(o for o in node["options"] if json_type(value) in node_types(o))
    if node["type"] == "tagged" and value is not None:
        return next(o for o in node["options"] if o["fields"][0]["type"]["values"] == [value[node["tag"]]])
    return node


DELETE = object()  # as `_replace`'s new value: remove the member instead


def _replace(doc: Any, pointer: str, new: Any) -> Any:
    """A copy of doc with the value at pointer replaced by new (or removed, for DELETE)."""
    if not pointer:
        return new
    head, *rest = pointer[1:].split("/", 1)
    copy = list(doc) if isinstance(doc, list) else dict(doc)
    key: Any = int(head) if isinstance(doc, list) else head.replace("~1", "/").replace("~0", "~")
    inner = _replace(copy[key], "/" + rest[0], new) if rest else new
    if inner is DELETE:
        del copy[key]
    else:
        copy[key] = inner
    return copy


def _pretty(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


# -- the corruptions --------------------------------------------------------------------------------------


def syntax_damage(doc: Any, spec: dict[str, Any], rng: random.Random) -> Corruption | None:
    """One syntax error that loses no value: a missing comma or closing bracket, a trailing comma, an unquoted
    key, a single-quoted string, or a Python literal (True/False/None)."""
    text, spans = layout(doc)
    edits: dict[str, list[tuple[int, int, str]]] = {"missing comma": [], "trailing comma": [], "unquoted key": [],
                                                    "single quotes": [], "python literal": [], "unclosed": []}
    for i, span in enumerate(spans):
        token = text[span.start : span.end]
        if span.kind == "comma":
            edits["missing comma"].append((span.start, span.end, ""))
        elif span.kind == "close":
            edits["trailing comma"].append((spans[i - 1].end, spans[i - 1].end, ","))
        elif span.kind == "key" and json.loads(token).isidentifier():
            edits["unquoted key"].append((span.start, span.end, json.loads(token)))
        elif span.kind == "scalar" and token in _PYTHON_LITERALS:
            edits["python literal"].append((span.start, span.end, _PYTHON_LITERALS[token]))
        elif span.kind == "scalar" and token.startswith('"') and not any(c in token for c in "'\\"):
            edits["single quotes"].append((span.start, span.end, f"'{token[1:-1]}'"))
    if spans[-1].kind == "close":
        edits["unclosed"].append((spans[-1].start, spans[-1].end, ""))
    kinds = [k for k, options in edits.items() if options]
    if not kinds:  # a scalar or an empty container: nothing to break without losing the value
        return None
    kind = rng.choice(kinds)
    start, end, replacement = rng.choice(edits[kind])
    return Corruption(text[:start] + replacement + text[end:], [])


def truncation(doc: Any, spec: dict[str, Any], rng: random.Random) -> Corruption | None:
    """The text cut off part-way, as a generation that hit its token limit; values after the cut are lost."""
    text, spans = layout(doc)
    if len(text) < 4:
        return None
    cut = rng.randint(max(1, len(text) * 3 // 10), len(text) * 9 // 10)
    lost = [s.pointer for s in spans if s.kind == "scalar" and s.end > cut]
    return Corruption(text[:cut], lost)


def wrong_type(doc: Any, spec: dict[str, Any], rng: random.Random) -> Corruption | None:
    """A value replaced by one of a JSON type its place does not accept."""
    candidates = [p for p in positions(doc, spec) if p.pointer]
    if not candidates:
        return None
    target = rng.choice(candidates)
    wrong = rng.choice([v for v in WRONG_VALUES if json_type(v) not in target.types])
    return Corruption(_pretty(_replace(doc, target.pointer, wrong)), [target.pointer])


def missing_required(doc: Any, spec: dict[str, Any], rng: random.Random) -> Corruption | None:
    """A required field removed."""
    candidates = [child(p.pointer, f["name"]) for p in positions(doc, spec)
                  if p.node["type"] == "object" and p.value is not None
                  for f in p.node["fields"] if f["required"] and f["name"] in p.value]
    if not candidates:
        return None
    target = rng.choice(candidates)
    return Corruption(_pretty(_replace(doc, target, DELETE)), [target])


def extra_field(doc: Any, spec: dict[str, Any], rng: random.Random) -> Corruption | None:
    """An undeclared field added to an object that forbids additional properties."""
    candidates = [p for p in positions(doc, spec)
                  if p.node["type"] == "object" and p.node["extra"] == "forbid" and p.value is not None]
    if not candidates:
        return None
    target = rng.choice(candidates)
    declared = {f["name"] for f in target.node["fields"]}
    name = rng.choice([n for n in EXTRA_NAMES if n not in declared])
    extra = rng.choice(["n/a", 0, True, "see ticket"])
    return Corruption(_pretty(_replace(doc, target.pointer, {**target.value, name: extra})), [])


def constraint_violation(doc: Any, spec: dict[str, Any], rng: random.Random) -> Corruption | None:
    """A value of the right type that breaks a constraint: a length, a bound, a pattern, a format, an
    enumeration, or the number of items or properties."""
    candidates = [(p, bad) for p in positions(doc, spec) if p.value is not None
                  for bad in _violations(p.node, p.value, rng)]
    if not candidates:
        return None
    target, bad = rng.choice(candidates)
    return Corruption(_pretty(_replace(doc, target.pointer, bad)), [target.pointer])


def _violations(node: dict[str, Any], value: Any, rng: random.Random) -> list[Any]:
    """Values of the same JSON type as `value` that break one of node's constraints each."""
    kind, bad = node["type"], []
    if kind == "string":
        if node.get("min_length", 0) >= 1:
            bad.append(value[: node["min_length"] - 1])
        if "max_length" in node:
            bad.append(value + "x" * (node["max_length"] + 1 - len(value)))
    elif kind == "pattern":
        bad.append("!" + value)  # "!" is in no charset and is no separator
    elif kind == "format":
        bad.append(BAD_FORMATS[node["format"]])
    elif kind in ("literal", "enum"):
        values = node["values"]
        bad.append(max(values) + 1 if isinstance(values[0], int) else "other")
    elif kind in ("integer", "number"):
        if "minimum" in node:
            bad.append(node["minimum"] - 1)
        if "maximum" in node:
            bad.append(node["maximum"] + 1)
        bad += [node[k] for k in ("exclusive_minimum", "exclusive_maximum") if k in node]
        if node.get("multiple_of", 1) > 1:
            bad.append(value + 1)
    elif kind == "array":
        if node.get("min_items", 0) >= 1:
            bad.append(value[: node["min_items"] - 1])
        if "max_items" in node:
            bad.append(value + [reference(node["items"], rng) for _ in range(node["max_items"] + 1 - len(value))])
    elif kind == "map":
        if node.get("min_properties", 0) >= 1:
            bad.append(dict(list(value.items())[: node["min_properties"] - 1]))
        if "max_properties" in node:
            spare = [k for k in MAP_KEYS if k not in value]  # enough: max_properties < len(MAP_KEYS)
            added = {k: reference(node["values"], rng) for k in spare[: node["max_properties"] + 1 - len(value)]}
            bad.append({**value, **added})
    return bad


CORRUPTIONS: dict[str, Callable[[Any, dict[str, Any], random.Random], Corruption | None]] = {
    "syntax": syntax_damage,
    "wrong_type": wrong_type,
    "missing_required": missing_required,
    "extra_field": extra_field,
    "constraint": constraint_violation,
    "truncation": truncation,
}


def corrupt(doc: Any, spec: dict[str, Any], rng: random.Random) -> tuple[str, Corruption]:
    """A random corruption type that applies to `doc`, and its result."""
    names = list(CORRUPTIONS)
    rng.shuffle(names)
    for name in names:
        result = CORRUPTIONS[name](doc, spec, rng)
        if result is not None:
            return name, result
    raise ValueError("no corruption applies to this document")
