"""Markup and table kinds: XML, HTML fragments, Markdown (lists are `labeled_lines`), CSV/TSV."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field as dataclass_field
from html import escape as html_escape
from html.parser import HTMLParser
from typing import Any
from xml.sax.saxutils import escape as xml_escape, quoteattr

from . import kind, renders
from .shape import Invalid, Spec, conform, rows_to_answer, scalar, text_of
from .text import fence as fenced, fenced_block

# -- XML -------------------------------------------------------------------------------------------------

_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.I)
_DECLARATION = re.compile(r'<\?xml version="1\.[01]"( encoding="[A-Za-z0-9._-]+")?( standalone="(yes|no)")? ?\?>')


def _children(el: ET.Element, what: str) -> list[ET.Element]:
    """The child elements; text between them (mixed content) is refused."""
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        raise Invalid(f"{what} mixes text with elements")
    return list(el)


def _leaf(el: ET.Element) -> str:
    if len(el) or el.attrib:
        raise Invalid(f"<{el.tag}> must hold only text")
    return el.text or ""


def _elements_record(el: ET.Element, what: str) -> dict[str, str]:
    tree: dict[str, str] = {}
    for child in _children(el, what):
        if child.tag in tree:
            raise Invalid(f"{what} repeats <{child.tag}>")
        tree[child.tag] = _leaf(child)
    return tree


@kind("xml", shapes={"scalar", "list", "record", "table"})
def xml_document(text: str, spec: Spec, *, root: str, item: str = "item", row: str = "row",
                 attributes: bool = False, declaration: bool = False, fence: str = "") -> Any:
    """A well-formed XML document with the given root element: a scalar is its text, a list its <item>
    children, a record its child elements (or, with `attributes`, its attributes), a table its <row>
    children. DTDs are refused outright (no entity expansion of any kind)."""
    body = fenced_block(text, fence).strip() if fence else text
    if _DTD.search(body):
        raise Invalid("DTDs and entity declarations are not allowed")
    if declaration and not _DECLARATION.match(body):
        raise Invalid('the document must start with an XML declaration: <?xml version="1.0" encoding="UTF-8"?>')
    try:
        el = ET.fromstring(body)
    except (ET.ParseError, ValueError, LookupError) as exc:  # LookupError: an unknown declared encoding
        raise Invalid(f"not well-formed XML: {exc}") from None
    if el.tag != root:
        raise Invalid(f"the root element must be <{root}>, not <{el.tag}>")
    if spec.shape == "scalar":
        return conform(_leaf(el), spec)
    if spec.shape == "list":
        children = _children(el, f"<{root}>")
        if any(c.tag != item for c in children):
            raise Invalid(f"<{root}> may contain only <{item}> elements")
        return conform([_leaf(c) for c in children], spec)
    if spec.shape == "record":
        if attributes:
            if len(el) or (el.text or "").strip():
                raise Invalid(f"<{root}> must carry the fields as attributes, with no content")
            return conform(dict(el.attrib), spec)
        return conform(_elements_record(el, f"<{root}>"), spec)
    rows = _children(el, f"<{root}>")
    if any(r.tag != row for r in rows):
        raise Invalid(f"<{root}> may contain only <{row}> elements")
    return conform([_elements_record(r, f"<{row}> {i}") for i, r in enumerate(rows, 1)], spec)


@renders("xml")
def render_xml(answer: Any, spec: Spec, *, root: str, item: str = "item", row: str = "row",
               attributes: bool = False, declaration: bool = False, fence: str = "") -> str:
    def fields(mapping: dict[str, Any], indent: str) -> str:
        return "".join(f"{indent}<{k}>{xml_escape(text_of(v))}</{k}>\n" for k, v in mapping.items())

    if spec.shape == "scalar":
        doc = f"<{root}>{xml_escape(text_of(answer))}</{root}>"
    elif spec.shape == "list":
        doc = f"<{root}>\n" + "".join(f"  <{item}>{xml_escape(text_of(v))}</{item}>\n" for v in answer) + f"</{root}>"
    elif spec.shape == "record" and attributes:
        doc = f"<{root} " + " ".join(f"{k}={quoteattr(text_of(v))}" for k, v in answer.items()) + "/>"
    elif spec.shape == "record":
        doc = f"<{root}>\n{fields(answer, '  ')}</{root}>"
    else:
        doc = f"<{root}>\n" + "".join(f"  <{row}>\n{fields(r, '    ')}  </{row}>\n" for r in answer) + f"</{root}>"
    if declaration:
        doc = '<?xml version="1.0" encoding="UTF-8"?>\n' + doc
    return fenced(doc, fence) if fence else doc


# -- HTML fragments ---------------------------------------------------------------------------------------

_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = dataclass_field(default_factory=list)

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def find(self, tag: str, attrs: dict[str, str] | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and all(_attr_matches(child, k, v) for k, v in (attrs or {}).items()):
                    found.append(child)
                found += child.find(tag, attrs)
        return found

    def elements(self, what: str) -> list[Node]:
        """The child elements; text other than whitespace between them is refused."""
        if any(isinstance(c, str) and c.strip() for c in self.children):
            raise Invalid(f"{what} has text outside its child elements")
        return [c for c in self.children if isinstance(c, Node)]


def _attr_matches(node: Node, name: str, value: str) -> bool:
    actual = node.attrs.get(name)
    return actual is not None and (value in actual.split() if name == "class" else actual == value)


class _TreeBuilder(HTMLParser):
    """Builds a Node tree and insists on strict nesting: every element closed, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack = [Node("", {})]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            if len(self.stack) > 64:
                raise Invalid("the HTML is nested too deeply")
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if len(self.stack) == 1:
            raise Invalid(f"</{tag}> closes nothing")
        if self.stack[-1].tag != tag:
            raise Invalid(f"</{tag}> does not close <{self.stack[-1].tag}>")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Node:
    # html.parser rescans unterminated comments and declarations from the start on every feed, which is
    # quadratic ("<!--" × 15,000 takes seconds); an answer fragment needs neither, so refuse them first.
    if "<!" in text or "<?" in text:
        raise Invalid("comments, doctypes and processing instructions are not allowed in the HTML fragment")
    builder = _TreeBuilder()
    try:
        builder.feed(text)
        builder.close()
    except (AssertionError, ValueError) as exc:  # html.parser's internal checks on malformed declarations
        raise Invalid(f"not parseable HTML: {exc}") from None
    if len(builder.stack) > 1:
        raise Invalid(f"<{builder.stack[-1].tag}> is never closed")
    return builder.stack[0]


def _one(root: Node, tag: str, attrs: dict[str, str] | None = None) -> Node:
    nodes = root.find(tag, attrs)
    described = f"<{tag}{''.join(f' {k}={v!r}' for k, v in (attrs or {}).items())}>"
    if len(nodes) != 1:
        raise Invalid(f"expected exactly one {described} element, found {len(nodes)}")
    return nodes[0]


@kind("html_element", shapes={"scalar"})
def html_element(text: str, spec: Spec, *, tag: str, attrs: dict[str, str] | None = None) -> Any:
    """A well-formed HTML fragment with exactly one <tag attrs…> element; its text is the answer."""
    return scalar(_one(parse_html(text), tag, attrs).text(), f"the <{tag}> element")


@renders("html_element")
def render_html_element(answer: Any, spec: Spec, *, tag: str, attrs: dict[str, str] | None = None) -> str:
    attributes = "".join(f' {k}="{html_escape(v)}"' for k, v in (attrs or {}).items())
    return f"<{tag}{attributes}>{html_escape(text_of(answer), quote=False)}</{tag}>"


@kind("html_list", shapes={"list"})
def html_list(text: str, spec: Spec, *, tag: str) -> list[Any]:
    items = _one(parse_html(text), tag).elements(f"<{tag}>")
    if any(item.tag != "li" for item in items):
        raise Invalid(f"<{tag}> may contain only <li> elements")
    if any(item.find("ul") or item.find("ol") for item in items):
        raise Invalid("nested lists are not allowed")
    return conform([item.text() for item in items], spec)


@renders("html_list")
def render_html_list(answer: Any, spec: Spec, *, tag: str) -> str:
    items = "".join(f"  <li>{html_escape(text_of(v), quote=False)}</li>\n" for v in answer)
    return f"<{tag}>\n{items}</{tag}>"


@kind("html_table", shapes={"table"})
def html_table(text: str, spec: Spec) -> list[dict[str, Any]]:
    """One <table>: a header row of <th> cells, then rows of <td> cells (thead/tbody optional)."""
    rows = _one(parse_html(text), "table").find("tr")
    if not rows:
        raise Invalid("the table has no <tr> rows")
    grid = []
    for i, tr in enumerate(rows):
        cells = tr.elements(f"<tr> {i + 1}")
        want = "th" if i == 0 else "td"
        if any(cell.tag != want for cell in cells):
            raise Invalid(f"{'the header row' if i == 0 else f'row {i}'} must be made of <{want}> cells")
        grid.append([cell.text() for cell in cells])
    return rows_to_answer(grid, spec)


@renders("html_table")
def render_html_table(answer: Any, spec: Spec) -> str:
    def row(cells: list[str], tag: str) -> str:
        return "  <tr>" + "".join(f"<{tag}>{html_escape(c, quote=False)}</{tag}>" for c in cells) + "</tr>\n"

    body = row(list(spec.columns), "th") + "".join(row([text_of(r[c]) for c in spec.columns], "td") for r in answer)
    return f"<table>\n{body}</table>"


@kind("html_dl", shapes={"record"})
def html_dl(text: str, spec: Spec) -> Any:
    """One <dl> of alternating <dt>key</dt><dd>value</dd>."""
    children = _one(parse_html(text), "dl").elements("<dl>")
    tags = [c.tag for c in children]
    if tags != ["dt", "dd"] * (len(tags) // 2) or not tags:
        raise Invalid("<dl> must alternate <dt>key</dt> and <dd>value</dd>")
    tree: dict[str, str] = {}
    for dt, dd in zip(children[::2], children[1::2]):
        if dt.text() in tree:
            raise Invalid(f"duplicate key {dt.text()!r}")
        tree[dt.text()] = dd.text()
    return conform(tree, spec)


@renders("html_dl")
def render_html_dl(answer: Any, spec: Spec) -> str:
    pairs = "".join(f"  <dt>{k}</dt><dd>{html_escape(text_of(v), quote=False)}</dd>\n" for k, v in answer.items())
    return f"<dl>\n{pairs}</dl>"


# -- Markdown ---------------------------------------------------------------------------------------------

_HEADING = re.compile(r"#{1,6}[ \t]")


def _md_cells(line: str, i: int) -> list[str]:
    line = line.strip()
    if len(line) < 2 or not (line.startswith("|") and line.endswith("|")) or line.endswith("\\|"):
        raise Invalid(f"table line {i} must start and end with '|': {line[:40]!r}")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line[1:-1])]


@kind("md_table", shapes={"table", "record"})
def md_table(text: str, spec: Spec, *, pair_header: list[str] | None = None) -> Any:
    """A pipe table and nothing else: header, delimiter row (---, :--, --:, :-:), data rows. A record is
    written as a two-column table under `pair_header`."""
    rows = [_md_cells(line, i) for i, line in enumerate(text.split("\n"), 1)]
    if len(rows) < 2:
        raise Invalid("a table needs a header row and a delimiter row")
    delimiter = rows.pop(1)
    if len(delimiter) != len(rows[0]) or not all(re.fullmatch(r":?-+:?", c) for c in delimiter):
        raise Invalid("the second line must be the delimiter row, e.g. | --- | --- |, one cell per column")
    return rows_to_answer(rows, spec, pair_header)


@renders("md_table")
def render_md_table(answer: Any, spec: Spec, *, pair_header: list[str] | None = None) -> str:
    if spec.shape == "record":
        header, rows = list(pair_header), [[k, text_of(v)] for k, v in answer.items()]
    else:
        header, rows = list(spec.columns), [[text_of(r[c]) for c in spec.columns] for r in answer]
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _section(lines: list[str], start: int) -> str:
    """The text from line `start` up to the next heading, on one line."""
    body = []
    for line in lines[start:]:
        if _HEADING.match(line):
            break
        body.append(line)
    return " ".join(" ".join(body).split())


@kind("md_heading", shapes={"scalar"})
def md_heading(text: str, spec: Spec, *, level: int, title: str) -> Any:
    """The text under the heading `## Answer` (exactly that heading, once) up to the next heading."""
    heading = f"{'#' * level} {title}"
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if line.strip() == heading]
    if len(hits) != 1:
        raise Invalid(f"expected the heading {heading!r} once, found it {len(hits)} times")
    return scalar(_section(lines, hits[0] + 1), f"the text under {heading!r}")


@renders("md_heading")
def render_md_heading(answer: Any, spec: Spec, *, level: int, title: str) -> str:
    return f"{'#' * level} {title}\n\n{text_of(answer)}"


@kind("md_sections", shapes={"list"})
def md_sections(text: str, spec: Spec, *, level: int, title: str) -> list[Any]:
    """One heading per part (`### Part 1`, `### Part 2`, …) in order, each followed by its answer."""
    lines = [line.strip() for line in text.split("\n")]
    prefix = f"{'#' * level} {title.split('{n}')[0]}"
    found = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    count = spec.count or len(found)
    if len(found) != count:
        raise Invalid(f"expected {count} '{prefix}…' headings, found {len(found)}")
    values = []
    for n, i in enumerate(found, 1):
        heading = f"{'#' * level} {title.replace('{n}', str(n))}"
        if lines[i] != heading:
            raise Invalid(f"heading {n} must be {heading!r}, got {lines[i][:40]!r}")
        values.append(scalar(_section(lines, i + 1), f"the text under {heading!r}"))
    return values


@renders("md_sections")
def render_md_sections(answer: Any, spec: Spec, *, level: int, title: str) -> str:
    return "\n\n".join(f"{'#' * level} {title.replace('{n}', str(n))}\n\n{text_of(v)}"
                       for n, v in enumerate(answer, 1))


@kind("md_blockquote", shapes={"scalar"})
def md_blockquote(text: str, spec: Spec) -> Any:
    """One block quote (consecutive lines starting with '>'), not nested; text around it is fine."""
    lines = text.split("\n")
    quoted = [i for i, line in enumerate(lines) if line.lstrip().startswith(">")]
    if not quoted:
        raise Invalid("no block quote (lines starting with '> ')")
    if quoted != list(range(quoted[0], quoted[-1] + 1)):
        raise Invalid("write exactly one block quote, on consecutive '> ' lines")
    content = [lines[i].lstrip()[1:] for i in quoted]
    if any(c.lstrip().startswith(">") for c in content):
        raise Invalid("nested block quotes are not allowed")
    return scalar(" ".join(" ".join(content).split()), "the block quote")


@renders("md_blockquote")
def render_md_blockquote(answer: Any, spec: Spec) -> str:
    return f"> {text_of(answer)}"


@kind("md_inline", shapes={"scalar"})
def md_inline(text: str, spec: Spec, *, delim: str) -> Any:
    """The answer in one inline span (**bold**, *italic*, `code`): the response holds exactly two runs
    of the delimiter's character, each exactly the delimiter."""
    runs = list(re.finditer(re.escape(delim[0]) + "+", text))
    if len(runs) != 2 or any(len(run[0]) != len(delim) for run in runs):
        raise Invalid(f"write the answer as {delim}answer{delim}, once, with no other {delim[0]!r} in the response")
    inner = text[runs[0].end():runs[1].start()]
    if inner != inner.strip() or "\n" in inner:
        raise Invalid(f"no spaces or line breaks just inside {delim} … {delim}")
    return scalar(inner)


@renders("md_inline")
def render_md_inline(answer: Any, spec: Spec, *, delim: str) -> str:
    return f"{delim}{text_of(answer)}{delim}"


# -- CSV / TSV --------------------------------------------------------------------------------------------


@kind("csv", shapes={"table", "record"})
def csv_document(text: str, spec: Spec, *, delimiter: str = ",", header: bool = True,
                 pair_header: list[str] | None = None, fence: str = "") -> Any:
    """Delimiter-separated rows (RFC 4180 quoting), the header first unless `header` is false; no blank
    lines. A record is written as two columns under `pair_header`."""
    body = fenced_block(text, fence).strip() if fence else text
    try:
        rows = list(csv.reader(io.StringIO(body), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise Invalid(f"not valid CSV: {exc}") from None
    if any(not row for row in rows):
        raise Invalid("blank line in the table")
    if any(cell != cell.strip() for row in rows for cell in row):
        raise Invalid("a space next to a delimiter is part of the field: write fields without padding")
    if not header:
        rows = [list(spec.columns), *rows]
    return rows_to_answer(rows, spec, pair_header)


@renders("csv")
def render_csv(answer: Any, spec: Spec, *, delimiter: str = ",", header: bool = True,
               pair_header: list[str] | None = None, fence: str = "") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    if spec.shape == "record":
        writer.writerows([pair_header, *([k, text_of(v)] for k, v in answer.items())])
    else:
        writer.writerows(([list(spec.columns)] if header else []) + [[text_of(r[c]) for c in spec.columns] for r in answer])
    return fenced(out.getvalue(), fence) if fence else out.getvalue().strip()
