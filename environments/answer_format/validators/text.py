"""Plain-text kinds: an answer after a marker, between wrappers or tags, on a regex template line; lists
with a separator, labelled lines (multi-part answers, Markdown lists), enumerated choices, code blocks."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from . import kind, renders
from .latex import latex_plain, to_latex
from .shape import Invalid, Spec, check_count, scalar, text_of

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def fenced_block(text: str, lang: str) -> str:
    """The body of the one ``` code block in `text`, which must be tagged `lang`; prose around it is fine."""
    fences = text.count("```")
    if fences == 0:
        raise Invalid(f"no ```{lang} code block")
    if fences != 2:
        raise Invalid(f"expected one code block (two ``` fences), found {fences} fences")
    match = _FENCE.search(text)
    if match is None:
        raise Invalid("the ``` fences must each start a line, with the code on the lines between")
    tag = match[1].strip()
    if tag != lang:
        raise Invalid(f"the code block is tagged {tag!r}; expected {lang!r}")
    return match[2]


def fence(body: str, lang: str) -> str:
    return f"```{lang}\n{body.rstrip()}\n```"


def last_line(text: str) -> str:
    return text.rsplit("\n", 1)[-1].strip()


# -- marker: `Answer: 42` on the last line --------------------------------------------------------------


@kind("marker", shapes={"scalar"})
def marker(text: str, spec: Spec, *, marker: str, suffix: str = "", latex: bool = False) -> Any:
    n = text.count(marker)
    if n != 1:
        raise Invalid(f"no {marker.strip()!r} line" if n == 0 else f"{marker.strip()!r} appears {n} times; write it once")
    line = last_line(text)
    if not line.startswith(marker):
        raise Invalid(f"the last line must start with {marker.strip()!r}")
    value = line[len(marker):]
    if suffix:
        if not value.endswith(suffix):
            raise Invalid(f"the {marker.strip()!r} line must end with {suffix!r}")
        value = value[: -len(suffix)]
    return scalar(latex_plain(value) if latex else value)


@renders("marker")
def render_marker(answer: Any, spec: Spec, *, marker: str, suffix: str = "", latex: bool = False) -> str:
    return f"{marker}{f'${to_latex(answer)}$' if latex else text_of(answer)}{suffix}"


# -- wrapped: <answer>42</answer>, [[42]], "Paris" ------------------------------------------------------


@kind("wrapped", shapes={"scalar"})
def wrapped(text: str, spec: Spec, *, left: str, right: str, only: bool = False) -> Any:
    if left == right:
        n = text.count(left)
        if n != 2:
            raise Invalid(f"expected exactly two {left!r}, found {n}")
        start = text.index(left)
        end = text.index(right, start + len(left))
    else:
        for delim in (left, right):
            if (n := text.count(delim)) != 1:
                raise Invalid(f"{delim!r} appears {n} times; expected once")
        start, end = text.index(left), text.index(right)
        if end < start:
            raise Invalid(f"{right!r} comes before {left!r}")
    if only and (start != 0 or end + len(right) != len(text)):
        raise Invalid(f"nothing may come before {left!r} or after {right!r}")
    return scalar(text[start + len(left):end])


@renders("wrapped")
def render_wrapped(answer: Any, spec: Spec, *, left: str, right: str, only: bool = False) -> str:
    return f"{left}{text_of(answer)}{right}"


@kind("tagged_sections", shapes={"scalar"})
def tagged_sections(text: str, spec: Spec, *, tags: list[str], answer_tag: str) -> Any:
    """The whole response is the given tags in order (`<reasoning>…</reasoning><answer>…</answer>`)."""
    found, pos = {}, 0
    for tag in tags:
        left, right = f"<{tag}>", f"</{tag}>"
        for delim in (left, right):
            if (n := text.count(delim)) != 1:
                raise Invalid(f"{delim} appears {n} times; expected once")
        start, end = text.index(left), text.index(right)
        if start < pos or end < start:
            raise Invalid(f"the sections must come in the order {', '.join(f'<{t}>' for t in tags)}, each closed")
        if text[pos:start].strip():
            raise Invalid(f"text outside the tags, before <{tag}>")
        found[tag] = scalar(text[start + len(left):end], f"the <{tag}> section")
        pos = end + len(right)
    if text[pos:].strip():
        raise Invalid(f"text after </{tags[-1]}>")
    return found[answer_tag]


@renders("tagged_sections")
def render_tagged_sections(answer: Any, spec: Spec, *, tags: list[str], answer_tag: str) -> str:
    return "\n".join(f"<{t}>{text_of(answer) if t == answer_tag else 'Worked it out step by step.'}</{t}>" for t in tags)


# -- regex: a template line such as `RESULT[42]` -----------------------------------------------------------


@lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@kind("regex", shapes={"scalar"})
def regex(text: str, spec: Spec, *, pattern: str, template: str, whole: bool = False) -> Any:
    """`pattern` must fully match the last line (or the whole response), its group `answer` is the answer."""
    target = text if whole else last_line(text)
    match = _compiled(pattern).fullmatch(target)
    if match is None:
        raise Invalid(f"the {'response' if whole else 'last line'} does not follow the template {template!r}")
    return scalar(match["answer"])


@renders("regex")
def render_regex(answer: Any, spec: Spec, *, pattern: str, template: str, whole: bool = False) -> str:
    return template.replace("{answer}", text_of(answer))


# -- lists on one line, labelled lines, choices ---------------------------------------------------------


_LIST_MARKER = re.compile(r"(?:[-*+]|\d+[.)])\s")


@kind("delimited", shapes={"list"})
def delimited(text: str, spec: Spec, *, sep: str, brackets: str = "", conjunction: str = "") -> list[Any]:
    """Items joined by `sep` (", ", "; ", " | ", "\\n"), optionally in brackets, or as an English series
    with `conjunction` ("a, b, and c"). Spaces around a separator do not matter; one item per line means
    no bullets or numbers."""
    if sep != "\n" and "\n" in text:
        raise Invalid("write the whole list on one line")
    if brackets:
        if not (text.startswith(brackets[0]) and text.endswith(brackets[1])) or len(text) < 2:
            raise Invalid(f"the list must be enclosed in {brackets[0]} … {brackets[1]}")
        text = text[1:-1]
    items = [item.strip() for item in text.split(sep.strip() or sep)]
    if sep == "\n" and any(_LIST_MARKER.match(item) for item in items):
        raise Invalid("write the items without bullets or numbers")
    if conjunction:
        items = _series(items, conjunction)
    return check_count([scalar(item, f"item {i}") for i, item in enumerate(items, 1)], spec.count)


def _series(items: list[str], conjunction: str) -> list[str]:
    word = f"{conjunction} "
    if len(items) == 1:
        return items[0].split(f" {word}") if f" {word}" in items[0] else items
    if len(items) == 2:
        raise Invalid(f"join two items with ' {conjunction} ', not a comma")
    if not items[-1].startswith(word):
        raise Invalid(f"the last item must follow ', {conjunction} '")
    return [*items[:-1], items[-1][len(word):]]


@renders("delimited")
def render_delimited(answer: Any, spec: Spec, *, sep: str, brackets: str = "", conjunction: str = "") -> str:
    texts = [text_of(v) for v in answer]
    if conjunction and len(texts) == 2:
        body = f" {conjunction} ".join(texts)
    elif conjunction and len(texts) > 2:
        body = sep.join(texts[:-1]) + f"{sep}{conjunction} {texts[-1]}"
    else:
        body = sep.join(texts)
    return f"{brackets[:1]}{body}{brackets[1:]}"


def label_of(template: str, i: int) -> str:
    """The i-th (1-based) label: {n} → 1, 2, …; {a} → a, b, …; {A} → A, B, …; a template without a
    placeholder is the same for every line (a bullet)."""
    return template.replace("{n}", str(i)).replace("{a}", chr(96 + i)).replace("{A}", chr(64 + i))


@kind("labeled_lines", shapes={"list"})
def labeled_lines(text: str, spec: Spec, *, label: str) -> list[Any]:
    """One item per line, each starting with its label: "(a) ", "Part 1: ", "1. ", "- ". Blank lines
    between items are fine; any other line, or an indented one (a nested item), is not."""
    lines = [line.rstrip() for line in text.split("\n") if line.strip()]
    values = []
    for i, line in enumerate(lines, 1):
        prefix = label_of(label, i)
        if not line.startswith(prefix):
            raise Invalid(f"line {i} must start with {prefix!r}: {line[:40]!r}")
        values.append(scalar(line[len(prefix):], f"item {i}"))
    return check_count(values, spec.count)


@renders("labeled_lines")
def render_labeled_lines(answer: Any, spec: Spec, *, label: str) -> str:
    return "\n".join(f"{label_of(label, i)}{text_of(v)}" for i, v in enumerate(answer, 1))


@kind("enum", shapes={"scalar"})
def enum(text: str, spec: Spec, *, values: dict[str, Any] | list[str] | None = None, template: str = "{label}") -> Any:
    """The whole response is one label, written as `template`; `values` maps labels to answers (a list maps
    each label to itself; none means the task's option labels)."""
    choices = values if isinstance(values, dict) else {v: v for v in (values or spec.labels)}
    if not choices:
        raise Invalid("the task lists no options")
    for label, value in choices.items():
        if text == template.replace("{label}", label):
            return value
    shown = ", ".join(template.replace("{label}", label) for label in choices)
    raise Invalid(f"the response must be exactly one of: {shown}")


@renders("enum")
def render_enum(answer: Any, spec: Spec, *, values: dict[str, Any] | list[str] | None = None, template: str = "{label}") -> str:
    label = next((k for k, v in values.items() if v == answer), None) if isinstance(values, dict) else answer
    return template.replace("{label}", str(label))


@kind("fenced_text", shapes={"scalar"})
def fenced_text(text: str, spec: Spec, *, lang: str) -> Any:
    return scalar(fenced_block(text, lang), "the code block")


@renders("fenced_text")
def render_fenced_text(answer: Any, spec: Spec, *, lang: str) -> str:
    return fence(text_of(answer), lang)
