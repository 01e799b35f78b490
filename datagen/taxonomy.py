"""Taxonomy expansion: a domain seed is expanded recursively into subdomains until a leaf, for which a
concrete, self-contained prompt is written.

Each walk descends one branch, chosen with its own RNG. The expansion calls are seeded by the branch
(not by the walk), so every walk that passes through "Cooking > Baking" shares one cached expansion: the
tree grows lazily, each subtree is asked for once, and the call records of a run hold the whole tree.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .nodes import RETRY_NOTE, Node, NodeFailed, parse_text, render, template
from .state import Datapoint, Instruction, Topic

if TYPE_CHECKING:
    from .walk import WalkContext

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def parse_list(text: str, limit: int) -> list[str]:
    """Items of a plain list, one per line, bullets and numbering dropped, duplicates removed."""
    items = [_BULLET.sub("", line).strip().strip('"').rstrip(".:") for line in text.splitlines()]
    return list(dict.fromkeys(i for i in items if 0 < len(i) <= 120))[:limit]


class TaxonomyNode(Node):
    def __init__(self, name: str, *, expand_system: str, expand_prompt: str, prompt_system: str, prompt_prompt: str,
                 depth: int = 2, breadth: int = 5, weight: float = 1.0, role: str = "taxonomy"):
        if depth < 1 or breadth < 1:
            raise ValueError(f"node {name}: depth and breadth must be >= 1")
        super().__init__(name, requires={"seed.kind=domain"}, forbids={"instruction"},
                         adds={"instruction", "instruction.mode=standalone", "topic"}, weight=weight, family="taxonomy")
        self.depth, self.breadth, self.role = depth, breadth, role
        self.prompts = {"expand": (expand_system, expand_prompt), "prompt": (prompt_system, prompt_prompt)}
        self._expand = template(expand_prompt, f"node {name}: expand prompt")
        self._prompt = template(prompt_prompt, f"node {name}: prompt")

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "depth": self.depth, "breadth": self.breadth, "role": self.role,
                "prompts": self.prompts}

    async def run(self, dp: Datapoint, ctx: WalkContext) -> Datapoint:
        path = [dp.seed.text.strip()]
        for _ in range(self.depth):
            record = await ctx.llm.complete(ctx, self, self.role, self.prompts["expand"][0],
                                            render(self._expand, {"path": path, "breadth": self.breadth}),
                                            seed_key=f"taxonomy|{self.version}|{' > '.join(path)}")
            children = parse_list(record.response, self.breadth)
            record.parsed = children
            if not children:
                break  # the model found nothing more specific: this is a leaf
            path.append(ctx.rng.choice(children))
        if len(path) == 1:
            raise NodeFailed(f"{self.name}: the domain {path[0]!r} could not be expanded")
        prompt = render(self._prompt, {"path": path})
        if ctx.feedback:
            prompt += "\n\n" + RETRY_NOTE.format(feedback=ctx.feedback)
        record = await ctx.llm.complete(ctx, self, self.role, self.prompts["prompt"][0], prompt)
        text = parse_text(record.response)
        return dp.replace(topic=Topic(path=path), instruction=Instruction(kind="taxonomy", mode="standalone", text=text))
