"""Environments: the protocol every part of Lachesis speaks, and the built-in environments."""

from .env import EpisodeOver, Env, Observation, ResetOptions
from .reasoning import Parsed, parse_reasoning
from .registry import EnvSpec, discover, make, register, spec, specs
from .tasks import DatasetTasks, ProceduralTasks, TaskSource, split_of
from .types import Completion, Group, Message, Score, Task, ToolCall, ToolSpec, Trajectory, Usage

register("arithmetic", "environments.arithmetic:ArithmeticEnv")
register("json_schema", "environments.schema:JSONSchemaEnv")
register("tool_calls", "environments.tool_calls:ToolCallsEnv")
register("answer_format", "environments.answer_format:AnswerFormatEnv")
register("ifeval", "environments.ifeval:IFEvalEnv")
register("code", "environments.code:CodeEnv")
register("code_feedback", "environments.code:CodeFeedbackEnv")
register("dataforge", "environments.dataforge:DataForgeEnv")
discover()  # third-party environments, so their gymnasium ids exist right after `import environments`

__all__ = [
    "Completion", "DatasetTasks", "Env", "EnvSpec", "EpisodeOver", "Group", "Message", "Observation",
    "Parsed", "ProceduralTasks", "ResetOptions", "Score", "Task", "TaskSource", "ToolCall", "ToolSpec",
    "Trajectory", "Usage", "make", "parse_reasoning", "register", "spec", "specs", "split_of",
]
