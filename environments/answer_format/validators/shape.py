"""Answer shapes, and the checks that a parsed document carries the answer the task expects.

Every answer is one of four shapes: a scalar (a number, word or flag), a list of scalars, a record (named
fields) or a table (rows with the same columns). A structured format is checked in two steps: its own
syntax is parsed into plain Python values, then `conform` checks that they have the task's shape and
returns the answer as a JSON value.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from typing import Any

SHAPES = frozenset({"scalar", "list", "record", "table"})


class Invalid(Exception):
    """The response breaks its format; the message says how."""


@dataclass(frozen=True)
class Spec:
    """What a format must show of the answer, as the content generator knows it."""

    shape: str = "scalar"
    keys: tuple[str, ...] = ()  # record: the field names, in the order the prompt lists them
    columns: tuple[str, ...] = ()  # table: the header, in order
    count: int | None = None  # list: the exact number of items, for multi-part answers
    labels: tuple[str, ...] = ()  # scalar: the option labels of a multiple-choice question

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"shape": self.shape}
        for name in ("keys", "columns", "labels"):
            if getattr(self, name):
                doc[name] = list(getattr(self, name))
        if self.count is not None:
            doc["count"] = self.count
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> Spec:
        """Build from a task's verifier data; raises ValueError on anything malformed."""
        if not isinstance(doc, dict) or set(doc) - {"shape", "keys", "columns", "count", "labels"}:
            raise ValueError(f"spec must be an object with shape, keys, columns, count, labels; got {doc!r}")
        shape = doc.get("shape", "scalar")
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}")
        names = {k: doc.get(k, []) for k in ("keys", "columns", "labels")}
        for k, v in names.items():
            if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v) or len(set(v)) != len(v):
                raise ValueError(f"spec {k} must be a list of distinct non-empty strings")
        count = doc.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError("spec count must be a positive integer")
        if shape == "record" and not names["keys"] or shape == "table" and not names["columns"]:
            raise ValueError(f"a {shape} spec needs its {'keys' if shape == 'record' else 'columns'}")
        return cls(shape, tuple(names["keys"]), tuple(names["columns"]), count, tuple(names["labels"]))


def type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "null"}.get(type(value), type(value).__name__)


def scalar(value: Any, what: str = "the answer") -> str | int | float | bool:
    """A single answer value, as a JSON value that any serialiser can carry: integers beyond 64 bits are
    kept as their digits (orjson and msgpack refuse them), text with unpaired surrogates (which a JSON
    escape such as \\ud800 can produce) is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -2**63 <= value < 2**63 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(f"{what} is not a finite number")
        return value
    if isinstance(value, str):
        value = str(value).strip()  # str(): a subclass (a parser's symbol type) becomes plain text
        if not value:
            raise Invalid(f"{what} is empty")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(f"{what} contains an unpaired surrogate") from None
        return value
    raise Invalid(f"{what} must be a single value, not {type_name(value)}")


def check_count(values: list[Any], count: int | None) -> list[Any]:
    if count is not None and len(values) != count:
        raise Invalid(f"expected {count} parts, found {len(values)}")
    return values


def conform(value: Any, spec: Spec, *, exact_keys: bool = True) -> Any:
    """The answer in `value` if it has the spec's shape; raises Invalid naming the first mismatch."""
    if spec.shape == "scalar":
        return scalar(value)
    if spec.shape == "list":
        if not isinstance(value, list) or not value:
            raise Invalid(f"expected a non-empty list, got {type_name(value) if value != [] else 'an empty list'}")
        return check_count([scalar(v, f"item {i}") for i, v in enumerate(value, 1)], spec.count)
    if spec.shape == "record":
        return record(value, spec.keys, exact=exact_keys)
    if not isinstance(value, list) or not value:
        raise Invalid(f"expected a non-empty list of rows, got {type_name(value)}")
    return [record(row, spec.columns, what=f"row {i}") for i, row in enumerate(value, 1)]


def record(value: Any, keys: tuple[str, ...], *, exact: bool = True, what: str = "the answer") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{what} must be a mapping of keys to values, not {type_name(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise Invalid(f"{what}: missing key {', '.join(map(repr, missing))}")
    extra = [k for k in value if k not in keys]
    if exact and extra:
        raise Invalid(f"{what}: unexpected key {', '.join(map(repr, extra[:5]))}")
    return {k: scalar(value[k], f"{what}: the value of {k!r}") for k in keys}


def field(tree: Any, path: str | list[str], extra: dict[str, str] | None = None) -> Any:
    """Descend into nested single-key mappings along `path` ("answer" or ["result", "value"]). The last
    mapping may also hold `extra` keys, each checked against its type: "text" or "probability"."""
    path = [path] if isinstance(path, str) else path
    for depth, key in enumerate(path):
        last_extra = extra if extra and depth == len(path) - 1 else {}
        if not isinstance(tree, dict):
            raise Invalid(f"expected a mapping with the key {key!r}, got {type_name(tree)}")
        _exact_keys(tree, (key, *last_extra))
        for name, kind in last_extra.items():
            _check_extra(name, tree[name], kind)
        tree = tree[key]
    return tree


def _exact_keys(tree: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in tree]
    if missing:
        raise Invalid(f"missing key {', '.join(map(repr, missing))}")
    extra = [k for k in tree if k not in keys]
    if extra:
        raise Invalid(f"unexpected key {', '.join(map(repr, extra[:5]))}")


def _check_extra(name: str, value: Any, kind: str) -> None:
    if kind == "text" and not (isinstance(value, str) and value.strip()):
        raise Invalid(f"{name!r} must be a non-empty string")
    if kind == "probability" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 <= value <= 1):
        raise Invalid(f"{name!r} must be a number between 0 and 1")


def pairs_to_mapping(tree: Any, key: str = "key", value: str = "value") -> dict[str, Any]:
    """[{"key": k, "value": v}, …] → {k: v}."""
    if not isinstance(tree, list):
        raise Invalid(f"expected a list of {{{key!r}, {value!r}}} objects, got {type_name(tree)}")
    out: dict[str, Any] = {}
    for i, pair in enumerate(tree, 1):
        if not isinstance(pair, dict) or set(pair) != {key, value} or not isinstance(pair[key], str):
            raise Invalid(f"item {i} must be an object with exactly the keys {key!r} and {value!r}")
        if pair[key] in out:
            raise Invalid(f"duplicate key {pair[key]!r}")
        out[pair[key]] = pair[value]
    return out


def rows_to_answer(rows: list[list[str]], spec: Spec, pair_header: list[str] | None = None) -> Any:
    """A grid of cells (first row the header, which must be exactly the columns) as a table, or as a record
    of `pair_header` (key, value) rows."""
    if not rows:
        raise Invalid("the table is empty")
    header = rows[0]
    expected = list(pair_header) if spec.shape == "record" else list(spec.columns)
    if header != expected:
        raise Invalid(f"the header must be {expected}, got {header}")
    if len(rows) < 2:
        raise Invalid("the table has no data rows")
    for i, row in enumerate(rows[1:], 1):
        if len(row) != len(header):
            raise Invalid(f"data row {i} has {len(row)} cells; the header has {len(header)}")
    body = rows[1:]
    if spec.shape == "table":
        return conform([dict(zip(header, row)) for row in body], spec)
    mapping: dict[str, str] = {}
    for key, value in body:
        if key in mapping:
            raise Invalid(f"duplicate key {key!r}")
        mapping[key] = value
    return conform(mapping, spec)


def jsonable(value: Any) -> Any:
    """A parsed YAML/TOML/Python tree as JSON values. Dates and times become ISO 8601 strings; anything
    else non-JSON is refused, and so are repeated references (YAML aliases), whose expansion could be
    exponential in the size of the document."""
    seen: set[int] = set()

    def walk(v: Any, depth: int) -> Any:
        if depth > 64:
            raise Invalid("the document is nested too deeply")
        if isinstance(v, (dict, list, tuple)):
            if id(v) in seen:
                raise Invalid("repeated references (aliases) are not allowed")
            seen.add(id(v))
            if len(seen) > 10_000:
                raise Invalid("the document has too many containers")
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise Invalid("keys must be strings")
            return {k: walk(x, depth + 1) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, depth + 1) for x in v]
        if v is None or isinstance(v, (str, bool, int)):
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise Invalid("numbers must be finite")
            return v
        if isinstance(v, (datetime.date, datetime.time)):  # datetime is a date
            return v.isoformat()
        raise Invalid(f"unsupported value of type {type(v).__name__}")

    return walk(value, 0)


# -- rendering helpers: the reference answer as text, or as a typed JSON value ------------------------------

_DECIMAL = re.compile(r"-?\d+(\.\d+)?")


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def typed(value: Any) -> Any:
    """Numbers held as decimal strings ("1.75") become JSON numbers; other values are unchanged."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return float(value) if "." in value else int(value)
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return value


def as_tree(answer: Any, key: str | list[str] | None = None) -> Any:
    """The answer as a typed document, wrapped in nested single-key mappings along `key`."""
    tree = typed(answer)
    for k in reversed([key] if isinstance(key, str) else key or []):
        tree = {k: tree}
    return tree
