"""The built-in problem set: problems.toml, read into problems and turned into tasks."""

from __future__ import annotations

import importlib.resources
import tomllib
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..tasks import content_hash, split_of
from ..types import Message, Task
from .compare import Compare
from .judge import CodeSpec, FunctionalTest, StdioTest
from .prompt import render


class Problem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    difficulty: Literal["easy", "medium", "hard"]
    statement: str
    solution: str  # the reference solution: passes every test
    fn_name: str | None = None  # functional problems: the function (or Solution method) to call
    starter: str | None = None
    tests: list[dict[str, Any]] = Field(min_length=1)  # {input, output} or {args, expected}, each maybe `public`
    compare: Compare = Compare()
    timeout_s: float = 4.0

    @model_validator(mode="after")
    def _has_examples(self) -> Problem:
        if not any(t.get("public") for t in self.tests):
            raise ValueError(f"problem {self.id}: no test is marked public (the prompt shows those)")
        self.spec()  # every test well formed
        return self

    def _test(self, raw: dict[str, Any]) -> StdioTest | FunctionalTest:
        fields = {k: v for k, v in raw.items() if k != "public"}
        return FunctionalTest(fn_name=self.fn_name, **fields) if self.fn_name else StdioTest(**fields)

    def spec(self) -> CodeSpec:
        return CodeSpec(tests=[self._test(t) for t in self.tests], compare=self.compare, timeout_s=self.timeout_s)

    def prompt(self) -> str:
        return render(self.title, self.statement, [self._test(t) for t in self.tests if t.get("public")], self.starter)

    def task(self, env: str) -> Task:
        prompt = self.prompt()
        return Task(task_id=f"{env}-{self.id}", env=env, split=split_of(content_hash({"prompt": prompt})),
                    prompt=[Message(role="user", content=prompt)], verifier=self.spec().model_dump(mode="json"))


@cache
def builtin_problems() -> tuple[Problem, ...]:
    text = importlib.resources.files(__package__).joinpath("problems.toml").read_text()
    problems = tuple(Problem.model_validate(p) for p in tomllib.loads(text)["problem"])
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError(f"problems.toml: duplicate problem ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return problems
