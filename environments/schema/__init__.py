"""JSON-schema adherence: generate or repair JSON documents for dynamically generated Pydantic schemas.

Module map, in reading order:
  spec.py       random schema specs (plain JSON describing fields), deterministic from a seed
  models.py     the Pydantic model rebuilt from a spec with create_model, and its JSON Schema
  reference.py  a valid document for any spec
  corrupt.py    the corruptions behind repair tasks
  document.py   JSON pointers, leaf values, and a pretty layout with token spans
  parse.py      finding the one JSON document in an answer
  formats.py    the format checker (RFC 3339 date-times added to jsonschema's)
  compact.py    an equivalent schema that jsonschema checks faster
  quick.py      jsonschema's verdict, quicker, for the common keywords; the part of a schema a document breaks
  validate.py   jsonschema and pydantic, with compiled validators cached per schema
  verdict.py    the Score, and the public `check`
  tasks.py      generate and repair tasks, and their prompts
  files.py      generate tasks from files of JSON Schemas
  env.py        the environment
"""

from .env import JSONSchemaEnv
from .verdict import check

__all__ = ["JSONSchemaEnv", "check"]
