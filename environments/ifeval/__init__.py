"""Verifiable instruction following (IFEval, RLVR-IFEval, IFBench): 110 constraints, strict and loose checks.

`check(instruction_id, kwargs, response, loose=False)` judges one instruction on any text, with IFEval's ids
and kwargs; `IFEvalEnv` serves tasks and scores answers. `python -m environments.ifeval` lists every
constraint with its arguments and meaning.
"""

from . import constraints as _constraints  # noqa: F401  (registers every constraint)
from .env import IFEvalEnv, group_length_penalty, verdicts
from .registry import CONSTRAINTS, FAMILIES, Constraint, ConstraintError, check, compatible, conflicts, get
from .tasks import IFEvalFile, compose

__all__ = [
    "CONSTRAINTS", "FAMILIES", "Constraint", "ConstraintError", "IFEvalEnv", "IFEvalFile", "check", "compatible",
    "compose", "conflicts", "get", "group_length_penalty", "verdicts",
]
