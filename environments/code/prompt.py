"""The prompt of a code task: statement, examples, starter code and the answer-format instruction."""

from __future__ import annotations

import json

from .judge import FunctionalTest, StdioTest

STDIO_INSTRUCTION = ("Write a complete Python program that reads the input from standard input and writes the answer "
                     "to standard output. Put the whole program in one ```python code block at the end of your answer.")
FUNCTIONAL_INSTRUCTION = ("Put your complete solution, with any imports and helpers it needs, in one ```python code "
                          "block at the end of your answer.")


def render(title: str, statement: str, examples: list[StdioTest | FunctionalTest], starter: str | None = None) -> str:
    parts = [f"# {title}" if title else "", statement.strip()]
    for i, test in enumerate(examples, 1):
        if isinstance(test, StdioTest):
            parts.append(f"Example {i}\nInput:\n```\n{test.input.rstrip()}\n```\n"
                         f"Output:\n```\n{test.output.rstrip()}\n```")
        else:
            call = f"{test.fn_name}({', '.join(json.dumps(a) for a in test.args)})"
            parts.append(f"Example {i}: `{call}` returns `{json.dumps(test.expected)}`")
    if starter and starter.strip():
        parts.append(f"Complete this code:\n```python\n{starter.rstrip()}\n```")
    functional = any(isinstance(t, FunctionalTest) for t in examples) or bool(starter and starter.strip())
    parts.append(FUNCTIONAL_INSTRUCTION if functional else STDIO_INSTRUCTION)
    return "\n\n".join(p for p in parts if p)
