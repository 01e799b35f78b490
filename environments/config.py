"""Configuration files: TOML validated by a pydantic model, with errors that name the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def validated(cls: type[M], data: Any, where: str) -> M:
    """`cls` from `data`, or a ValueError naming `where` and every field at fault."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{where}: {problems}") from None


def load_toml(cls: type[M], path: str | Path) -> M:
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return validated(cls, data, str(path))
