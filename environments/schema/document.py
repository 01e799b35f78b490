"""JSON documents as the verifier sees them: JSON pointers (RFC 6901), leaf values, and a pretty layout that
remembers where every token sits (so corruptions can damage the text precisely).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson


def canonical(value: Any) -> bytes:
    """The canonical JSON of a value (sorted keys), as a cache key."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson refuses integers beyond 64 bits
        return json.dumps(value, sort_keys=True).encode()


def child(pointer: str, key: str | int) -> str:
    return f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"


def pointer_of(path: Any) -> str:
    """The pointer of a sequence of keys and indices (as jsonschema reports an error's path)."""
    pointer = ""
    for key in path:
        pointer = child(pointer, key)
    return pointer


MISSING = object()  # what `resolve` returns for a pointer that leads nowhere


def resolve(doc: Any, pointer: str) -> Any:
    """The value at `pointer`, or MISSING."""
    value = doc
    for raw in pointer.split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(key, MISSING)
        elif isinstance(value, list) and key.isascii() and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def leaves(doc: Any, pointer: str = "") -> dict[str, Any]:
    """Every scalar and every empty container, by pointer."""
    if isinstance(doc, dict) and doc:
        return {p: v for key, item in doc.items() for p, v in leaves(item, child(pointer, key)).items()}
    if isinstance(doc, list) and doc:
        return {p: v for i, item in enumerate(doc) for p, v in leaves(item, child(pointer, i)).items()}
    return {pointer: doc}


def same(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Span:
    kind: str  # "open", "close", "comma", "key" or "scalar" (a scalar or an empty container)
    start: int
    end: int
    pointer: str  # the value the token belongs to (for a key: the member's value)


def layout(doc: Any) -> tuple[str, list[Span]]:
    """`json.dumps(doc, indent=2, ensure_ascii=False)` and the span of every token in it."""
    out: list[str] = []
    spans: list[Span] = []
    length = 0

    def emit(text: str, kind: str | None = None, pointer: str = "") -> None:
        nonlocal length
        if kind:
            spans.append(Span(kind, length, length + len(text), pointer))
        out.append(text)
        length += len(text)

    def value(item: Any, pointer: str, depth: int) -> None:
        if not (isinstance(item, (dict, list)) and item):
            emit(json.dumps(item, ensure_ascii=False), "scalar", pointer)
            return
        is_dict = isinstance(item, dict)
        emit("{" if is_dict else "[", "open", pointer)
        for i, (key, member) in enumerate(item.items() if is_dict else enumerate(item)):
            if i:
                emit(",", "comma", pointer)
            emit("\n" + "  " * (depth + 1))
            if is_dict:
                emit(json.dumps(key, ensure_ascii=False), "key", child(pointer, key))
                emit(": ")
            value(member, child(pointer, key), depth + 1)
        emit("\n" + "  " * depth)
        emit("}" if is_dict else "]", "close", pointer)

    value(doc, "", 0)
    return "".join(out), spans
