"""Validators: one plain function per format *kind*, registered by name and named by the catalog.

A validator reads a response (its answer part, line endings normalised to "\\n") and returns the answer it
extracted, as a JSON value, or raises `Invalid` with the reason; `validate()` turns both into a `Check`
and never lets anything else escape on model output. Every kind also has a renderer, its inverse: the
canonical response that carries a given answer, used for reference responses in tests, benchmarks and
seed data.

A kind is called with the response, the answer's `Spec` (what the content generator knows about the
answer: its shape, and the keys, columns, part count or option labels that a structured format must
show) and the keyword parameters of its catalog entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .shape import SHAPES, Invalid, Spec

MAX_CHARS = 64_000  # longer answers are refused before any parser sees them (cost and memory bound)

Validator = Callable[..., Any]  # (text, spec, **params) -> JSON value, or raise Invalid
Renderer = Callable[..., str]  # (answer, spec, **params) -> response text

VALIDATORS: dict[str, Validator] = {}
RENDERERS: dict[str, Renderer] = {}
KIND_SHAPES: dict[str, frozenset[str]] = {}  # the answer shapes each kind can carry


@dataclass(frozen=True)
class Check:
    answer: Any = None  # the extracted answer (a JSON value) when the response is well formed
    error: str | None = None  # why it is not

    @property
    def ok(self) -> bool:
        return self.error is None


def kind(name: str, *, shapes: set[str]) -> Callable[[Validator], Validator]:
    """Register a validator under `name`, for answers of the given shapes."""
    assert shapes <= SHAPES, shapes

    def register(fn: Validator) -> Validator:
        assert name not in VALIDATORS, f"validator {name!r} registered twice"
        VALIDATORS[name], KIND_SHAPES[name] = fn, frozenset(shapes)
        return fn

    return register


def renders(name: str) -> Callable[[Renderer], Renderer]:
    def register(fn: Renderer) -> Renderer:
        assert name not in RENDERERS, f"renderer {name!r} registered twice"
        RENDERERS[name] = fn
        return fn

    return register


def validate(name: str, text: str, spec: Spec, params: dict[str, Any]) -> Check:
    """Check `text` against kind `name`; surrounding whitespace never matters."""
    text = text.strip()
    if len(text) > MAX_CHARS:
        return Check(error=f"answer is {len(text)} characters long; at most {MAX_CHARS} are read")
    if not text:
        return Check(error="empty answer")
    try:
        return Check(answer=VALIDATORS[name](text, spec, **params))
    except Invalid as exc:
        return Check(error=str(exc)[:500])  # reasons quote the response: keep them short


def render(name: str, answer: Any, spec: Spec, params: dict[str, Any]) -> str:
    return RENDERERS[name](answer, spec, **params)


# The kinds register themselves on import.
from . import data, latex, markup, text, values  # noqa: E402,F401

__all__ = ["Check", "Invalid", "KIND_SHAPES", "MAX_CHARS", "RENDERERS", "Spec", "VALIDATORS", "kind", "render",
           "renders", "validate"]
