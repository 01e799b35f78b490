"""Data-language kinds: JSON, JSON Lines, YAML, TOML, Python and JavaScript literals, INI, key–value lines,
query strings, logfmt and S-expressions.

Each parses its syntax with the standard parser where one exists (json, tomllib, configparser, ast, PyYAML's
safe loader), strictly: duplicate keys, NaN/Infinity, YAML aliases and multiple documents are refused.
`key` descends into a wrapper mapping ({"answer": …}); `fence` asks for the document inside a ``` block
tagged with that language. The parsed value must then have the task's shape (shape.conform).
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import tomllib
import urllib.parse
import warnings
from collections.abc import Callable
from typing import Any

import yaml

from . import kind, renders
from .shape import Invalid, Spec, as_tree, conform, field, jsonable, pairs_to_mapping, text_of, type_name, typed
from .text import fence as fenced, fenced_block

ALL = {"scalar", "list", "record", "table"}


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml: ~10x faster
    """The safe loader, refusing duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if (key_node.tag, key_node.value) in seen:
                    raise Invalid(f"duplicate key {key_node.value!r}")
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep=deep)


def _body(text: str, fence: str) -> str:
    return fenced_block(text, fence).strip() if fence else text


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n")[0][:200]


# -- JSON ------------------------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise Invalid(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Invalid(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting thousands deep
        raise Invalid(f"not valid JSON: {_first_line(exc)}") from None


_JSON_TYPES = {"string": str, "number": (int, float)}


@kind("json", shapes=ALL)
def json_document(text: str, spec: Spec, *, key: str | list[str] | None = None, extra: dict[str, str] | None = None,
                  fence: str = "", single_line: bool = False, exact_keys: bool = True, pairs: bool = False,
                  literal: str = "") -> Any:
    """A JSON document: `literal` ("string"/"number") asks for a bare value of that type, `pairs` for a
    record written as [{"key": …, "value": …}], `exact_keys=False` allows keys beyond the required ones."""
    body = _body(text, fence)
    if single_line and "\n" in body:
        raise Invalid("write the JSON on a single line")
    tree = parse_json(body)
    if literal and (isinstance(tree, bool) or not isinstance(tree, _JSON_TYPES[literal])):
        raise Invalid(f"the response must be a JSON {literal}, not {type_name(tree)}")
    if key:
        tree = field(tree, key, extra)
    if pairs:
        tree = pairs_to_mapping(tree)
    return conform(tree, spec, exact_keys=exact_keys)


@renders("json")
def render_json(answer: Any, spec: Spec, *, key: str | list[str] | None = None, extra: dict[str, str] | None = None,
                fence: str = "", single_line: bool = False, exact_keys: bool = True, pairs: bool = False,
                literal: str = "") -> str:
    tree = as_tree(answer, key)
    if pairs:
        tree = [{"key": k, "value": v} for k, v in tree.items()]
    if extra:
        tree.update({name: "Worked it out step by step." if kind == "text" else 0.9 for name, kind in extra.items()})
    text = json.dumps(tree, ensure_ascii=False, indent=None if single_line or literal else 2)
    return fenced(text, fence) if fence else text


@kind("jsonl", shapes={"table"})
def jsonl(text: str, spec: Spec) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(text.split("\n"), 1):
        try:
            rows.append(parse_json(line))
        except Invalid as exc:
            raise Invalid(f"line {i}: {exc}") from None
    return conform(rows, spec)


@renders("jsonl")
def render_jsonl(answer: Any, spec: Spec) -> str:
    return "\n".join(json.dumps(typed(row), ensure_ascii=False) for row in answer)


# -- YAML and TOML ---------------------------------------------------------------------------------------


def _check_yaml_depth(text: str, limit: int = 64) -> None:
    """Refuse documents nested deeper than `limit`: libyaml's composer recurses in C and a few thousand
    levels ('[[[[…') crash the process. Every level needs one of [ { - : ? so most documents are cleared
    by counting those; the rest are measured on the parser's event stream, which does not recurse."""
    if sum(text.count(c) for c in "[{-:?") <= limit:
        return
    depth = 0
    for event in yaml.parse(text, Loader=_YamlLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > limit:
                raise Invalid(f"the document is nested more than {limit} levels deep")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


@kind("yaml", shapes=ALL)
def yaml_document(text: str, spec: Spec, *, key: str | None = None, fence: str = "", flow: bool | None = None,
                  explicit_start: bool = False) -> Any:
    """One YAML document (safe loader: standard types only; no aliases, no duplicate keys). `flow` true asks
    for a [a, b] flow sequence, false for block style; `explicit_start` for a leading `---` line."""
    body = _body(text, fence)
    if flow and not body.startswith("["):
        raise Invalid("write the list in flow style: [a, b, c]")
    if flow is False and body.startswith(("[", "{")):
        raise Invalid("write the document in block style, one entry per line")
    if explicit_start and body.split("\n", 1)[0].rstrip() != "---":
        raise Invalid("the document must start with a '---' line")
    try:
        _check_yaml_depth(body)
        tree = jsonable(yaml.load(body, Loader=_YamlLoader))
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: integers beyond 4,300 digits
        raise Invalid(f"not valid YAML: {_first_line(exc)}") from None
    if key:
        tree = field(tree, key)
    return conform(tree, spec)


@renders("yaml")
def render_yaml(answer: Any, spec: Spec, *, key: str | None = None, fence: str = "", flow: bool | None = None,
                explicit_start: bool = False) -> str:
    text = yaml.safe_dump(as_tree(answer, key), sort_keys=False, allow_unicode=True, default_flow_style=bool(flow),
                          explicit_start=explicit_start, width=1000).strip()
    return fenced(text, fence) if fence else text


@kind("toml", shapes=ALL)
def toml_document(text: str, spec: Spec, *, key: str | list[str] | None = None, fence: str = "") -> Any:
    """A TOML document; `key` names the value, table or array of tables that holds the answer."""
    try:
        tree = jsonable(tomllib.loads(_body(text, fence)))
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise Invalid(f"not valid TOML: {_first_line(exc)}") from None
    if key:
        tree = field(tree, key)
    return conform(tree, spec)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _toml_table(tree: dict[str, Any], prefix: str = "") -> list[str]:
    lines = [f"{k} = {_toml_value(v)}" for k, v in tree.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))]
    for k, v in tree.items():
        if isinstance(v, dict):
            lines += ["", f"[{prefix}{k}]", *_toml_table(v, f"{prefix}{k}.")]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for row in v:
                lines += ["", f"[[{prefix}{k}]]", *_toml_table(row, f"{prefix}{k}.")]
    return lines


@renders("toml")
def render_toml(answer: Any, spec: Spec, *, key: str | list[str] | None = None, fence: str = "") -> str:
    text = "\n".join(_toml_table(as_tree(answer, key))).strip()
    return fenced(text, fence) if fence else text


# -- code: Python and JavaScript literals -------------------------------------------------------------------


def _quietly(fn: Callable[[Any], Any], arg: Any) -> Any:
    """Python's parser warns about things like invalid escapes ('\\['); model output must not spam logs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(arg)


def _python_literal(node: ast.AST | str) -> Any:
    try:
        return jsonable(_quietly(ast.literal_eval, node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise Invalid(f"not a Python literal: {_first_line(exc)}") from None


@kind("python", shapes=ALL)
def python_code(text: str, spec: Spec, *, name: str = "", fence: str = "") -> Any:
    """A Python literal, or with `name` the single statement `name = <literal>`."""
    code = _body(text, fence)
    if not name:
        return conform(_python_literal(code), spec)
    try:
        module = _quietly(ast.parse, code)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise Invalid(f"not valid Python: {_first_line(exc)}") from None
    statement = module.body[0] if len(module.body) == 1 else None
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == name):
        raise Invalid(f"the code must be the single assignment `{name} = …`")
    return conform(_python_literal(statement.value), spec)


@renders("python")
def render_python(answer: Any, spec: Spec, *, name: str = "", fence: str = "") -> str:
    code = f"{name} = {typed(answer)!r}" if name else repr(typed(answer))
    return fenced(code, fence) if fence else code


@kind("javascript", shapes=ALL)
def javascript_code(text: str, spec: Spec, *, name: str, fence: str = "javascript") -> Any:
    """`const name = <JSON value>;` (let/var accepted) in a ```javascript block."""
    match = re.fullmatch(rf"(?:const|let|var) {re.escape(name)} = (.*);", _body(text, fence), re.S)
    if match is None:
        raise Invalid(f"the code must be the single statement `const {name} = …;`")
    return conform(parse_json(match[1]), spec)


@renders("javascript")
def render_javascript(answer: Any, spec: Spec, *, name: str, fence: str = "javascript") -> str:
    return fenced(f"const {name} = {json.dumps(typed(answer), ensure_ascii=False)};", fence)


# -- configuration: INI, key–value lines, query strings, logfmt ---------------------------------------------


@kind("ini", shapes={"scalar", "record"})
def ini(text: str, spec: Spec, *, section: str, key: str | None = None) -> Any:
    """Exactly one [section]; its keys are the record (or `key` holds the answer). No interpolation."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, empty_lines_in_values=False,
                                       default_section="\0")  # no DEFAULT section merging into ours
    parser.optionxform = str  # keep keys' case
    try:
        parser.read_string(text)
    except (configparser.Error, ValueError) as exc:
        raise Invalid(f"not valid INI: {_first_line(exc)}") from None
    if parser.sections() != [section]:
        raise Invalid(f"expected exactly one section [{section}], found {parser.sections()}")
    tree = dict(parser[section])
    if any(len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'" for v in tree.values()):
        raise Invalid("INI values are written without quotes")
    return conform(field(tree, key) if key else tree, spec)


@renders("ini")
def render_ini(answer: Any, spec: Spec, *, section: str, key: str | None = None) -> str:
    tree = {key: answer} if key else answer
    return f"[{section}]\n" + "\n".join(f"{k} = {text_of(v)}" for k, v in tree.items())


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@kind("kv_lines", shapes={"record"})
def kv_lines(text: str, spec: Spec, *, sep: str, prefix: str = "", env: bool = False) -> Any:
    """One `key<sep>value` per line and nothing else; `prefix` starts every line ("- "); `env` asks for
    KEY=value with upper-case keys and values that contain spaces in double quotes."""
    names = {k.upper(): k for k in spec.keys} if env else {k: k for k in spec.keys}
    tree: dict[str, str] = {}
    for i, line in enumerate(text.split("\n"), 1):
        key, found, value = line[len(prefix):].partition(sep) if line.startswith(prefix) else ("", "", "")
        if not found or not _KEY.fullmatch(key):
            raise Invalid(f"line {i} is not `{prefix}key{sep}value`: {line[:40]!r}")
        if key not in names:
            raise Invalid(f"line {i}: unexpected key {key!r}")
        if names[key] in tree:
            raise Invalid(f"duplicate key {key!r}")
        if value != value.strip():
            raise Invalid(f"line {i}: no extra spaces around {sep.strip()!r}")
        tree[names[key]] = _env_value(value) if env else value
    return conform(tree, spec)


def _env_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if any(c.isspace() or c in "\"'" for c in value):
        raise Invalid(f"a value with spaces or quotes must be in double quotes: {value[:40]!r}")
    return value


@renders("kv_lines")
def render_kv_lines(answer: Any, spec: Spec, *, sep: str, prefix: str = "", env: bool = False) -> str:
    def value(v: Any) -> str:
        text = text_of(v)
        return f'"{text}"' if env and " " in text else text

    return "\n".join(f"{prefix}{k.upper() if env else k}{sep}{value(v)}" for k, v in answer.items())


@kind("query_string", shapes={"record"})
def query_string(text: str, spec: Spec) -> Any:
    if any(c.isspace() for c in text):
        raise Invalid("a query string has no spaces: encode them as + or %20")
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise Invalid(f"not a query string: {_first_line(exc)}") from None
    tree: dict[str, str] = {}
    for key, value in pairs:
        if key in tree:
            raise Invalid(f"duplicate key {key!r}")
        tree[key] = value
    return conform(tree, spec)


@renders("query_string")
def render_query_string(answer: Any, spec: Spec) -> str:
    return urllib.parse.urlencode({k: text_of(v) for k, v in answer.items()})


_LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\\n]|\\.)*"|[^\s"=]+)')


@kind("logfmt", shapes={"record"})
def logfmt(text: str, spec: Spec) -> Any:
    """key=value pairs on one line, separated by single spaces; values with spaces in double quotes."""
    tree: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        match = _LOGFMT_PAIR.match(text, pos)
        if match is None:
            raise Invalid(f"expected key=value at column {pos + 1}: {text[pos:pos + 30]!r}")
        key, raw = match[1], match[2]
        if key in tree:
            raise Invalid(f"duplicate key {key!r}")
        tree[key] = parse_json(raw) if raw.startswith('"') else raw
        pos = match.end()
        if pos < len(text):
            if text[pos] != " ":
                raise Invalid(f"separate pairs with one space (column {pos + 1})")
            pos += 1
    return conform(tree, spec)


@renders("logfmt")
def render_logfmt(answer: Any, spec: Spec) -> str:
    def value(v: Any) -> str:
        text = text_of(v)
        return json.dumps(text, ensure_ascii=False) if not text or re.search(r'[\s"=]', text) else text

    return " ".join(f"{k}={value(v)}" for k, v in answer.items())


# -- S-expressions -------------------------------------------------------------------------------------------


class Symbol(str):
    """A bare atom (as opposed to a "quoted string")."""


_SEXPR_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|([^\s()"\']+))')


def parse_sexpr(text: str) -> Any:
    """One S-expression as nested lists of atoms (Symbol or str); iterative, so depth cannot overflow."""
    stack: list[list[Any]] = [[]]
    pos = 0
    while match := _SEXPR_TOKEN.match(text, pos):
        pos = match.end()
        if match[1]:
            if len(stack) > 32:
                raise Invalid("the expression is nested too deeply")
            stack.append([])
        elif match[2]:
            if len(stack) == 1:
                raise Invalid("unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        elif match[3]:
            stack[-1].append(parse_json(match[3]))  # S-expression string escapes are JSON's \" and \\
        else:
            stack[-1].append(Symbol(match[4]))
    if text[pos:].strip():
        raise Invalid(f"unexpected text {text[pos:].strip()[:20]!r}")
    if len(stack) != 1:
        raise Invalid("unbalanced '(': missing ')'")
    if len(stack[0]) != 1:
        raise Invalid(f"expected exactly one expression, found {len(stack[0])}")
    return stack[0][0]


@kind("sexpr", shapes={"scalar", "list", "record"})
def sexpr(text: str, spec: Spec, *, head: str = "", quote: bool = False, style: str = "alist") -> Any:
    """`(answer 42)`, `(list a b c)`, `'(a b c)`; a record as an association list `((name "Ana") (age 3))`
    or, with style "plist", a property list `(:name "Ana" :age 3)`."""
    if quote:
        if not text.startswith("'("):
            raise Invalid("the list must be quoted: '(…)")
        text = text[1:]
    expr = parse_sexpr(text)
    if not isinstance(expr, list):
        raise Invalid("expected a parenthesised list")
    if head:
        if not expr or not isinstance(expr[0], Symbol) or expr[0] != head:
            raise Invalid(f"the list must start with the symbol {head}")
        expr = expr[1:]
    if spec.shape == "scalar":
        if len(expr) != 1:
            raise Invalid(f"expected ({head} value), with one value; found {len(expr)}")
        return conform(_value(expr[0]), spec)
    if spec.shape == "list":
        return conform([_value(v) for v in expr], spec)
    record = _plist(expr) if style == "plist" else _alist(expr)
    return conform({k: _value(v) for k, v in record.items()}, spec)


_BARE_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?", re.ASCII)


def _value(atom: Any) -> Any:
    """A value atom: a number may be bare, text must be a "string"."""
    if isinstance(atom, Symbol) and not _BARE_NUMBER.fullmatch(atom):
        raise Invalid(f'write text values as "strings", not as the bare symbol {atom[:40]}')
    return atom


def _alist(expr: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in expr:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], Symbol)):
            raise Invalid("each entry must be a pair (key value) with a bare key")
        if entry[0] in out:
            raise Invalid(f"duplicate key {entry[0]!r}")
        out[str(entry[0])] = entry[1]
    return out


def _plist(expr: list[Any]) -> dict[str, Any]:
    if len(expr) % 2:
        raise Invalid("a property list alternates :key value; one value is missing")
    out: dict[str, Any] = {}
    for key, value in zip(expr[::2], expr[1::2]):
        if not (isinstance(key, Symbol) and key.startswith(":") and len(key) > 1):
            raise Invalid(f"keys must be keywords such as :name, got {key!r}")
        if key[1:] in out:
            raise Invalid(f"duplicate key {key!r}")
        out[key[1:]] = value
    return out


def _atom(value: Any) -> str:
    value = typed(value)
    return text_of(value) if isinstance(value, (int, float)) else json.dumps(text_of(value), ensure_ascii=False)


@renders("sexpr")
def render_sexpr(answer: Any, spec: Spec, *, head: str = "", quote: bool = False, style: str = "alist") -> str:
    if spec.shape == "scalar":
        items = [_atom(answer)]
    elif spec.shape == "list":
        items = [_atom(v) for v in answer]
    elif style == "plist":
        items = [f":{k} {_atom(v)}" for k, v in answer.items()]
    else:
        items = [f"({k} {_atom(v)})" for k, v in answer.items()]
    return ("'" if quote else "") + "(" + " ".join([head, *items] if head else items) + ")"
