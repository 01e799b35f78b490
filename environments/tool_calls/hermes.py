"""The Hermes function-calling format: tools in `<tools>`, calls in `<tool_call>`, results in `<tool_response>`.

A completion calls functions by writing one JSON object per call, `{"name": …, "arguments": {…}}`, each inside
its own `<tool_call>…</tool_call>` tags; several calls in one reply run in parallel. Text without those tags may
instead be a bare JSON list of calls (BFCL's plain output); any other text is a direct answer with no call.
Parsing is strict about the content: an unclosed tag, broken JSON or a call without a name is a format error
that names the call, never an exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..types import ToolSpec

_TAG = re.compile(r"</?tool_call>")
_FENCE = re.compile(r"^```[\w-]*\n(.*)\n```$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    arguments: dict[str, Any]


class FormatError(ValueError):
    """The text breaks the tool-call format."""


# -- rendering ------------------------------------------------------------------------------------------


def system_prompt(tools: list[ToolSpec]) -> str:
    signatures = "\n".join(_dumps({"type": "function", "function": tool.model_dump(exclude={"type"})})
                           for tool in tools)
    return (
        "You are a function-calling assistant. The functions you may call are listed as JSON signatures inside "
        f"<tools></tools> tags:\n<tools>\n{signatures}\n</tools>\n"
        "To call functions, write one JSON object per call, each inside its own <tool_call></tool_call> tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <arguments-object>}\n</tool_call>\n'
        "Calls written in the same reply run in parallel. Their results come back inside "
        "<tool_response></tool_response> tags. Call a function only when the request needs one; otherwise answer "
        "directly."
    )


def render_call(call: Call) -> str:
    return f"<tool_call>\n{_dumps({'name': call.name, 'arguments': call.arguments})}\n</tool_call>"


def tool_response(name: str, content: Any) -> str:
    return f"<tool_response>\n{_dumps({'name': name, 'content': content})}\n</tool_response>"


def _dumps(value: Any) -> str:
    # "<" is escaped so that a string argument holding "</tool_call>" cannot close the tag it sits in
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


# -- parsing --------------------------------------------------------------------------------------------


def parse_calls(text: str) -> list[Call]:
    """The calls written in `text` (empty for a direct answer); raises FormatError when the format is broken."""
    tags = list(_TAG.finditer(text))
    if tags:
        return _tagged_calls(text, tags)
    body = text.strip()
    if fenced := _FENCE.match(body):
        body = fenced[1].strip()
    if not body.startswith(("[", "{")):
        return []
    value = _loads(body, "the JSON answer")
    items = value if isinstance(value, list) else [value]
    return [_call(item, f"call {i + 1}") for i, item in enumerate(items)]


def _tagged_calls(text: str, tags: list[re.Match[str]]) -> list[Call]:
    calls = []
    for i in range(0, len(tags), 2):
        opening = tags[i]
        closing = tags[i + 1] if i + 1 < len(tags) else None
        where = f"tool call {i // 2 + 1}"
        if opening[0] != "<tool_call>":
            raise FormatError(f"{where}: </tool_call> without an opening <tool_call>")
        if closing is None or closing[0] != "</tool_call>":
            raise FormatError(f"{where}: <tool_call> is not closed")
        calls.append(_call(_loads(text[opening.end() : closing.start()], where), where))
    return calls


def _call(item: Any, where: str) -> Call:
    """A call from its JSON: Hermes' {"name": …, "arguments": {…}} or BFCL's {name: {…arguments}}."""
    if not isinstance(item, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(item).__name__}")
    if len(item) == 1 and not item.keys() & {"name", "arguments"}:
        ((name, arguments),) = item.items()
    else:
        unknown = sorted(set(item) - {"name", "arguments"})
        if unknown:
            raise FormatError(f"{where}: unexpected keys {unknown}")
        name, arguments = item.get("name"), item.get("arguments", {})
    if isinstance(arguments, str):  # OpenAI's wire form: the arguments object encoded as a JSON string
        arguments = _loads(arguments, f"{where} arguments")
    if not isinstance(name, str) or not name:
        raise FormatError(f"{where}: the function name must be a non-empty string")
    if not isinstance(arguments, dict):
        raise FormatError(f"{where}: arguments must be a JSON object, got {type(arguments).__name__}")
    return Call(name, arguments)


def _loads(raw: str, where: str) -> Any:
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{where}: invalid JSON ({exc.msg} at character {exc.pos})") from None
    except (ValueError, RecursionError) as exc:  # NaN/Infinity, or nesting deeper than the parser allows
        raise FormatError(f"{where}: invalid JSON ({exc})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
