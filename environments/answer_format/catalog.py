"""The format catalog: catalog.toml loaded into `Format` objects, each checked against the validator and
content registries when the package is imported, so a broken entry fails loudly at once."""

from __future__ import annotations

import inspect
import random
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .content import GENERATORS, Content
from .validators import KIND_SHAPES, RENDERERS, VALIDATORS, Check, Spec, render, validate

CATALOG_PATH = Path(__file__).with_name("catalog.toml")
_FIELDS = {"id", "family", "validator", "params", "content", "instruction"}
_ID = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{(keys|columns|count|labels)\}")


class CatalogError(ValueError):
    """An entry of the catalog is malformed or names something that does not exist."""


@dataclass(frozen=True)
class ContentRef:
    kind: str  # a content generator's name
    kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class Format:
    id: str
    family: str
    validator: str
    params: Mapping[str, Any]
    content: tuple[ContentRef, ...]
    instruction: str
    shapes: frozenset[str]  # the answer shapes its content gives, so the ones it is checked for

    def generate(self, rng: random.Random) -> Content:
        ref = rng.choice(self.content)
        return GENERATORS[ref.kind](rng, **ref.kwargs)

    def instruction_for(self, spec: Spec) -> str:
        values = {"keys": _quoted(spec.keys), "columns": _quoted(spec.columns), "count": str(spec.count),
                  "labels": ", ".join(spec.labels)}
        return _PLACEHOLDER.sub(lambda m: values[m[1]], self.instruction)

    def accepts(self, spec: Spec) -> bool:
        return spec.shape in self.shapes

    def check(self, text: str, spec: Spec) -> Check:
        return validate(self.validator, text, spec, dict(self.params))

    def render(self, answer: Any, spec: Spec) -> str:
        """The canonical response carrying `answer` in this format."""
        return render(self.validator, answer, spec, dict(self.params))


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def load_catalog(path: Path = CATALOG_PATH) -> dict[str, Format]:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    formats: dict[str, Format] = {}
    for i, entry in enumerate(doc.get("format", []), 1):
        fmt = _format(entry, f"{path.name}, format #{i} ({entry.get('id', '?')})")
        if fmt.id in formats:
            raise CatalogError(f"{path.name}: duplicate format id {fmt.id!r}")
        formats[fmt.id] = fmt
    return formats


def _format(entry: dict[str, Any], where: str) -> Format:
    if missing := {"id", "family", "validator", "content", "instruction"} - set(entry):
        raise CatalogError(f"{where}: missing {sorted(missing)}")
    if unknown := set(entry) - _FIELDS:
        raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
    if not _ID.fullmatch(entry["id"]) or not _ID.fullmatch(entry["family"]):
        raise CatalogError(f"{where}: id and family must be lower_snake_case")
    name, params = entry["validator"], entry.get("params", {})
    if name not in VALIDATORS:
        raise CatalogError(f"{where}: unknown validator {name!r}")
    for fn in (VALIDATORS[name], RENDERERS[name]):
        _bind(fn, where, "validator params", None, Spec(), **params)
    refs = tuple(_content_ref(item, where) for item in entry["content"])
    if not refs:
        raise CatalogError(f"{where}: no content")
    shapes = set()
    for ref in refs:
        sample = GENERATORS[ref.kind](random.Random(0), **ref.kwargs).spec
        shapes.add(sample.shape)
        if sample.shape not in KIND_SHAPES[name]:
            raise CatalogError(f"{where}: validator {name!r} cannot carry {ref.kind!r} answers ({sample.shape})")
        provided = {"keys": sample.keys, "columns": sample.columns, "count": sample.count, "labels": sample.labels}
        for placeholder in _PLACEHOLDER.findall(entry["instruction"]):
            if not provided[placeholder]:
                raise CatalogError(f"{where}: the instruction uses {{{placeholder}}}, which {ref.kind!r} does not give")
    return Format(entry["id"], entry["family"], name, params, refs, entry["instruction"], frozenset(shapes))


def _content_ref(item: str | dict[str, Any], where: str) -> ContentRef:
    kind, kwargs = (item, {}) if isinstance(item, str) else (item.get("kind"), {k: v for k, v in item.items() if k != "kind"})
    if kind not in GENERATORS:
        raise CatalogError(f"{where}: unknown content {kind!r} (known: {', '.join(sorted(GENERATORS))})")
    _bind(GENERATORS[kind], where, f"content {kind!r} arguments", random.Random(0), **kwargs)
    return ContentRef(kind, kwargs)


def _bind(fn: Any, where: str, what: str, *args: Any, **kwargs: Any) -> None:
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise CatalogError(f"{where}: bad {what}: {exc}") from None


def summary(formats: Mapping[str, Format]) -> str:
    """A listing of every format by family: id, validator kind and the start of its instruction."""
    families: dict[str, list[Format]] = {}
    for fmt in formats.values():
        families.setdefault(fmt.family, []).append(fmt)
    lines = [f"{len(formats)} answer formats in {len(families)} families (environments/answer_format/catalog.toml)"]
    for family, members in families.items():
        lines.append(f"\n{family} ({len(members)})")
        for fmt in members:
            text = fmt.instruction if len(fmt.instruction) <= 78 else fmt.instruction[:77] + "…"
            lines.append(f"  {fmt.id:<26} {fmt.validator:<16} {text}")
    return "\n".join(lines)


CATALOG: dict[str, Format] = load_catalog()
