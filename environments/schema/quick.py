"""A quick verdict on decoded JSON for a Draft 2020-12 schema, the same as jsonschema's, at a tenth of the cost.

jsonschema builds a validator object for every subschema it enters, anew for every document, so a valid
document of 1 KB costs it a few hundred microseconds. Here a schema is turned once into nested Python
functions that answer valid or not. They follow jsonschema keyword by keyword, so the verdict is the same:
"type" and the applicators (properties, additionalProperties, items, prefixItems, allOf, anyOf, oneOf, not)
are written out after jsonschema's code, the common leaf keywords (bounds, lengths, required, pattern,
format, string enum/const) are one-line checks, and the other leaf keywords run jsonschema's own function.
A schema with any other keyword (references, unevaluated*, contains, if/then/else, patternProperties, a
subschema of another draft) is not compiled, and jsonschema alone judges it.

For an invalid document, `failing_part` narrows the schema to what the document breaks, so that jsonschema
lists the same violations without walking the members that are fine. Documents must be decoded JSON
(dict, list, str, int, float, bool, None), as parse.py gives them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

Check = Callable[[Any], bool]

# JSON types as jsonschema's Draft 2020-12 type checker sees them. Decoded JSON holds exactly these Python
# types (no subclasses), so type(x) tells them apart, bool from int included: bool is not a number.
_STRING, _ARRAY, _OBJECT, _NUMBER = (str,), (list,), (dict,), (int, float)
_IS_TYPE: dict[str, Check] = {
    "object": lambda x: type(x) is dict,
    "array": lambda x: type(x) is list,
    "string": lambda x: type(x) is str,
    "boolean": lambda x: type(x) is bool,
    "null": lambda x: x is None,
    "number": lambda x: type(x) in _NUMBER,
    "integer": lambda x: type(x) is int or (type(x) is float and x.is_integer()),  # 1.0 is an integer
}
# leaf keywords checked by jsonschema's own function (they never descend into a subschema)
_DELEGATED = {"enum", "const", "multipleOf", "uniqueItems", "dependentRequired"}


class Unsupported(Exception):
    """The schema uses a keyword this module does not compile."""


class QuickSchema:
    """The quick verdict for the schema of a compiled jsonschema validator."""

    def __init__(self, validator: Validator):
        if type(validator) is not Draft202012Validator:
            raise Unsupported(f"{type(validator).__name__} (only Draft 2020-12 is compiled)")
        self.validator = validator
        self._checks: dict[int, Check] = {}  # by id() of each subschema of validator.schema, which outlives them
        self.is_valid = self._schema(validator.schema)

    def failing_part(self, doc: Any) -> Any:
        """The schema with every "properties" member that `doc` satisfies (or lacks) replaced by true, along
        the members it breaks. jsonschema finds no error in a satisfied member, and the other keywords read
        only the names of "properties", so the narrowed schema gives the same errors, sooner."""
        return self._narrowed(self.validator.schema, doc)

    def _narrowed(self, schema: Any, doc: Any) -> Any:
        members = schema.get("properties") if isinstance(schema, dict) and type(doc) is dict else None
        if not isinstance(members, dict):
            return schema
        kept = {name: self._narrowed(sub, doc[name]) if name in doc and not self._checks[id(sub)](doc[name]) else True
                for name, sub in members.items()}
        return {**schema, "properties": kept}

    def _schema(self, schema: Any) -> Check:
        check = self._compile(schema)
        self._checks[id(schema)] = check
        return check

    def _compile(self, schema: Any) -> Check:
        if schema is True or schema is False:
            return lambda x: schema
        if not isinstance(schema, dict):
            raise Unsupported(f"a schema that is a {type(schema).__name__}")
        if validator_for(schema, default=Draft202012Validator) is not Draft202012Validator:
            raise Unsupported("a subschema of another draft")  # jsonschema switches drafts at a "$schema"
        checks = [self._keyword(k, v, schema) for k, v in schema.items() if k in self.validator.VALIDATORS]
        if len(checks) == 1:
            return checks[0]

        def all_hold(x: Any) -> bool:
            for check in checks:
                if not check(x):
                    return False
            return True

        return all_hold

    def _keyword(self, keyword: str, value: Any, schema: dict[str, Any]) -> Check:
        applicator = _APPLICATORS.get(keyword)
        if applicator is not None:
            return applicator(self, value, schema)
        if keyword in _DELEGATED:
            return self._delegated(keyword, value, schema)
        leaf = _leaf(keyword, value, self.validator)
        if leaf is None:
            raise Unsupported(keyword)
        return leaf

    def _delegated(self, keyword: str, value: Any, schema: dict[str, Any]) -> Check:
        if keyword in ("enum", "const"):  # all strings: JSON equality is str equality, and only strings match
            options = value if keyword == "enum" else [value]
            if isinstance(options, list) and options and all(isinstance(o, str) for o in options):
                allowed = frozenset(options)
                return lambda x: type(x) is str and x in allowed
        function, validator = self.validator.VALIDATORS[keyword], self.validator
        return lambda x: next(iter(function(validator, value, x, schema) or ()), None) is None

    # -- the applicators and "type", after jsonschema/_keywords.py ------------------------------------------

    def _type(self, value: Any, schema: dict[str, Any]) -> Check:
        names = value if isinstance(value, list) else [value]
        if not all(isinstance(n, str) and n in _IS_TYPE for n in names):
            raise Unsupported(f"type {value!r}")
        tests = [_IS_TYPE[n] for n in names]
        return tests[0] if len(tests) == 1 else lambda x: any(test(x) for test in tests)

    def _properties(self, value: dict[str, Any], schema: dict[str, Any]) -> Check:
        members = [(name, self._schema(sub)) for name, sub in value.items()]

        def properties(x: Any) -> bool:
            if type(x) is not dict:
                return True
            for name, check in members:
                if name in x and not check(x[name]):
                    return False
            return True

        return properties

    def _additional_properties(self, value: Any, schema: dict[str, Any]) -> Check:
        known = frozenset(schema.get("properties", {}))
        if isinstance(value, dict):  # a schema for every other member
            check = self._schema(value)
            return lambda x: type(x) is not dict or all(check(v) for k, v in x.items() if k not in known)
        if not value:  # false: no other member
            return lambda x: type(x) is not dict or known.issuperset(x)
        return lambda x: True

    def _items(self, value: Any, schema: dict[str, Any]) -> Check:
        check, prefix = self._schema(value), len(schema.get("prefixItems", []))
        return lambda x: type(x) is not list or all(check(item) for item in x[prefix:])

    def _prefix_items(self, value: list[Any], schema: dict[str, Any]) -> Check:
        checks = [self._schema(sub) for sub in value]
        return lambda x: type(x) is not list or all(check(item) for check, item in zip(checks, x))

    def _all_of(self, value: list[Any], schema: dict[str, Any]) -> Check:
        checks = [self._schema(sub) for sub in value]
        return lambda x: all(check(x) for check in checks)

    def _any_of(self, value: list[Any], schema: dict[str, Any]) -> Check:
        checks = [self._schema(sub) for sub in value]
        return lambda x: any(check(x) for check in checks)

    def _one_of(self, value: list[Any], schema: dict[str, Any]) -> Check:
        checks = [self._schema(sub) for sub in value]
        return lambda x: sum(1 for check in checks if check(x)) == 1

    def _not(self, value: Any, schema: dict[str, Any]) -> Check:
        check = self._schema(value)
        return lambda x: not check(x)


_APPLICATORS = {"type": QuickSchema._type, "properties": QuickSchema._properties,
                "additionalProperties": QuickSchema._additional_properties, "items": QuickSchema._items,
                "prefixItems": QuickSchema._prefix_items, "allOf": QuickSchema._all_of, "anyOf": QuickSchema._any_of,
                "oneOf": QuickSchema._one_of, "not": QuickSchema._not}


def quick_schema(validator: Validator) -> QuickSchema | None:
    """The quick verdict for a validator's schema, or None where only jsonschema can judge it."""
    try:
        return QuickSchema(validator)
    except (Unsupported, RecursionError, re.error):
        return None


def _leaf(keyword: str, value: Any, validator: Validator) -> Check | None:
    """The check of a common leaf keyword: it holds for values of other types, else jsonschema's condition
    for a violation must not."""
    match keyword:
        case "minimum":
            return lambda x: type(x) not in _NUMBER or not x < value
        case "maximum":
            return lambda x: type(x) not in _NUMBER or not x > value
        case "exclusiveMinimum":
            return lambda x: type(x) not in _NUMBER or not x <= value
        case "exclusiveMaximum":
            return lambda x: type(x) not in _NUMBER or not x >= value
        case "minLength" | "minItems" | "minProperties":
            kind = _KIND[keyword]
            return lambda x: type(x) not in kind or not len(x) < value
        case "maxLength" | "maxItems" | "maxProperties":
            kind = _KIND[keyword]
            return lambda x: type(x) not in kind or not len(x) > value
        case "required":
            return lambda x: type(x) is not dict or all(name in x for name in value)
        case "pattern":
            search = re.compile(value).search  # jsonschema: re.search(value, x)
            return lambda x: type(x) is not str or search(x) is not None
        case "format":
            checker = validator.format_checker
            return (lambda x: checker.conforms(x, value)) if checker is not None else (lambda x: True)
    return None


_KIND = {"minLength": _STRING, "maxLength": _STRING, "minItems": _ARRAY, "maxItems": _ARRAY,
         "minProperties": _OBJECT, "maxProperties": _OBJECT}
