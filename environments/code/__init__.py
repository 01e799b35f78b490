"""Code execution: programming problems judged in a real sandbox, LiveCodeBench style.

Module map, in reading order:
  sandbox/      bubblewrap + seccomp + rlimits, the language table, the machine-wide worker pool
  compare.py    the comparison rules (whitespace, float tolerance, order-insensitive outputs)
  extract.py    the program: the last fenced block of the language in the answer
  harness.py    the functional-test driver (runs inside the sandbox)
  judge.py      tests, verdicts, the Score, feedback, and the public `run_tests`
  prompt.py     a task's prompt
  problems.py   the built-in problem set (problems.toml)
  files.py      tasks from LiveCodeBench, APPS and Lachesis files
  env.py        the environments `code` and `code_feedback`
"""

from .env import CodeEnv, CodeFeedbackEnv
from .files import load_tasks
from .judge import CodeSpec, run_tests
from .problems import Problem, builtin_problems
from .sandbox import Limits, Sandbox, SandboxUnavailable, get_sandbox

__all__ = ["CodeEnv", "CodeFeedbackEnv", "CodeSpec", "Limits", "Problem", "Sandbox", "SandboxUnavailable",
           "builtin_problems", "get_sandbox", "load_tasks", "run_tests"]
