"""Tool calling in the Hermes format, checked like BFCL; see env.ToolCallsEnv and checker.check."""

from .checker import check
from .env import ToolCallsEnv
from .hermes import Call, FormatError, parse_calls
from .tasks import KINDS, reference_actions

__all__ = ["KINDS", "Call", "FormatError", "ToolCallsEnv", "check", "parse_calls", "reference_actions"]
