"""Environment registry: built-ins, third-party entry points, and gymnasium ids.

`register("arithmetic", ArithmeticEnv)` keys the class by (name, class version). Third-party packages
declare `[project.entry-points."lachesis.environments"] my_env = "my_pkg.envs:MyEnv"` and are discovered
on first lookup. Every registered environment is also a gymnasium id, `lachesis/<Title>-v<version>`, where
Title is the class name without its `Env` suffix (ArithmeticEnv → lachesis/Arithmetic-v0).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import gymnasium

from .env import Env

ENTRY_POINT_GROUP = "lachesis.environments"


@dataclass(frozen=True)
class EnvSpec:
    name: str
    version: int
    cls: type[Env]

    @property
    def gym_id(self) -> str:
        title = self.cls.__name__.removesuffix("Env") or self.cls.__name__
        return f"lachesis/{title}-v{self.version}"

    @property
    def description(self) -> str:
        return (self.cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


_specs: dict[tuple[str, int], EnvSpec] = {}
_discovered = False


def _load(ref: type[Env] | str) -> type[Env]:
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        ref = getattr(importlib.import_module(module), attr)
    if not (isinstance(ref, type) and issubclass(ref, Env)):
        raise TypeError(f"{ref!r} is not a subclass of environments.Env")
    return ref


def register(name: str, env_cls: type[Env] | str) -> EnvSpec:
    """Register an Env class (or a "module:Class" reference) under `name` at the class's version."""
    cls = _load(env_cls)
    spec = EnvSpec(name, cls.version, cls)
    existing = _specs.get((name, spec.version))
    if existing is not None and existing.cls is not cls:
        raise ValueError(f"environment {name!r} v{spec.version} is already registered to {existing.cls.__qualname__}")
    gym_kwargs = {"name": name, "version": spec.version}
    taken = gymnasium.registry.get(spec.gym_id)
    if taken is not None and taken.kwargs != gym_kwargs:
        raise ValueError(f"gymnasium id {spec.gym_id} already belongs to environment {taken.kwargs}; rename the class")
    _specs[(name, spec.version)] = spec
    if taken is None:
        from .gym import GymEnv  # gymnasium's sync view; imported late to avoid a cycle

        gymnasium.register(spec.gym_id, entry_point=GymEnv, kwargs=gym_kwargs)
    return spec


def discover() -> None:
    """Register third-party environments from entry points, once (at `import environments`)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register(ep.name, ep.value)
        except Exception as exc:  # one broken plugin must not take every environment down with it
            warnings.warn(f"skipping environment {ep.name!r} from {ep.value!r}: {exc}", stacklevel=2)


def specs() -> list[EnvSpec]:
    """Every registered environment, each name at every version, sorted."""
    discover()
    return sorted(_specs.values(), key=lambda s: (s.name, s.version))


def spec(name: str, version: int | None = None) -> EnvSpec:
    """The spec of `name` at `version`, or at its newest version."""
    discover()
    versions = sorted(v for (n, v) in _specs if n == name)
    if not versions:
        known = ", ".join(sorted({n for n, _ in _specs})) or "none"
        raise KeyError(f"unknown environment {name!r} (registered: {known})")
    if version is None:
        version = versions[-1]
    if (name, version) not in _specs:
        raise KeyError(f"environment {name!r} has no version {version} (versions: {versions})")
    return _specs[(name, version)]


def make(name: str, version: int | None = None, **config: Any) -> Env:
    s = spec(name, version)
    return s.cls(name, **config)
