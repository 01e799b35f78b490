"""Policies: anything that samples completions for a chat (SGLang, OpenAI-compatible servers, yours)."""

from .base import Policy, Sampling, load_policy
from .endpoints import EngineError, EndpointPool, RequestError

__all__ = ["EndpointPool", "EngineError", "Policy", "RequestError", "Sampling", "load_policy"]
