"""DataForge tasks as an environment: open-ended instructions rewarded by a rubric judge model."""

from .env import DataForgeEnv

__all__ = ["DataForgeEnv"]
