"""The JSON-schema environment: generated schemas and their two validators, every schema feature and
corruption type, the strict parser, generate/repair scoring, schema files, the public check(), and a batch
verify through a real server process."""

from __future__ import annotations

import asyncio
import copy
import json
import random
import re
from pathlib import Path

import gymnasium
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

import environments
from env_server.client import EnvServerClient
from env_server.envs import _chunks
from env_server.process import lachesis_process
from environments import make
from environments.schema import JSONSchemaEnv, check
from environments.schema import models
from environments.schema.compact import compact
from environments.schema.corrupt import (CORRUPTIONS, constraint_violation, corrupt, extra_field, missing_required,
                                         syntax_damage, truncation, wrong_type)
from environments.schema.document import MISSING, layout, leaves, resolve, same
from environments.schema.formats import FORMATS
from environments.schema.models import json_schema
from environments.schema.parse import Unparsable, extract_json, parse_json
from environments.schema.reference import reference
from environments.schema.spec import random_spec
from environments.schema.quick import quick_schema
from environments.schema.validate import Compiled, compiled, named
from environments.schema.verdict import judge
from environments.types import Completion, Message, Score, Task

run = asyncio.run
PACKAGE = Path(environments.__file__).parent / "schema"


# -- spec helpers -----------------------------------------------------------------------------------------


def field(name: str, node: dict, *, required: bool = True, nullable: bool = False, **default) -> dict:
    return {"name": name, "type": node, "required": required, "nullable": nullable, **default}


def obj(*fields: dict, name: str = "Root", extra: str = "forbid") -> dict:
    return {"type": "object", "name": name, "extra": extra, "fields": list(fields)}


def verdict(spec: dict, doc) -> Score:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    return judge(json_schema(spec), text, spec=spec)


def set_at(doc, pointer: str, value):
    """A copy of doc with the value at pointer replaced."""
    doc = copy.deepcopy(doc)
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    target = doc
    for key in parents:
        target = target[int(key) if isinstance(target, list) else key]
    target[int(last) if isinstance(target, list) else last] = value
    return doc


CIRCLE = obj(field("kind", {"type": "literal", "values": ["circle"]}), field("r", {"type": "number", "minimum": 0}),
             name="Circle")
SQUARE = obj(field("kind", {"type": "literal", "values": ["square"]}), field("side", {"type": "integer"}), name="Square")

# (node of field "x", text in the JSON Schema that shows the feature, valid values, invalid values)
FEATURES = {
    "string length": ({"type": "string", "min_length": 2, "max_length": 4}, '"minLength": 2',
                      ["ab", "abcd", "ééé"], ["a", "abcde", 5, None]),
    "pattern": ({"type": "pattern", "parts": [["upper", 2], ["-", 1], ["digit", 3]]}, '"pattern": "^[A-Z]{2}-[0-9]{3}$"',
                ["AB-123"], ["ab-123", "AB-1234", "AB123", "xAB-123", "!AB-123"]),
    "email": ({"type": "format", "format": "email"}, '"format": "email"', ["ana@example.com"], ["ana.example.com", 3]),
    "date-time": ({"type": "format", "format": "date-time"}, '"format": "date-time"',
                  ["2024-02-29T23:59:59Z", "2024-01-01t00:00:00.5+05:30", "1999-12-31T00:00:00-08:00"],
                  ["2023-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00+24:00", "2024-01-01",
                   "2024-01-01T00:00:60Z", "yesterday", 1700000000]),
    "date": ({"type": "format", "format": "date"}, '"format": "date"', ["2024-02-29"], ["2023-02-29", "2024-1-5", "20240101"]),
    "uuid": ({"type": "format", "format": "uuid"}, '"format": "uuid"', ["123e4567-e89b-42d3-a456-426614174000"],
             ["123e4567", "not-a-uuid"]),
    "integer bounds": ({"type": "integer", "minimum": 0, "maximum": 10}, '"maximum": 10', [0, 10], [-1, 11, 2.5, "3", True]),
    "exclusive bounds": ({"type": "integer", "exclusive_minimum": 0, "exclusive_maximum": 10}, '"exclusiveMinimum": 0',
                         [1, 9], [0, 10]),
    "multiple of": ({"type": "integer", "multiple_of": 5}, '"multipleOf": 5', [0, 15, -5], [3, 7]),
    "number bounds": ({"type": "number", "minimum": -1.5, "maximum": 2}, '"minimum": -1.5', [-1.5, 0, 2, 1.25],
                      [-1.6, 2.01, "1", True]),
    "boolean": ({"type": "boolean"}, '"type": "boolean"', [True, False], [1, "true", None]),
    "literal": ({"type": "literal", "values": ["kg", "lb"]}, '"enum": ["kg", "lb"]', ["kg", "lb"], ["KG", "g", 1]),
    "integer literal": ({"type": "literal", "values": [1, 2, 5]}, '"enum": [1, 2, 5]', [2], [3, "2"]),
    "constant": ({"type": "literal", "values": ["circle"]}, '"const": "circle"', ["circle"], ["square"]),
    "enum": ({"type": "enum", "name": "Color", "values": ["red", "blue"]}, '"$ref": "#/$defs/Color"', ["red"],
             ["green", "RED"]),
    "array bounds": ({"type": "array", "items": {"type": "integer"}, "min_items": 1, "max_items": 3}, '"maxItems": 3',
                     [[1], [1, 2, 3]], [[], [1, 2, 3, 4], ["a"], {"0": 1}]),
    "typed additionalProperties": (
        {"type": "map", "values": {"type": "integer"}, "min_properties": 1, "max_properties": 2},
        '"additionalProperties": {"type": "integer"}', [{"a": 1}, {"a": 1, "b": 2}], [{}, {"a": "x"}, {"a": 1, "b": 2, "c": 3}]),
    "nested object": (obj(field("n", {"type": "integer"}), name="Inner"), '"$ref": "#/$defs/Inner"', [{"n": 1}],
                      [{"n": "1"}, {}, {"n": 1, "m": 2}, [1]]),
    "union": ({"type": "union", "options": [{"type": "integer"}, {"type": "string", "max_length": 3}]}, '"anyOf"',
              [3, "abc"], [True, "abcd", 2.5, None]),
    "discriminated union": ({"type": "tagged", "tag": "kind", "options": [CIRCLE, SQUARE]}, '"discriminator"',
                            [{"kind": "circle", "r": 1.5}, {"kind": "square", "side": 2}],
                            [{"kind": "hexagon"}, {"kind": "circle", "side": 2}, {"kind": "square", "side": 2.5}, {"r": 1}]),
}


# -- every schema feature, both ways ----------------------------------------------------------------------


@pytest.mark.parametrize("feature", FEATURES)
def test_feature_shows_in_the_schema_and_accepts_valid_values(feature):
    node, keyword, valid, _ = FEATURES[feature]
    spec = obj(field("x", node))
    assert keyword in json.dumps(json_schema(spec))
    for value in valid:
        score = verdict(spec, {"x": value})
        assert score.accepted and score.reward == 1.0, (value, score)
        assert score.details["validators_agree"] is True and score.details["violations"] == []


@pytest.mark.parametrize("feature", FEATURES)
def test_feature_rejects_invalid_values_and_names_the_place(feature):
    node, _, _, invalid = FEATURES[feature]
    spec = obj(field("x", node))
    for value in invalid:
        score = verdict(spec, {"x": value})
        assert not score.accepted and score.reward == 0.0 and score.error is None, (value, score)
        assert score.details["valid"] is False and score.details["validators_agree"] is True, (value, score)
        assert score.details["violations"] and all(v["pointer"].startswith("/x") for v in score.details["violations"])


def test_required_optional_nullable_and_defaults():
    spec = obj(field("a", {"type": "integer"}), field("b", {"type": "integer"}, required=False, default=3),
               field("c", {"type": "string"}, nullable=True),
               field("d", {"type": "format", "format": "date"}, required=False, nullable=True, default=None),
               field("e", {"type": "enum", "name": "Tier", "values": ["free", "pro"]}, required=False, default="pro"))
    schema = json_schema(spec)
    assert schema["required"] == ["a", "c"]
    assert schema["properties"]["b"]["default"] == 3 and schema["properties"]["e"]["default"] == "pro"
    assert schema["properties"]["d"] == {"anyOf": [{"format": "date", "type": "string"}, {"type": "null"}],
                                         "default": None, "title": "D"}
    assert verdict(spec, {"a": 1, "c": None}).accepted  # optional fields left out, a required one null
    assert verdict(spec, {"a": 1, "c": "x", "b": 4, "d": None, "e": "free"}).accepted
    missing = verdict(spec, {"c": "x"})
    assert not missing.accepted and missing.details["violations"] == [{"pointer": "", "reason": "'a' is a required property"}]
    assert not verdict(spec, {"a": 1}).accepted  # nullable is not optional
    assert not verdict(spec, {"a": None, "c": "x"}).accepted  # optional is not nullable
    assert all(verdict(spec, doc).details["validators_agree"] for doc in ({"c": "x"}, {"a": 1}, {"a": None, "c": "x"}))


def test_additional_properties_forbid_and_allow():
    spec = obj(field("inner", obj(field("n", {"type": "integer"}), name="Open", extra="allow")))
    schema = json_schema(spec)
    assert schema["additionalProperties"] is False and schema["$defs"]["Open"]["additionalProperties"] is True
    assert verdict(spec, {"inner": {"n": 1, "anything": [1, 2]}}).accepted
    score = verdict(spec, {"inner": {"n": 1}, "extra": 1})
    assert not score.accepted and score.details["validators_agree"]
    assert score.details["violations"][0]["pointer"] == ""
    assert "'extra' was unexpected" in score.details["violations"][0]["reason"]


def test_every_violation_is_named():
    spec = obj(field("a", {"type": "integer", "maximum": 3}), field("b", {"type": "array", "items": {"type": "string"}}),
               field("c", {"type": "boolean"}))
    score = verdict(spec, {"a": 9, "b": ["x", 2, 3], "d": 1})
    pointers = sorted(v["pointer"] for v in score.details["violations"])
    assert pointers == ["", "", "/a", "/b/1", "/b/2"]  # c missing, d unexpected, a too big, two wrong items
    assert score.details["violation_count"] == 5


def test_nullable_union_reason_names_the_closest_option():
    spec = obj(field("shape", {"type": "tagged", "tag": "kind", "options": [CIRCLE, SQUARE]}, nullable=True))
    score = verdict(spec, {"shape": {"kind": "circle", "r": -1}})
    [violation] = score.details["violations"]
    assert violation["pointer"] == "/shape" and "/shape/r" in violation["reason"] and "minimum" in violation["reason"]


@pytest.mark.parametrize(("node", "value", "jsonschema_valid"), [
    ({"type": "integer"}, 2.0, True),  # an integer in JSON Schema; strict pydantic wants 2
    ({"type": "pattern", "parts": [["upper", 2]]}, "AB\n", True),  # Python's re: "$" matches before a final newline
    ({"type": "format", "format": "date-time"}, "2024-01-01T00:00:00", False),  # RFC 3339 needs an offset
    ({"type": "format", "format": "uuid"}, "123e4567e89b42d3a456426614174000", False),  # no hyphens
    ({"type": "literal", "values": [1, 2]}, True, False),  # pydantic takes true for 1
])
def test_disagreements_are_reported_and_jsonschema_decides(node, value, jsonschema_valid):
    score = verdict(obj(field("x", node)), {"x": value})
    assert score.accepted is jsonschema_valid and score.details["valid"] is jsonschema_valid
    assert score.details["validators_agree"] is False
    objections = score.details["pydantic_violations"]
    assert (objections != []) is jsonschema_valid  # pydantic objects exactly when jsonschema does not
    assert all(o["pointer"] == "/x" for o in objections)


# -- the generator ----------------------------------------------------------------------------------------


def test_specs_are_deterministic_and_models_rebuild_identically():
    spec = random_spec(random.Random(7))
    assert spec == random_spec(random.Random(7)) != random_spec(random.Random(8))
    rebuilt = models._model(json.loads(json.dumps(spec)))  # a fresh model, not the cached one
    assert rebuilt.model_json_schema() == json_schema(spec)
    assert json_schema(spec) == json_schema(random_spec(random.Random(7)))


def _nodes(node: dict):
    yield node
    for f in node.get("fields", []):
        yield from _nodes(f["type"])
    for key in ("items", "values"):
        if isinstance(node.get(key), dict):
            yield from _nodes(node[key])
    for option in node.get("options", []):
        yield from _nodes(option)


def test_generator_covers_every_feature():
    specs = [random_spec(random.Random(seed)) for seed in range(150)]
    nodes = [n for spec in specs for n in _nodes(spec)]
    fields = [f for n in nodes for f in n.get("fields", [])]
    assert {n["type"] for n in nodes} == {"object", "string", "pattern", "format", "integer", "number", "boolean",
                                          "literal", "enum", "array", "map", "union", "tagged"}
    assert {n["format"] for n in nodes if n["type"] == "format"} == {"email", "date-time", "date", "uuid"}
    assert {n["extra"] for n in nodes if n["type"] == "object"} == {"forbid", "allow"}
    constraints = {k for n in nodes for k in n if k not in ("type", "name", "extra", "fields", "items", "values", "options",
                                                           "tag", "format", "parts")}
    assert constraints == {"min_length", "max_length", "minimum", "maximum", "exclusive_minimum", "exclusive_maximum",
                           "multiple_of", "min_items", "max_items", "min_properties", "max_properties"}
    kinds = {(f["required"], f["nullable"], "default" in f) for f in fields}
    assert kinds == {(True, False, False), (True, True, False), (False, False, True), (False, True, True)}
    assert any(f["default"] is None for f in fields if "default" in f)
    assert any(f["default"] is not None for f in fields if "default" in f)
    assert any(n["type"] == "union" and any(o["type"] == "object" for o in n["options"]) for n in nodes)
    assert any(n["type"] == "array" and n["items"]["type"] == "object" for n in nodes)


def test_no_code_is_ever_executed_from_text():
    for path in PACKAGE.glob("*.py"):
        assert not re.search(r"(?<![.\w])(exec|eval|compile)\(", path.read_text()), path


@settings(max_examples=100, deadline=None)  # ~30 ms each: a model, a schema and its metaschema check
@given(st.integers(0, 2**32 - 1))
def test_generated_schemas_are_valid_references_pass_and_corruptions_fail(seed):
    rng = random.Random(seed)
    spec = random_spec(rng)
    schema = json_schema(spec)
    Draft202012Validator.check_schema(schema)
    doc = reference(spec, rng)
    score = judge(schema, json.dumps(doc), spec=spec)
    assert score.accepted and score.details["validators_agree"], score
    plain = Draft202012Validator(schema, format_checker=FORMATS)  # the uncompacted schema agrees on every document
    assert plain.is_valid(doc)
    for name, corruption in CORRUPTIONS.items():
        result = corruption(doc, spec, random.Random(seed))
        if result is None:  # nothing in this document to break that way
            continue
        score = judge(schema, result.text, spec=spec)
        assert not score.accepted, (name, result.text)
        if score.error is None:
            assert not plain.is_valid(json.loads(result.text))
        assert set(result.touched) <= set(leaves(doc)) | {p for p in _pointers(doc)}


def _pointers(doc, pointer=""):
    yield pointer
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _pointers(value, f"{pointer}/{key}")


# -- corruptions, one by one ------------------------------------------------------------------------------

SHOP = obj(
    field("sku", {"type": "pattern", "parts": [["upper", 2], ["-", 1], ["digit", 3]]}),
    field("qty", {"type": "integer", "minimum": 1, "maximum": 9}),
    field("email", {"type": "format", "format": "email"}),
    field("active", {"type": "boolean"}),
    field("tags", {"type": "array", "items": {"type": "string"}, "max_items": 3}, required=False, nullable=True, default=None),
    field("note", {"type": "string"}, required=False, default="none"),
    field("owner", obj(field("name", {"type": "string", "min_length": 1}), name="Owner", extra="allow")),
    name="Shop")
DOC = {"sku": "AB-123", "qty": 3, "email": "ana@example.com", "active": True, "tags": ["x", "y"], "owner": {"name": "Ana"}}
SHOP_SCHEMA = json_schema(SHOP)


def corrupted(fn, seed: int):
    result = fn(DOC, SHOP, random.Random(seed))
    assert result is not None
    return result, judge(SHOP_SCHEMA, result.text, spec=SHOP)


def test_syntax_damage_breaks_parsing_without_losing_values():
    original, _ = layout(DOC)
    seen = set()
    for seed in range(80):
        result, score = corrupted(syntax_damage, seed)
        assert result.touched == [] and score.error and score.error.startswith("invalid JSON")
        text = result.text
        seen.add("missing comma" if text.count(",") < original.count(",") else
                 "trailing comma" if re.search(r",\s*[}\]]", text) else
                 "unquoted key" if re.search(r"\n\s+[a-z_]+:", text) else
                 "single quotes" if "'" in text else
                 "python literal" if "True" in text else
                 "unclosed" if text == original[:-1] else "?")
    assert seen == {"missing comma", "trailing comma", "unquoted key", "single quotes", "python literal", "unclosed"}


def test_truncation_cuts_the_text_and_loses_what_follows():
    original, _ = layout(DOC)
    for seed in range(20):
        result, score = corrupted(truncation, seed)
        assert original.startswith(result.text) and len(result.text) < len(original) and score.error
        kept = [p for p in leaves(DOC) if p not in result.touched]
        assert result.touched and all(json.dumps(resolve(DOC, p)) in result.text for p in kept)


def test_wrong_type():
    for seed in range(20):
        result, score = corrupted(wrong_type, seed)
        [pointer] = result.touched
        new = resolve(json.loads(result.text), pointer)
        assert type(new) is not type(resolve(DOC, pointer)) and score.error is None
        assert any(v["pointer"] == pointer and "is not of type" in v["reason"] for v in score.details["violations"]), score


def test_missing_required_field():
    for seed in range(20):
        result, score = corrupted(missing_required, seed)
        [pointer] = result.touched
        assert resolve(json.loads(result.text), pointer) is MISSING and pointer != "/tags"  # tags is optional
        assert "is a required property" in score.details["violations"][0]["reason"]


def test_extra_field_goes_only_where_extras_are_forbidden():
    for seed in range(20):
        result, score = corrupted(extra_field, seed)
        doc = json.loads(result.text)
        assert result.touched == [] and len(doc) == len(DOC) + 1 and doc["owner"] == DOC["owner"]
        assert "Additional properties are not allowed" in score.details["violations"][0]["reason"]


def test_constraint_violation_keeps_the_type():
    reasons = set()
    for seed in range(60):
        result, score = corrupted(constraint_violation, seed)
        [pointer] = result.touched
        assert type(resolve(json.loads(result.text), pointer)) is type(resolve(DOC, pointer))
        [violation] = score.details["violations"]
        assert violation["pointer"] == pointer and "is not of type" not in violation["reason"]
        reasons.add(pointer)
    assert reasons == {"/sku", "/qty", "/email", "/tags", "/owner/name"}


def test_corruptions_that_do_not_apply_return_none():
    rng = random.Random(0)
    plain = obj(field("a", {"type": "boolean"}, required=False, default=True), extra="allow")
    assert extra_field({"a": True}, plain, rng) is None
    assert constraint_violation({"a": True}, plain, rng) is None
    assert missing_required({"a": True}, plain, rng) is None
    assert syntax_damage({}, plain, rng) is None and truncation({}, plain, rng) is None
    name, result = corrupt({"a": True}, plain, rng)  # the ones that apply are still chosen
    assert name in ("syntax", "wrong_type", "truncation") and not judge(json_schema(plain), result.text).accepted


# -- the parser -------------------------------------------------------------------------------------------

GOOD = '{"a": [1, 2.5, "x", true, null]}'


@pytest.mark.parametrize("text", [
    GOOD, f"  \n{GOOD}\n", f"```json\n{GOOD}\n```", f"```\n{GOOD}\n```", f"```JSON\n{GOOD}```", f"\n```json\n{GOOD}\n```\n\n",
    '{"a":[1,2.5,"x",true,null]}',
])
def test_parser_accepts_bare_json_and_one_fenced_block(text):
    assert parse_json(extract_json(text)) == json.loads(GOOD)


@pytest.mark.parametrize(("text", "reason"), [
    (f"Here it is: {GOOD}", "invalid JSON"),
    (f"{GOOD} Hope this helps!", "trailing content"),
    (f"{GOOD}\n{GOOD}", "trailing content"),
    (f"Here:\n```json\n{GOOD}\n```", "text outside the fenced block"),
    (f"```json\n{GOOD}\n```\nDone.", "text after the fenced block"),
    (f"```json\n{GOOD}\n```\n```json\n{GOOD}\n```", "more than one fenced block"),
    (f"```json\n{GOOD}", "unclosed fenced block"),
    (f"```python\n{GOOD}\n```", "not JSON"),
    ('{"a": NaN}', "NaN is not valid JSON"),
    ('{"a": -Infinity}', "-Infinity is not valid JSON"),
    ('{"a": 1e999}', "number out of range"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ("{'a': 1}", "invalid JSON"),
    ("", "invalid JSON"),
    ("[" * 100_000, "invalid JSON"),
    ("1" * 5000, "invalid JSON"),
])
def test_parser_is_strict_about_the_content(text, reason):
    with pytest.raises(Unparsable, match=re.escape(reason)):
        parse_json(extract_json(text))
    score = check({}, text)  # the public check turns it into an error score
    assert score.error and reason in score.error and score.details["violations"][0]["pointer"] == ""


# -- the public check -------------------------------------------------------------------------------------


def test_check_validates_any_schema():
    schema = {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}, "n": {"type": "integer"}},
              "required": ["n"]}
    assert check(schema, '```json\n{"n": 1, "when": "2024-05-01T10:00:00+02:00"}\n```').reward == 1.0
    score = check(schema, '{"when": "yesterday"}')
    assert score.reward == 0.0 and not score.accepted and score.error is None
    assert sorted(v["pointer"] for v in score.details["violations"]) == ["", "/when"]
    assert "validators_agree" not in score.details  # no spec, no second opinion


def test_check_reports_bad_schemas_as_errors():
    assert check({"type": 5}, "1").error.startswith("invalid schema")
    assert check({"type": "string", "pattern": "("}, '"x"').error.startswith("invalid schema")
    assert "unresolvable" in check({"$ref": "https://example.com/nowhere.json"}, "1").error


def test_check_follows_the_draft_a_schema_names():
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"n": {"type": "integer"}},
              "items": [{"$ref": "#/definitions/n"}, {"type": "string"}]}  # tuple validation, draft-07 style
    assert check(draft7, '[1, "a"]').accepted and not check(draft7, '["a", 1]').accepted


def test_a_schema_that_is_not_the_specs_own_is_still_checked():
    spec = obj(field("n", {"type": "integer"}))
    assert judge(json_schema(spec), '{"n": 1}', spec=spec).accepted  # pydantic's own schema: no metaschema check
    tampered = {**json_schema(spec), "properties": {"n": {"type": "integer", "minimum": "zero"}}}
    assert judge(tampered, '{"n": 1}', spec=spec).error.startswith("invalid schema")


def test_compiled_validators_are_cached_per_schema():
    schema = json_schema(SHOP)
    assert compiled(schema) is compiled(copy.deepcopy(schema))
    assert compiled(schema) is not compiled({**schema, "title": "Other"})


# schemas whose compaction must not change any verdict, each with documents on both sides
TRICKY = [
    ({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                         "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
                         "required": ["v"]}}, "$ref": "#/$defs/node"},
     [{"v": 1, "next": {"v": 2, "next": None}}, {"v": 1, "next": {"next": None}}, {"v": 1, "next": 3}]),
    ({"type": "object", "properties": {"title": {"type": "integer", "title": "T"}, "default": {"const": 1}},
      "required": ["title"]},
     [{"title": 1, "default": 1}, {"title": "x"}, {"default": 1}, {"title": 1, "default": 2}]),
    ({"type": "object", "properties": {"$ref": {"type": "string"}}}, [{"$ref": "x"}, {"$ref": 3}]),
    ({"if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["b"]}, "else": {"required": ["c"]},
      "title": "conditional"}, [{"a": 1, "b": 0}, {"a": 1, "c": 0}, {"a": 2, "c": 0}, {"a": 2, "b": 0}]),
    ({"type": "array", "contains": {"type": "integer"}, "minContains": 2, "maxContains": 3},
     [[1, 2], [1, "a"], [1, 2, 3, 4]]),
    ({"$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s", "maxLength": 2}}},
     [{"a": "ab"}, {"a": "abc"}, {"a": 1}]),
    ({"properties": {"a": {"anyOf": [{"type": "string", "enum": ["x"]}, {"type": "null"}]}}},
     [{"a": None}, {"a": "x"}, {"a": "y"}]),
    ({"properties": {"a": {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "null"}], "title": "A"}}},
     [{"a": None}, {"a": 3}, {"a": 2}, {"a": "3"}]),
    ({"$id": "https://example.com/s", "$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s"}}},
     [{"a": "x"}, {"a": 1}]),
    ({"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"id": {"type": "string"}}},
     [{"id": "x"}, {"id": 1}]),
]


@pytest.mark.parametrize(("schema", "docs"), TRICKY)
def test_compaction_never_changes_a_verdict(schema, docs):
    plain = Draft202012Validator(schema, format_checker=FORMATS)
    verdicts = [compiled(schema).validator.is_valid(doc) for doc in docs]
    assert verdicts == [plain.is_valid(doc) for doc in docs] and True in verdicts and False in verdicts


def test_compaction_inlines_folds_and_drops_annotations():
    schema = json_schema(obj(field("c", {"type": "enum", "name": "Color", "values": ["red"]}),
                             field("n", {"type": "integer", "minimum": 1}, nullable=True),
                             field("title", {"type": "string"})))
    compacted = compact(schema)
    assert compacted["properties"] == {"c": {"enum": ["red"], "type": "string"},
                                       "n": {"minimum": 1, "type": ["integer", "null"]}, "title": {"type": "string"}}
    assert "title" not in compacted and compacted["$defs"] == schema["$defs"]
    node = TRICKY[0][0]["$defs"]["node"]
    recursive = {"$defs": {"node": node}, "type": "object", "properties": {"head": {"$ref": "#/$defs/node"}}}
    head = compact(recursive)["properties"]["head"]
    assert head["required"] == ["v"] and head["properties"]["next"]["anyOf"][0] == {"$ref": "#/$defs/node"}
    # a root reference, a reference with a constraint beside it, an "$id", a property named "$ref": kept
    for untouched in (TRICKY[0][0], TRICKY[2][0], TRICKY[5][0], TRICKY[8][0]):
        assert compact(untouched) == untouched


# -- the quick verdict ------------------------------------------------------------------------------------
# quick.py must give jsonschema's verdict on every document, and its narrowed schema jsonschema's violations.

NAMES = ["a", "b", "c"]
TYPES = ["object", "array", "string", "boolean", "null", "number", "integer"]
ODD_VALUES = [None, True, False, 0, 1, 1.0, -1, 2.5, 2**70, 1e300, "", "a", "ab", "abc", "2024-01-01", "2024-01-01T00:00:00Z",
              "a@b.co", "123e4567-e89b-42d3-a456-426614174000", [], {}]
small_json = st.recursive(st.sampled_from(ODD_VALUES) | st.integers(-3, 3) | st.floats(-4, 4),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES + ["d"]), inner,
                                                                                       max_size=3), max_leaves=8)
leaf_keywords = st.one_of(
    st.tuples(st.just("type"), st.sampled_from(TYPES) | st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True)),
    st.tuples(st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]),
              st.integers(-3, 3) | st.sampled_from([0.5, -1.5, 2.0, 2**70])),
    st.tuples(st.sampled_from(["minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"]),
              st.integers(0, 3)),
    st.tuples(st.just("multipleOf"), st.sampled_from([1, 2, 0.5, 1.5])),
    st.tuples(st.just("uniqueItems"), st.booleans()),
    st.tuples(st.just("required"), st.lists(st.sampled_from(NAMES), unique=True, max_size=2)),
    st.tuples(st.just("dependentRequired"), st.dictionaries(st.sampled_from(NAMES), st.lists(st.sampled_from(NAMES), unique=True,
                                                                                           max_size=2), max_size=2)),
    st.tuples(st.just("pattern"), st.sampled_from(["^a", "b$", "^[0-9]+$", "^$"])),
    st.tuples(st.just("format"), st.sampled_from(["email", "date-time", "date", "uuid"])),
    st.tuples(st.just("enum"), st.lists(small_json, min_size=1, max_size=3) | st.lists(st.sampled_from(NAMES), min_size=1)),
    st.tuples(st.just("const"), small_json),
    st.tuples(st.sampled_from(["title", "default", "$defs", "unknownKeyword"]), small_json),  # no effect on validity
)


def applicator_keywords(sub):
    return st.one_of(
        st.tuples(st.just("properties"), st.dictionaries(st.sampled_from(NAMES), sub, max_size=3)),
        st.tuples(st.sampled_from(["additionalProperties", "items", "not"]), sub),
        st.tuples(st.sampled_from(["prefixItems", "allOf", "anyOf", "oneOf"]), st.lists(sub, min_size=1, max_size=3)),
    )


quick_schemas = st.recursive(st.booleans() | st.lists(leaf_keywords, max_size=3).map(dict),
                             lambda sub: st.lists(leaf_keywords | applicator_keywords(sub), max_size=4).map(dict), max_leaves=10)


def assert_quick_agrees(validators: Compiled, plain: Draft202012Validator, doc) -> None:
    assert validators.quick.is_valid(doc) is plain.is_valid(doc), doc
    assert validators.violations(doc) == named(validators.validator.iter_errors(doc)), doc  # narrowed == full walk


@settings(max_examples=300, deadline=None)
@given(quick_schemas, st.lists(small_json, min_size=1, max_size=4))
@example({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, [["a", 1], [1, 1], ["a", "b"], []])
@example({"oneOf": [{"type": "integer"}, {"minimum": 0}], "not": {"const": 3}}, [1, -1, 1.5, "x", 3])
@example({"type": ["integer", "null"], "multipleOf": 0.5}, [1.0, True, 2.5, 0.75, None, 2**70])
@example({"enum": [1, "a", [1], {"a": None}]}, [True, 1.0, "a", [1.0], [True], {"a": None}, {"a": False}])
@example({"properties": {"a": {"properties": {"b": {"type": "integer"}}, "required": ["c"]}, "b": {"anyOf": [
    {"type": "string"}, {"properties": {"a": {"const": "x"}}}]}}, "additionalProperties": False},
    [{"a": {"b": "x"}, "b": {"a": "y"}, "z": 1}, {"a": {"c": 1, "b": 2}, "b": "s"}])
def test_quick_verdict_is_jsonschemas_for_any_schema_in_its_subset(schema, docs):
    plain = Draft202012Validator(schema, format_checker=FORMATS)
    validators = Compiled(plain, quick_schema(plain))
    assert validators.quick is not None
    for doc in docs:
        assert_quick_agrees(validators, plain, doc)


@settings(max_examples=40, deadline=None)  # ~30 ms each: a model and its schema
@given(st.integers(0, 2**32 - 1))
def test_quick_verdict_is_jsonschemas_for_generated_schemas_and_broken_documents(seed):
    rng = random.Random(seed)
    spec = random_spec(rng)
    schema = json_schema(spec)
    validators = compiled(schema, models.build(spec).schema_key)
    assert validators.quick is not None  # every generated schema is in the subset
    plain = Draft202012Validator(schema, format_checker=FORMATS)  # not compacted
    doc = reference(spec, rng)
    pointers = sorted(_pointers(doc))[1:]  # every value but the whole document
    docs = [doc] + [set_at(doc, p, rng.choice(ODD_VALUES)) for p in rng.sample(pointers, k=min(6, len(pointers)))]
    for corruption in CORRUPTIONS.values():
        result = corruption(doc, spec, random.Random(seed))
        if result is not None:
            try:
                docs.append(parse_json(result.text))
            except Unparsable:  # syntax damage, truncation
                pass
    for changed in docs:
        assert_quick_agrees(validators, plain, changed)


@pytest.mark.parametrize("schema", [
    TRICKY[0][0],  # a recursive reference
    {"patternProperties": {"^a": {"type": "integer"}}},
    {"if": {"required": ["a"]}, "then": {"required": ["b"]}},
    {"contains": {"type": "integer"}},
    {"properties": {"a": {"type": "string"}}, "unevaluatedProperties": False},
    {"propertyNames": {"maxLength": 2}},
    {"dependentSchemas": {"a": {"required": ["b"]}}},
    {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
    {"properties": {"a": {"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": {"b": ["c"]}}}},
])
def test_schemas_beyond_the_quick_subset_are_left_to_jsonschema(schema):
    assert compiled(schema).quick is None
    plain = Draft202012Validator(schema, format_checker=FORMATS)
    for doc in ({}, {"a": {"b": 1}}, {"a": [1], "b": 2}):
        assert check(schema, json.dumps(doc)).accepted is plain.is_valid(doc)


def test_check_of_a_plain_schema_takes_the_quick_path():
    assert compiled(PERSON).quick is not None
    assert check(PERSON, '{"name": "Ana", "age": 3}').accepted and not check(PERSON, '{"name": 1}').accepted


# -- documents --------------------------------------------------------------------------------------------


def test_layout_is_json_dumps_with_token_spans():
    doc = {"a/b": [1, {"c~": None}, []], "d": {}, "e": "x\ny"}
    text, spans = layout(doc)
    assert text == json.dumps(doc, indent=2, ensure_ascii=False)
    scalars = {s.pointer: text[s.start : s.end] for s in spans if s.kind == "scalar"}
    assert scalars == {"/a~1b/0": "1", "/a~1b/1/c~0": "null", "/a~1b/2": "[]", "/d": "{}", "/e": '"x\\ny"'}
    assert leaves(doc) == {"/a~1b/0": 1, "/a~1b/1/c~0": None, "/a~1b/2": [], "/d": {}, "/e": "x\ny"}
    assert resolve(doc, "/a~1b/1/c~0") is None and resolve(doc, "/a~1b/5") is MISSING and resolve(doc, "/zz") is MISSING


def test_json_equality():
    assert same(1, 1.0) and same([1, {"a": 2}], [1.0, {"a": 2}]) and same(None, None)
    assert not same(True, 1) and not same(0, False) and not same("1", 1) and not same({"a": 1}, {"a": 1, "b": 2})


# -- the environment --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env() -> JSONSchemaEnv:
    return make("json_schema")


@pytest.fixture(scope="module")
def tasks(env) -> list[Task]:
    return list(env.tasks().iter("train", limit=40)) + list(env.tasks().iter("eval", limit=4))


def answer(task: Task, doc=None, fenced: bool = True) -> Completion:
    body = json.dumps(task.verifier["reference"] if doc is None else doc, indent=2)
    return Completion(text=f"```json\n{body}\n```" if fenced else body)


def test_registered_with_its_gym_id():
    spec = environments.spec("json_schema")
    assert spec.gym_id == "lachesis/JSONSchema-v0" and spec.cls is JSONSchemaEnv
    assert spec.description.startswith("Structured output:")
    gym_env = gymnasium.make("lachesis/JSONSchema-v0")
    observation, info = gym_env.reset(seed=3)
    assert "JSON Schema" in observation["messages"][0]["content"] and info["task_id"].startswith("json_schema-")


@pytest.mark.parametrize("config", [{"mode": "both"}, {"length_budget": 0}, {"length_penalty": 1.5}])
def test_bad_config_is_refused(config):
    with pytest.raises(ValueError):
        make("json_schema", **config)


def test_tasks_are_deterministic_and_splits_disjoint(env, tasks):
    again = make("json_schema")
    assert [t.task_id for t in again.tasks().iter("train", limit=5)] == [t.task_id for t in tasks[:5]]
    train = {t.task_id for t in tasks if t.split == "train"}
    assert train and not train & {t.task_id for t in env.tasks().iter("eval", limit=4)}
    assert {t.verifier["mode"] for t in tasks} == {"generate", "repair"}


@pytest.mark.parametrize("mode", ["generate", "repair"])
def test_a_mode_gives_only_its_tasks(mode):
    assert {t.verifier["mode"] for t in make("json_schema", mode=mode).tasks().iter("train", limit=6)} == {mode}


def test_reference_answers_are_accepted(env, tasks):
    for task in tasks:
        for fenced in (True, False):
            score = env.verify(task, answer(task, fenced=fenced))
            assert score.accepted and score.reward == 1.0 and score.details["validators_agree"], (task.task_id, score)


def test_generate_brief_lists_the_required_values(env, tasks):
    for task in (t for t in tasks if t.verifier["mode"] == "generate"):
        prompt, values = task.prompt[0].content, task.verifier["values"]
        assert values and json.dumps(task.verifier["schema"]) in prompt
        for pointer, value in values.items():
            assert f"- {pointer} = {json.dumps(value, ensure_ascii=False)}" in prompt
            assert resolve(task.verifier["reference"], pointer) == value


def test_required_values_are_checked_apart_from_validity():
    spec = obj(field("name", {"type": "string"}), field("tags", {"type": "array", "items": {"type": "integer"}}))
    schema, values = json_schema(spec), {"/name": "Ana", "/tags/1": 2}
    assert judge(schema, '{"name": "Ana", "tags": [1, 2.0]}', spec=spec, values=values).accepted  # 2.0 is 2 in JSON
    score = judge(schema, '{"name": "Bob", "tags": [1]}', spec=spec, values=values)
    assert score.details["valid"] is True and score.details["values_ok"] is False and not score.accepted
    assert score.details["violations"] == [{"pointer": "/name", "reason": 'expected "Ana", found "Bob"'},
                                           {"pointer": "/tags/1", "reason": "missing; expected 2"}]
    assert not judge(schema, '{"name": "Ana", "tags": [1, true]}', spec=spec, values={"/tags/1": 1}).details["values_ok"]


def test_generated_brief_values_are_enforced(env, tasks):
    for task in (t for t in tasks if t.verifier["mode"] == "generate"):
        pointer, value = next(iter(task.verifier["values"].items()))
        changed = set_at(task.verifier["reference"], pointer, [value])
        score = env.verify(task, answer(task, changed))
        assert not score.accepted and score.details["values_ok"] is False
        assert any(v["pointer"] == pointer and v["reason"].startswith("expected") for v in score.details["violations"])


def test_repair_keeps_the_untouched_values():
    kept = {p: v for p, v in leaves(DOC).items() if p != "/qty"}  # as if the corruption had touched /qty
    assert judge(SHOP_SCHEMA, json.dumps({**DOC, "qty": 4}), spec=SHOP, values=kept).accepted
    score = judge(SHOP_SCHEMA, json.dumps({**DOC, "qty": 4, "email": "bo@example.com"}), spec=SHOP, values=kept)
    assert score.details["valid"] and not score.accepted
    assert score.details["violations"] == [{"pointer": "/email", "reason": 'expected "ana@example.com", found "bo@example.com"'}]


def test_repair_tasks(env, tasks):
    repairs = [t for t in tasks if t.verifier["mode"] == "repair"]
    assert repairs
    for task in repairs:
        broken = task.prompt[0].content.split("Document:\n```\n", 1)[1].rsplit("\n```\n\nJSON Schema:", 1)[0]
        assert not env.verify(task, Completion(text=broken)).accepted
        kept = task.verifier["values"]
        assert kept == {p: v for p, v in leaves(task.verifier["reference"]).items() if p in kept}
        assert task.verifier["corruption"] in CORRUPTIONS


def test_length_penalty():
    env = make("json_schema", mode="generate", length_budget=2048, length_penalty=0.4)
    task = next(iter(env.tasks().iter("train", limit=1)))
    assert task.verifier["length_budget"] == 2048 and task.verifier["length_penalty"] == 0.4
    assert task.task_id == next(iter(make("json_schema", mode="generate").tasks().iter("train", limit=1))).task_id
    body = json.dumps(task.verifier["reference"])
    assert len(body) <= 2048 and env.verify(task, Completion(text=body)).reward == 1.0
    padded = body + " " * (3072 - len(body))  # 1,024 characters over a budget of 2,048: half the penalty
    score = env.verify(task, Completion(text=padded))
    assert score.accepted and score.reward == pytest.approx(0.8) and score.details["length_penalty"] == pytest.approx(0.2)
    assert env.verify(task, Completion(text=body + " " * 5000)).reward == pytest.approx(0.6)
    assert env.verify(task, Completion(text="{" + " " * 5000)).reward == 0.0


def test_reasoning_mode():
    env = make("json_schema", reasoning=True)
    task = next(iter(env.tasks().iter("train", limit=1)))
    assert task.reasoning is True
    body = json.dumps(task.verifier["reference"])
    assert env.verify(task, Completion(text=f"<think>Fill in the fields.</think>\n```json\n{body}\n```")).accepted
    assert env.verify(task, Completion(text=body)).error == "missing <think> block"
    assert not env.verify(task, Completion(text=f"<think>a</think><think>b</think>{body}")).accepted


def test_episode(env, tasks):
    task = tasks[0]

    async def episode():
        observation, info = await env.reset(options={"task": task.model_dump(mode="json")})
        assert observation.messages[0].content == task.prompt[0].content
        return await env.step(Message(role="assistant", content=answer(task).text))

    _, reward, terminated, _, info = run(episode())
    assert reward == 1.0 and terminated and info["score"]["accepted"]


# -- tasks from schema files ------------------------------------------------------------------------------

PERSON = {"title": "Person", "description": "Someone we know.", "type": "object",
          "properties": {"name": {"type": "string"}, "born": {"type": "string", "format": "date"}}, "required": ["name"]}
POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}


def file_tasks(path: Path) -> list[Task]:
    source = make("json_schema", schemas=str(path)).tasks()
    return list(source.iter("train")) + list(source.iter("eval"))


def test_tasks_from_a_directory_and_a_jsonl_file(tmp_path):
    folder = tmp_path / "schemas"
    (folder / "nested").mkdir(parents=True)
    (folder / "person.json").write_text(json.dumps(PERSON))
    (folder / "nested" / "point.json").write_text(json.dumps(POINT))
    lines = tmp_path / "schemas.jsonl"
    lines.write_text(json.dumps(PERSON) + "\n\n" + json.dumps(POINT) + "\n")
    env = make("json_schema")
    for path in (folder, lines):
        tasks = file_tasks(path)
        assert len(tasks) == 2 and {t.verifier["mode"] for t in tasks} == {"generate"}
        person = next(t for t in tasks if t.verifier["schema"] == PERSON)
        prompt = person.prompt[0].content
        assert "describing one Person" in prompt and "Someone we know." in prompt and "must have the properties name" in prompt
        assert env.verify(person, Completion(text='{"name": "Ana", "born": "1990-04-01"}')).accepted
        score = env.verify(person, Completion(text='{"born": "1990-13-01"}'))
        assert not score.accepted and len(score.details["violations"]) == 2
    assert sorted(t.task_id for t in file_tasks(folder)) == sorted(t.task_id for t in file_tasks(lines))


@pytest.mark.parametrize(("content", "message"), [
    ('{"type": "object"}\n{"type": 5}\n', "schemas.jsonl:2: not a valid JSON Schema"),
    ('{"type": "object"}\n[1]\n', "schemas.jsonl:2: a schema must be a JSON object"),
    ("{nope\n", "schemas.jsonl:1: not JSON"),
])
def test_bad_schema_files_fail_the_load_with_their_place(tmp_path, content, message):
    path = tmp_path / "schemas.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        make("json_schema", schemas=str(path))


def test_schema_source_must_be_a_folder_of_json_or_jsonl(tmp_path):
    with pytest.raises(ValueError, match="no \\*.json schema files"):
        make("json_schema", schemas=str(tmp_path))
    with pytest.raises(ValueError, match="expected a directory"):
        make("json_schema", schemas=str(tmp_path / "schemas.csv"))


# -- never raises -----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
texts = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    json_values.map(lambda v: f"```json\n{json.dumps(v)}\n```"),
    st.tuples(json_values, st.text(max_size=20)).map(lambda p: json.dumps(p[0]) + p[1]),
    st.text(alphabet="{}[]\",:0123456789.eE+-tfnrul `\n\\", max_size=60),
)


@pytest.fixture(scope="module")
def reasoning_task() -> Task:
    return next(iter(make("json_schema", reasoning=True).tasks().iter("train", limit=1)))


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_verify_never_raises(env, tasks, reasoning_task, text):
    for task in (tasks[0], tasks[1], reasoning_task):
        for candidate in (text, f"<think>x</think>{text}"):
            score = env.verify(task, Completion(text=candidate))
            assert isinstance(score, Score) and 0.0 <= score.reward <= 1.0
            json.dumps(score.model_dump(mode="json"))
    assert isinstance(check(PERSON, text), Score)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_one_changed_value_is_judged_consistently(env, tasks, data):
    """Replace one leaf of a reference answer by any JSON value: verify and a plain jsonschema validator agree."""
    task = data.draw(st.sampled_from(tasks))
    doc = task.verifier["reference"]
    pointer = data.draw(st.sampled_from(sorted(leaves(doc))))
    changed = set_at(doc, pointer, data.draw(json_values))
    score = judge(task.verifier["schema"], json.dumps(changed), spec=task.verifier["spec"])
    plain = Draft202012Validator(task.verifier["schema"], format_checker=FORMATS)
    assert score.details["valid"] is plain.is_valid(changed) is score.accepted


# -- through the server -----------------------------------------------------------------------------------


def test_batch_verify_through_the_server(tmp_path, env, tasks):
    items = [(t, answer(t)) for t in tasks[:6]] + [(t, Completion(text="{}")) for t in tasks[:6]]
    serve = ("serve", "--port", "0", "--data-dir", str(tmp_path / "store"), "--verify-workers", "2")

    async def remote():  # stopped with SIGTERM, so the server shuts its verify workers down too
        async with lachesis_process(*serve) as url, EnvServerClient(url) as client:
            return await client.verify("json_schema", items)

    scores = run(remote())
    assert [s["reward"] for s in scores] == [env.verify(t, c).reward for t, c in items] == [1.0] * 6 + [0.0] * 6


def test_server_batches_keep_the_completions_of_a_task_in_one_worker(tasks):
    """So that each schema is compiled by one verify worker, not by all of them."""
    items = [(task, Completion(text=str(i))) for i in range(3) for task in tasks[:4]]  # the tasks interleaved
    chunks = _chunks(items, 2)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(12)) and [len(c) for c in chunks] == [6, 6]
    for task in tasks[:4]:
        assert sum(any(items[i][0] is task for i in chunk) for chunk in chunks) == 1
    assert [len(c) for c in _chunks(items[:5], 2)] == [3, 2] and _chunks(items[:1], 1) == [[0]]
