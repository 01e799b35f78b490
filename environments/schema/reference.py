"""Reference solutions: a valid JSON value for any spec node (spec.py), drawn from a seeded RNG.

Used as the hidden answer behind "generate" briefs, as the document "repair" tasks corrupt, and in tests
(a reference document always validates, under jsonschema and pydantic alike).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

WORDS = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper", "kestrel",
         "lumen", "maple", "north", "orbit", "pebble", "quartz", "river", "summit", "tundra", "umber", "violet",
         "willow", "yarrow", "zephyr"]
PEOPLE = ["ana", "ben", "chen", "dara", "emeka", "fatima", "goran", "hana", "ivan", "jun", "kofi", "lena"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net"]
MAP_KEYS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
_CHARSETS = {"upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "lower": "abcdefghijklmnopqrstuvwxyz", "digit": "0123456789"}


def reference(node: dict[str, Any], rng: random.Random) -> Any:
    """A value that satisfies `node` and every constraint on it."""
    return _MAKERS[node["type"]](node, rng)


def _object(node: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    doc = {}
    for field in node["fields"]:
        if not field["required"] and rng.random() < 0.4:
            continue  # an optional field left out takes its default
        null = field["nullable"] and rng.random() < 0.2
        doc[field["name"]] = None if null else reference(field["type"], rng)
    return doc


def _string(node: dict[str, Any], rng: random.Random) -> str:
    low, high = node.get("min_length", 0), node.get("max_length", 40)
    text = rng.choice(WORDS)
    while len(text) < low:
        text += " " + rng.choice(WORDS)
    return text[:high]


def _pattern(node: dict[str, Any], rng: random.Random) -> str:
    return "".join(part if part not in _CHARSETS else "".join(rng.choice(_CHARSETS[part]) for _ in range(n))
                   for part, n in node["parts"])


def _format(node: dict[str, Any], rng: random.Random) -> str:
    fmt = node["format"]
    if fmt == "email":
        return f"{rng.choice(PEOPLE)}.{rng.choice(PEOPLE)}@{rng.choice(DOMAINS)}"
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    date = f"{rng.randint(1990, 2035):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "date":
        return date
    offset = rng.choice(["Z", "+00:00", "+02:00", "-05:00", "+05:30"])
    return f"{date}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}{offset}"


def _integer(node: dict[str, Any], rng: random.Random) -> int:
    low, high = _range(node, step=1)
    step = node.get("multiple_of", 1)
    return step * rng.randint(-(-low // step), high // step)  # a multiple of step within [low, high]


def _number(node: dict[str, Any], rng: random.Random) -> float:
    low, high = _range(node, step=0.01)
    return rng.randint(round(low * 100), round(high * 100)) / 100


def _range(node: dict[str, Any], step: float) -> tuple[Any, Any]:
    """Inclusive bounds for a numeric node, exclusive bounds moved inwards by `step`."""
    low = node.get("minimum", node.get("exclusive_minimum", -step) + step)
    high = node.get("maximum", node.get("exclusive_maximum", low + 1000 + step) - step)
    return low, high


def _array(node: dict[str, Any], rng: random.Random) -> list[Any]:
    low = node.get("min_items", 0)
    return [reference(node["items"], rng) for _ in range(rng.randint(low, node.get("max_items", low + 3)))]


def _map(node: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    low = node.get("min_properties", 0)
    keys = rng.sample(MAP_KEYS, rng.randint(low, node.get("max_properties", low + 3)))
    return {key: reference(node["values"], rng) for key in keys}


_MAKERS = {
    "object": _object,
    "string": _string,
    "pattern": _pattern,
    "format": _format,
    "integer": _integer,
    "number": _number,
    "boolean": lambda node, rng: rng.random() < 0.5,
    "literal": lambda node, rng: rng.choice(node["values"]),
    "enum": lambda node, rng: rng.choice(node["values"]),
    "array": _array,
    "map": _map,
    "union": lambda node, rng: reference(rng.choice(node["options"]), rng),
    "tagged": lambda node, rng: reference(rng.choice(node["options"]), rng),
}
