"""Task fields for the two modes, and their prompts.

generate: a schema and a brief listing values the document must hold (JSON pointer → value, drawn from the
    reference document, so a valid answer always exists).
repair: a schema and a corrupted document; the answer must be valid and keep every value the corruption
    did not touch.

Both verifiers hold the schema, the generator's spec, the values to find, and the reference document (the
answer to generate briefs, the original of repair tasks: ready-made SFT targets).
"""

from __future__ import annotations

import json
import random
from typing import Any

from .corrupt import corrupt
from .document import leaves
from .models import json_schema
from .reference import reference
from .spec import random_spec

MODES = ("generate", "repair", "mixed")
VALUES_PER_BRIEF = 3
ANSWER_FORMAT = "Answer with the JSON document only, bare or in a single ```json fenced block."
REPAIR = ("The document below should conform to the JSON Schema that follows it, but it is broken: it may be "
          "malformed, cut short, or hold values the schema does not allow. Return the corrected document: fix "
          "what is wrong and keep every other value exactly as it is.")


def procedural_task(rng: random.Random, mode: str) -> dict[str, Any]:
    """The prompt and verifier of one random task (mode "generate", "repair", or "mixed": either)."""
    spec = random_spec(rng)
    schema = json_schema(spec)
    doc = reference(spec, rng)
    if mode == "mixed":
        mode = rng.choice(["generate", "repair"])
    verifier: dict[str, Any] = {"mode": mode, "schema": schema, "spec": spec, "reference": doc}
    if mode == "generate":
        values = brief_values(doc, rng)
        return {"prompt": generate_prompt(schema, values), "verifier": {**verifier, "values": values}}
    name, corruption = corrupt(doc, spec, rng)
    lost = corruption.touched
    kept = {p: v for p, v in leaves(doc).items() if not any(p == t or p.startswith(t + "/") for t in lost)}
    verifier.update(corruption=name, values=kept)
    return {"prompt": repair_prompt(schema, corruption.text), "verifier": verifier}


def brief_values(doc: Any, rng: random.Random) -> dict[str, Any]:
    """A few leaf values of the reference document for the brief to fix: non-null scalars where there are any."""
    all_leaves = leaves(doc)
    scalars = [p for p, v in all_leaves.items() if v is not None and not isinstance(v, (list, dict))]
    pool = scalars if scalars else list(all_leaves)
    chosen = rng.sample(pool, min(VALUES_PER_BRIEF, len(pool)))
    return {p: all_leaves[p] for p in sorted(chosen)}


def generate_prompt(schema: dict[str, Any], values: dict[str, Any]) -> str:
    subject = f" describing one {schema['title']}" if isinstance(schema.get("title"), str) else ""
    lines = [f"Write a JSON document{subject} that conforms to the JSON Schema below."]
    if isinstance(schema.get("description"), str):
        lines.append(schema["description"])
    required = schema.get("required")
    if isinstance(required, list) and required and not values:
        lines.append("It must have the properties " + ", ".join(map(str, required)) + ".")
    if values:
        lines.append("It must hold these values, each given by its JSON pointer:")
        lines += [f"- {pointer} = {json.dumps(value, ensure_ascii=False)}" for pointer, value in values.items()]
        lines.append("Choose every other value yourself, as long as the document stays valid.")
    lines += [ANSWER_FORMAT, "", "JSON Schema:", json.dumps(schema, ensure_ascii=False)]
    return "\n".join(lines)


def repair_prompt(schema: dict[str, Any], broken: str) -> str:
    schema_text = json.dumps(schema, ensure_ascii=False)
    return "\n".join([REPAIR, ANSWER_FORMAT, "", "Document:", "```", broken, "```", "", "JSON Schema:", schema_text])
