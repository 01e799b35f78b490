"""The catalog as data: transformations, instruction kinds, answer generators, rubrics, personas and the
other prompts, in the YAML files beside this module. A directory of YAML files with the same names extends
it: its items are added, or replace the built-in items with the same id; its other keys replace ours."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..judge import Rubric

HERE = Path(__file__).resolve().parent
BUILTIN_SEEDS = HERE / "seeds.jsonl"
FILES = ("transformations", "instructions", "answerers", "rubrics", "personas", "prompts")


class Entry(BaseModel):
    """A catalog file's content: unknown keys are typos, refused with their name."""

    model_config = ConfigDict(extra="forbid")


class Item(Entry):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    weight: float = Field(default=1.0, gt=0)


class Transformation(Item):
    form: str
    guidance: str = ""
    prompt: str | None = None  # replaces the shared prompt


class InstructionKind(Item):
    mode: Literal["contextual", "standalone"]
    description: str
    guidance: str = ""
    direct: str | None = None  # a fixed wording, for tasks made without a model


class Answerer(Item):
    system: str


class PersonaSpec(Entry):
    name: str
    description: str


class Prompt(Entry):
    system: str
    prompt: str


class Transformations(Entry):
    system: str
    prompt: str
    items: list[Transformation] = Field(min_length=1)


class Instructions(Entry):
    system: str
    contextual_prompt: str
    standalone_prompt: str
    items: list[InstructionKind] = Field(min_length=1)


class Answerers(Entry):
    prompt: str
    items: list[Answerer] = Field(min_length=1)


class Personas(Entry):
    items: list[PersonaSpec] = Field(min_length=1)


class Prompts(Entry):
    persona_from_passage: Prompt
    taxonomy_expand: Prompt
    taxonomy_prompt: Prompt
    refine_suggest: Prompt
    refine_edit: Prompt


class Catalog(Entry):
    transformations: Transformations
    instructions: Instructions
    answerers: Answerers
    rubrics: dict[str, Rubric]  # by node family: transform, instruction, answer
    personas: Personas
    prompts: Prompts

    def summary(self) -> str:
        kinds = self.instructions.items
        contextual = sum(k.mode == "contextual" for k in kinds)
        return (f"{len(self.transformations.items)} transformations, {len(kinds)} instruction kinds ({contextual} "
                f"contextual, {len(kinds) - contextual} standalone), {len(self.answerers.items)} answer generators, "
                f"rubrics for {', '.join(sorted(self.rubrics))}, {len(self.personas.items)} personas")


def _read(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return doc


def _extend(base: dict, extra: dict) -> dict:
    out = {**base, **{k: v for k, v in extra.items() if k != "items"}}
    if "items" in extra:
        key = "id" if any("id" in i for i in base.get("items", [])) else "name"
        merged = {i[key]: i for i in base.get("items", [])}
        merged.update({i[key]: i for i in extra["items"] if isinstance(i, dict) and key in i})
        out["items"] = list(merged.values())
    return out


def load_catalog(extra_dir: str | Path | None = None) -> Catalog:
    """The built-in catalog, extended by the YAML files of `extra_dir` (same file names)."""
    docs = {name: _read(HERE / f"{name}.yaml") for name in FILES}
    if extra_dir is not None:
        for name in FILES:
            path = Path(extra_dir) / f"{name}.yaml"
            if path.exists():
                extra = _read(path)
                docs[name] = {**docs[name], **extra} if name in ("rubrics", "prompts") else _extend(docs[name], extra)
    try:
        catalog = Catalog.model_validate({**docs, "rubrics": {k: {"name": k, **v} for k, v in docs["rubrics"].items()}})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ValueError(f"catalog: {problems}") from exc
    for section in (catalog.transformations, catalog.instructions, catalog.answerers):
        ids = [i.id for i in section.items]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"catalog: duplicate ids {dupes}")
    return catalog
