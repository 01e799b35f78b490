"""Random schema specs: the JSON description of fields that every generated Pydantic model is built from.

A spec is plain JSON, so it travels in `task.verifier` and the model is rebuilt from it (models.py) rather
than from any text that would have to be executed. Every node has a "type":

    object   {"name", "extra": "forbid"|"allow", "fields": [{"name", "type": node, "required", "nullable", "default"?}]}
    string   {"min_length"?, "max_length"?}
    pattern  {"parts": [[charset, count], ...]}  charset "upper"|"lower"|"digit", or a separator "-"|"_"|"."
    format   {"format": "email"|"date-time"|"date"|"uuid"}
    integer  {"minimum"?, "maximum"?, "exclusive_minimum"?, "exclusive_maximum"?, "multiple_of"?}
    number   {"minimum"?, "maximum"?, "exclusive_minimum"?, "exclusive_maximum"?}
    boolean  {}
    literal  {"values": [...]}                     an inline Literal (JSON Schema "enum"/"const")
    enum     {"name", "values": [str, ...]}         a named Enum (a "$defs" entry)
    array    {"items": node, "min_items"?, "max_items"?}
    map      {"values": node, "min_properties"?, "max_properties"?}   dict[str, V]: typed additionalProperties
    union    {"options": [node, ...]}               anyOf; the options accept disjoint JSON types
    tagged   {"tag": "kind", "options": [object, ...]}   a discriminated union (oneOf on a literal tag)

A field that is not required always has a default; composite fields that are not required are nullable
with default null. Bounds are always satisfiable, so reference.py can produce a valid value for any node.
"""

from __future__ import annotations

import random
from typing import Any

from .reference import reference

ENTITIES = ["Order", "Customer", "Address", "Product", "Shipment", "Invoice", "Sensor", "Reading", "Book",
            "Author", "Event", "Venue", "Ticket", "Patient", "Visit", "Account", "Flight", "Passenger",
            "Recipe", "Ingredient", "Project", "Employee", "Review", "Device", "Course", "Student"]
FIELD_NAMES = {
    "string": ["name", "title", "label", "city", "street", "country", "note", "summary", "brand", "nickname"],
    "pattern": ["sku", "code", "reference", "serial", "locator", "plate"],
    "email": ["email", "contact_email", "billing_email"],
    "date-time": ["created_at", "updated_at", "starts_at", "recorded_at"],
    "date": ["birth_date", "due_date", "issued_on", "opened_on"],
    "uuid": ["id", "external_id", "request_id"],
    "integer": ["count", "quantity", "age", "year", "rank", "priority", "floor", "seats", "pages"],
    "number": ["price", "weight", "score", "rating", "latitude", "temperature", "ratio", "distance"],
    "boolean": ["active", "verified", "paid", "archived", "public", "urgent"],
    "literal": ["unit", "currency", "size", "channel", "grade"],
    "map": ["attributes", "counts", "metadata", "totals"],
    "union": ["value", "identifier", "payload", "answer"],
    "array": ["tags", "scores", "codes", "flags", "years"],
}
LITERAL_VALUES = [["kg", "lb", "g"], ["usd", "eur", "gbp", "jpy"], ["small", "medium", "large"],
                  ["web", "phone", "store"], ["a", "b", "c", "d"], [1, 2, 3, 5], [10, 20, 50]]
ENUMS = {"Status": ["active", "paused", "closed", "pending"], "Priority": ["low", "medium", "high"],
         "Color": ["red", "green", "blue", "black"], "Tier": ["free", "basic", "pro"],
         "Region": ["north", "south", "east", "west"], "Level": ["beginner", "intermediate", "expert"]}
TAGGED = {"payment": ["Card", "Transfer", "Voucher"], "contact": ["Phone", "Mail", "Chat"],
          "shape": ["Circle", "Square", "Triangle"], "delivery": ["Pickup", "Courier", "Locker"]}
TAG = "kind"
FORMATS = ["email", "date-time", "date", "uuid"]
LEAF_KINDS = ["string", "pattern", "format", "integer", "number", "boolean", "literal", "enum"]
COMPOSITE_KINDS = ["object", "array", "map", "union", "tagged"]
MAX_DEPTH = 2  # objects nest at most this deep below the root, which keeps documents under 2 KB


def random_spec(rng: random.Random) -> dict[str, Any]:
    """A random root object spec; the same RNG state always gives the same spec."""
    return _SpecBuilder(rng).object(depth=0, size=(4, 8))


class _SpecBuilder:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.type_names: set[str] = set()  # model and enum names must be unique within one schema ($defs)

    def unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.type_names:
            n += 1
            candidate = f"{name}{n}"
        self.type_names.add(candidate)
        return candidate

    # -- objects and fields -------------------------------------------------------------------------
    def object(self, depth: int, size: tuple[int, int], name: str | None = None,
               reserved: frozenset[str] = frozenset()) -> dict[str, Any]:
        rng = self.rng
        taken = set(reserved)  # field names used so far in this object
        fields = [self.field(depth, taken) for _ in range(rng.randint(*size))]
        extra = "forbid" if rng.random() < 0.7 else "allow"
        return {"type": "object", "name": self.unique(name or rng.choice(ENTITIES)), "extra": extra, "fields": fields}

    def field(self, depth: int, taken: set[str]) -> dict[str, Any]:
        rng = self.rng
        composite = depth < MAX_DEPTH and rng.random() < (0.4 if depth == 0 else 0.25)
        kind = rng.choice(COMPOSITE_KINDS if composite else LEAF_KINDS)
        node, name_hint = self.node(kind, depth)
        name = self.field_name(name_hint, taken)
        required = rng.random() < 0.7
        field: dict[str, Any] = {"name": name, "type": node, "required": required, "nullable": rng.random() < 0.2}
        if not required:
            if composite:
                field.update(nullable=True, default=None)
            elif field["nullable"] and rng.random() < 0.6:
                field["default"] = None
            else:
                field["default"] = reference(node, rng)
        return field

    def field_name(self, hint: str, taken: set[str]) -> str:
        options = [n for n in FIELD_NAMES.get(hint, [hint]) if n not in taken]
        name = self.rng.choice(options) if options else f"{hint}_{len(taken)}"
        while name in taken:
            name += "_2"
        taken.add(name)
        return name

    # -- nodes --------------------------------------------------------------------------------------
    def node(self, kind: str, depth: int) -> tuple[dict[str, Any], str]:
        """A node of `kind` and the hint its field's name is drawn from."""
        rng = self.rng
        if kind == "format":
            fmt = rng.choice(FORMATS)
            return {"type": "format", "format": fmt}, fmt
        if kind == "enum":
            name = rng.choice(sorted(ENUMS))
            values = rng.sample(ENUMS[name], rng.randint(2, len(ENUMS[name])))
            return {"type": "enum", "name": self.unique(name), "values": values}, name.lower()
        if kind == "object":
            node = self.object(depth + 1, (2, 5))
            return node, _snake(node["name"].rstrip("0123456789"))
        if kind == "array":
            return self.array(depth)
        if kind == "map":
            values, _ = self.node(rng.choice(["integer", "number", "string", "boolean"]), depth)
            node = {"type": "map", "values": values, **self.bounds("min_properties", "max_properties")}
            return node, "map"
        if kind == "union":
            return {"type": "union", "options": self.union_options(depth)}, "union"
        if kind == "tagged":
            return self.tagged(depth)
        return self.leaf(kind), kind

    def leaf(self, kind: str) -> dict[str, Any]:
        rng = self.rng
        if kind == "string":
            node: dict[str, Any] = {"type": "string"}
            if rng.random() < 0.6:
                low = rng.randint(1, 3)
                node.update(min_length=low, max_length=low + rng.randint(5, 30))
            return node
        if kind == "pattern":
            charsets = [[rng.choice(["upper", "lower", "digit"]), rng.randint(2, 4)] for _ in range(rng.randint(2, 3))]
            separator = rng.choice(["-", "_", "."])
            parts = [charsets[0]]
            for part in charsets[1:]:
                parts += [[separator, 1], part]
            return {"type": "pattern", "parts": parts}
        if kind in ("integer", "number"):
            return self.numeric(kind)
        if kind == "literal":
            return {"type": "literal", "values": list(rng.choice(LITERAL_VALUES))}
        return {"type": "boolean"}

    def numeric(self, kind: str) -> dict[str, Any]:
        rng = self.rng
        node: dict[str, Any] = {"type": kind}
        shape = rng.choice(["none", "min", "range", "exclusive"])
        low = rng.choice([-100, -10, 0, 0, 1])
        high = low + rng.choice([20, 100, 1000])  # at least 20 wide: room for a multiple of 10 strictly inside
        if shape == "min":
            node["minimum"] = low
        elif shape == "range":
            node.update(minimum=low, maximum=high)
        elif shape == "exclusive":
            node.update(exclusive_minimum=low, exclusive_maximum=high)
        if kind == "integer" and rng.random() < 0.25:
            node["multiple_of"] = rng.choice([2, 5, 10])
        return node

    def bounds(self, low_key: str, high_key: str) -> dict[str, int]:
        low = self.rng.choice([0, 1, 1, 2])
        return {low_key: low, high_key: low + self.rng.randint(1, 4)} if self.rng.random() < 0.7 else {}

    def array(self, depth: int) -> tuple[dict[str, Any], str]:
        rng = self.rng
        if rng.random() < 0.5:
            items = self.object(depth + 1, (2, 4))
            hint = _snake(items["name"].rstrip("0123456789")) + "s"
        else:
            kind = rng.choice(["string", "integer", "number", "boolean", "pattern", "literal"])
            items, hint = self.leaf(kind), "array"
        return {"type": "array", "items": items, **self.bounds("min_items", "max_items")}, hint

    def union_options(self, depth: int) -> list[dict[str, Any]]:
        """Two or three options of disjoint JSON types, so a value matches exactly one of them."""
        families = {"string": ["string", "format", "pattern"], "integer": ["integer"], "number": ["number"],
                    "boolean": ["boolean"], "object": ["object"]}
        chosen = self.rng.sample(["string", "integer", "boolean", "object"], self.rng.randint(2, 3))
        if "integer" in chosen and self.rng.random() < 0.5:
            chosen[chosen.index("integer")] = "number"  # integer and number overlap, so never both
        return [self.node(self.rng.choice(families[family]), depth)[0] for family in chosen]

    def tagged(self, depth: int) -> tuple[dict[str, Any], str]:
        hint = self.rng.choice(sorted(TAGGED))
        variants = self.rng.sample(TAGGED[hint], self.rng.randint(2, 3))
        options = []
        for variant in variants:
            option = self.object(depth + 1, (1, 3), name=variant, reserved=frozenset({TAG}))
            tag_field = {"name": TAG, "type": {"type": "literal", "values": [_snake(variant)]}, "required": True,
                         "nullable": False}
            option["fields"].insert(0, tag_field)
            options.append(option)
        return {"type": "tagged", "tag": TAG, "options": options}, hint


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
