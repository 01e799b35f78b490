"""Strict parsing of hybrid-reasoning output, shared by every environment.

With reasoning on, a response must be exactly one closed `<think>…</think>` block, first in the text
(leading whitespace allowed), followed by a non-empty answer. With reasoning off, the response is the
answer; the only tolerated tag is one *empty* leading block (`<think>\\n\\n</think>`), which hybrid models
such as Qwen 3 emit in their direct mode — any reasoning text there means the model ignored the mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"
_TAG = re.compile(r"</?think>")


@dataclass(frozen=True)
class Parsed:
    reasoning: str | None  # the text inside the think block, if any
    answer: str  # everything after the block (or the whole text), stripped
    error: str | None = None  # why the text breaks the format; None when it is well formed


def parse_reasoning(text: str, *, required: bool) -> Parsed:
    tags = _TAG.findall(text)
    if not tags:
        if required:
            return Parsed(None, text.strip(), "missing <think> block")
        return Parsed(None, text.strip())
    if tags != [OPEN, CLOSE]:
        return Parsed(None, "", f"expected exactly one <think>…</think> block, found tags {tags}")
    head, rest = text.split(OPEN, 1)
    if head.strip():
        return Parsed(None, "", "text before the <think> block")
    reasoning, answer = rest.split(CLOSE, 1)
    reasoning, answer = reasoning.strip(), answer.strip()
    if not required and reasoning:
        return Parsed(reasoning, answer, "reasoning block in direct (non-reasoning) mode")
    if required and not reasoning:
        return Parsed(reasoning, answer, "empty <think> block")
    if not answer:
        return Parsed(reasoning, answer, "no answer after the </think> block")
    return Parsed(reasoning or None, answer)
