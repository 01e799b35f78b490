"""Running untrusted programs: bubblewrap namespaces, seccomp, rlimits and a machine-wide worker pool."""

from .languages import LANGUAGES, Language, language
from .sandbox import COMPILE_LIMITS, Execution, Limits, Sandbox, SandboxFailed, SandboxUnavailable, get_sandbox

__all__ = ["COMPILE_LIMITS", "Execution", "LANGUAGES", "Language", "Limits", "Sandbox", "SandboxFailed",
           "SandboxUnavailable", "get_sandbox", "language"]
