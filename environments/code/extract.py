"""Finding the program in a completion: the last Markdown code fence of the language.

A fence is a line of three or more backticks or tildes (indented by at most three spaces) with an optional
info string; it closes at a line of the same character, at least as long, and nothing else. A block whose
info string names the language (```python, ```py …) wins; failing that, the last block without an info
string; a block tagged with another language never counts, and neither does a fence left open (a
completion cut off at the length limit). The reasoning block has been removed before this is called.
"""

from __future__ import annotations

import re

from .sandbox import Language

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(info word in lower case, body) of every closed fenced block, in order."""
    blocks: list[tuple[str, str]] = []
    fence, info, body = "", "", []  # the open block's fence ("" outside blocks), info word and lines
    for line in text.split("\n"):
        line = line.rstrip("\r")
        match = _FENCE.match(line)
        if not fence:
            if match:
                fence, info, body = match["fence"], (match["info"].split() or [""])[0].lower(), []
        elif match and not match["info"] and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence):
            blocks.append((info, "\n".join(body)))
            fence = ""
        else:
            body.append(line)
    return blocks


def extract_program(text: str, language: Language) -> str | None:
    blocks = code_blocks(text)
    for wanted in (lambda info: info in language.fences, lambda info: info == ""):
        chosen = [body for info, body in blocks if wanted(info)]
        if chosen:
            return chosen[-1] + "\n"
    return None
