"""LaTeX kinds: a command around the answer (`\\boxed{…}`), a whole-response math block, list and matrix
environments, and tabular tables. Extracted LaTeX is turned into plain text by `latex_plain`, so
`\\boxed{\\frac{5}{6}}` carries the answer "5/6" and `\\boxed{\\text{Paris}}` carries "Paris"."""

from __future__ import annotations

import re
from typing import Any

from . import kind, renders
from .shape import Invalid, Spec, check_count, conform, rows_to_answer, scalar, text_of

_UNWRAP = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|operatorname|mbox)\{([^{}]*)\}")
_FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_THIN_SPACE = re.compile(r"\\[,;:!]")
_FRACTION_TEXT = re.compile(r"(-?)(\d+)/(\d+)")


def latex_plain(text: str) -> str:
    """LaTeX markup of a short answer as plain text: math delimiters, text/font wrappers and thin spaces
    removed, \\frac{a}{b} written a/b."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "$":
        text = text.strip("$")
    for _ in range(4):  # wrappers nest a few deep at most (\text{\textbf{…}})
        unwrapped = _FRAC.sub(r"\1/\2", _UNWRAP.sub(r"\1", text))
        if unwrapped == text:
            break
        text = unwrapped
    text = _THIN_SPACE.sub("", text).replace("\\ ", " ").replace("~", " ")
    for escaped, plain in (("\\%", "%"), ("\\$", "$"), ("{,}", ","), ("\\{", "{"), ("\\}", "}")):
        text = text.replace(escaped, plain)
    return " ".join(text.split())


def to_latex(value: Any) -> str:
    """A reference answer written in LaTeX: fractions "a/b" as \\frac{a}{b}."""
    text = text_of(value)
    match = _FRACTION_TEXT.fullmatch(text)
    return f"{match[1]}\\frac{{{match[2]}}}{{{match[3]}}}" if match else text


def closing_brace(text: str, open_at: int) -> int:
    """Index of the brace closing the one at `open_at` (escaped braces skipped), or -1."""
    depth, i = 0, open_at
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


# -- a command around the answer ---------------------------------------------------------------------------

_MATH = {"inline": ("$", "$"), "display": ("\\[", "\\]")}


@kind("latex_command", shapes={"scalar", "list"})
def latex_command(text: str, spec: Spec, *, command: str, math: str = "", lhs: str = "") -> Any:
    """`\\command{answer}` exactly once (a list: once per part, in order), optionally inside inline or
    display math, optionally as `lhs = answer`."""
    values = []
    for match in re.finditer(rf"\\{command}(?![A-Za-z])\s*\{{", text):
        close = closing_brace(text, match.end() - 1)
        if close < 0:
            raise Invalid(f"\\{command}{{ is never closed")
        if math:
            left, right = _MATH[math]
            if not (text[:match.start()].rstrip().endswith(left) and text[close + 1:].lstrip().startswith(right)):
                raise Invalid(f"\\{command}{{…}} must stand inside {left} … {right}")
        content = latex_plain(text[match.end():close])
        if lhs:
            assignment = re.fullmatch(rf"{re.escape(lhs)}\s*=\s*(.*)", content)
            if assignment is None:
                raise Invalid(f"write \\{command}{{{lhs} = …}}")
            content = assignment[1]
        values.append(scalar(content, f"the content of \\{command}{{}}"))
    if not values:
        raise Invalid(f"no \\{command}{{…}}")
    if spec.shape == "scalar":
        if len(values) > 1:
            raise Invalid(f"\\{command}{{…}} appears {len(values)} times; write it once")
        return values[0]
    return check_count(values, spec.count)


@renders("latex_command")
def render_latex_command(answer: Any, spec: Spec, *, command: str, math: str = "", lhs: str = "") -> str:
    left, right = _MATH.get(math, ("", ""))
    pieces = [f"{left}\\{command}{{{f'{lhs} = ' if lhs else ''}{to_latex(v)}}}{right}"
              for v in (answer if spec.shape == "list" else [answer])]
    return ", ".join(pieces)


# -- the whole response is one math block ------------------------------------------------------------------

_BLOCKS = {"inline": ("$", "$"), "double": ("$$", "$$"), "display": ("\\[", "\\]"), "paren": ("\\(", "\\)"),
           "equation": ("\\begin{equation}", "\\end{equation}")}


@kind("latex_math", shapes={"scalar"})
def latex_math(text: str, spec: Spec, *, delim: str) -> Any:
    left, right = _BLOCKS[delim]
    if len(text) < len(left) + len(right) or not (text.startswith(left) and text.endswith(right)):
        raise Invalid(f"the response must be a single {left} … {right} block")
    inner = text[len(left):-len(right)]
    if left in inner or right in inner or "$" in inner:
        raise Invalid(f"write exactly one {left} … {right} block and nothing else")
    return scalar(latex_plain(inner), "the math block")


@renders("latex_math")
def render_latex_math(answer: Any, spec: Spec, *, delim: str) -> str:
    left, right = _BLOCKS[delim]
    return f"{left}{to_latex(answer)}{right}"


# -- environments: itemize/enumerate, a row vector, tabular ------------------------------------------------


def _environment(text: str, env: str) -> str:
    begin, end = f"\\begin{{{env}}}", f"\\end{{{env}}}"
    if text.count(begin) != 1 or text.count(end) != 1:
        raise Invalid(f"write exactly one {begin} … {end}")
    start, stop = text.index(begin) + len(begin), text.index(end)
    if stop < start:
        raise Invalid(f"{end} comes before {begin}")
    return text[start:stop]


@kind("latex_list", shapes={"list"})
def latex_list(text: str, spec: Spec, *, env: str) -> list[Any]:
    if not (text.startswith(f"\\begin{{{env}}}") and text.endswith(f"\\end{{{env}}}")):
        raise Invalid(f"the response must be one \\begin{{{env}}} … \\end{{{env}}} environment")
    body = _environment(text, env)
    if "\\begin{" in body:
        raise Invalid("nested environments are not allowed")
    head, *items = re.split(r"\\item(?![A-Za-z])", body)
    if head.strip():
        raise Invalid("text before the first \\item")
    if not items:
        raise Invalid("no \\item")
    return conform([latex_plain(item) for item in items], spec)


@renders("latex_list")
def render_latex_list(answer: Any, spec: Spec, *, env: str) -> str:
    items = "".join(f"  \\item {to_latex(v)}\n" for v in answer)
    return f"\\begin{{{env}}}\n{items}\\end{{{env}}}"


@kind("latex_matrix", shapes={"list"})
def latex_matrix(text: str, spec: Spec, *, env: str) -> list[Any]:
    """A one-row matrix (`\\begin{pmatrix} 1 & 2 & 3 \\end{pmatrix}`), anywhere in the response."""
    rows = [row for row in _environment(text, env).split("\\\\") if row.strip()]
    if len(rows) != 1:
        raise Invalid(f"write a single row, entries separated by &; found {len(rows)} rows")
    return conform([latex_plain(cell) for cell in rows[0].split("&")], spec)


@renders("latex_matrix")
def render_latex_matrix(answer: Any, spec: Spec, *, env: str) -> str:
    return f"\\[ \\begin{{{env}}} {' & '.join(to_latex(v) for v in answer)} \\end{{{env}}} \\]"


_RULES = re.compile(r"\\(?:hline|toprule|midrule|bottomrule)(?![A-Za-z])")


@kind("latex_tabular", shapes={"table"})
def latex_tabular(text: str, spec: Spec) -> list[dict[str, Any]]:
    """One tabular environment: a column spec with one l/c/r per column, the header row, then data rows."""
    body = _environment(text, "tabular")
    if not body.startswith("{") or (close := closing_brace(body, 0)) < 0:
        raise Invalid("\\begin{tabular} must be followed by its column spec, e.g. {lll}")
    columns = re.sub(r"[|\s]", "", body[1:close])
    if not re.fullmatch(r"[lcr]+", columns) or len(columns) != len(spec.columns):
        raise Invalid(f"the column spec must have one l, c or r per column ({len(spec.columns)}), got {body[1:close]!r}")
    rows = []
    for line in body[close + 1:].split("\\\\"):
        line = _RULES.sub("", line).strip()
        if line:
            rows.append([latex_plain(cell) for cell in line.split("&")])
    return rows_to_answer(rows, spec)


@renders("latex_tabular")
def render_latex_tabular(answer: Any, spec: Spec) -> str:
    lines = [" & ".join(spec.columns) + " \\\\", "\\hline"]
    lines += [" & ".join(to_latex(row[c]) for c in spec.columns) + " \\\\" for row in answer]
    return f"\\begin{{tabular}}{{{'l' * len(spec.columns)}}}\n" + "\n".join(lines) + "\n\\end{tabular}"
