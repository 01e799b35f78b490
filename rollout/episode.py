"""Sampling one task: n completions from the policy, scored by the environment server, as one Group.

Single-turn environments use one generate call with `n` and the stateless batch verify; multi-turn ones play
n episodes through the server's reset/step sessions. Hybrid reasoning: a task with `reasoning` gets a system
prompt asking for a <think> block, and the reasoning is split into `Message.reasoning` on the trajectory.
"""

from __future__ import annotations

import time

from env_server.client import EnvServerClient
from environments.reasoning import parse_reasoning
from environments.types import Completion, Group, Message, Score, Task, Trajectory

from .policies import Policy, Sampling

REASONING_PROMPT = (
    "Think through the problem step by step inside <think> and </think> tags, then give your final answer "
    "after the closing </think> tag.")


def prompt_chat(task: Task) -> list[Message]:
    """The chat sent to the policy: the task's prompt, with the reasoning instruction when the task asks."""
    if not task.reasoning:
        return list(task.prompt)
    first = task.prompt[0]
    if first.role == "system":
        return [first.model_copy(update={"content": f"{first.content}\n\n{REASONING_PROMPT}"}), *task.prompt[1:]]
    return [Message(role="system", content=REASONING_PROMPT), *task.prompt]


def assistant_message(task: Task, completion: Completion) -> Message:
    parsed = parse_reasoning(completion.text, required=task.reasoning)
    if task.reasoning and parsed.error is None:
        return Message(role="assistant", content=parsed.answer, reasoning=parsed.reasoning, tool_calls=completion.tool_calls)
    return Message(role="assistant", content=completion.text, tool_calls=completion.tool_calls)


def _trajectory(chat: list[Message], task: Task, completion: Completion, score: Score, seconds: float) -> Trajectory:
    return Trajectory(
        messages=[*chat, assistant_message(task, completion)],
        tokens=completion.token_ids, logprobs=completion.logprobs,
        masks=None if completion.token_ids is None else [1] * len(completion.token_ids),
        reward=score.reward, score=score, finish_reason=completion.finish_reason, usage=completion.usage,
        overlong=completion.finish_reason == "length", timings={"generate_s": seconds})


async def sample_single_turn(task: Task, policy: Policy, env: EnvServerClient, sampling: Sampling, n: int) -> list[Trajectory]:
    chat = prompt_chat(task)
    start = time.perf_counter()
    completions = await policy.generate(chat, task.tools, sampling, n)
    seconds = time.perf_counter() - start
    scores = await env.verify(task.env, [(task, c) for c in completions])
    return [_trajectory(chat, task, c, Score.model_validate(s), seconds) for c, s in zip(completions, scores)]


async def play_episode(task: Task, policy: Policy, env: EnvServerClient, sampling: Sampling, max_turns: int) -> Trajectory:
    """One multi-turn episode through a server session; the reward is the sum over steps."""
    session = await env.reset(task.env, options={"task": task.model_dump(mode="json")})
    messages = [Message.model_validate(m) for m in session["observation"]["messages"]]
    chat = prompt_chat(task)
    reward, info, finish, seconds = 0.0, {}, None, 0.0
    try:
        for _ in range(max_turns):
            start = time.perf_counter()
            [completion] = await policy.generate([*chat, *messages[len(task.prompt):]], task.tools, sampling, 1)
            seconds += time.perf_counter() - start
            finish = completion.finish_reason
            result = await env.step(session["session_id"], assistant_message(task, completion))
            messages = [Message.model_validate(m) for m in result["observation"]["messages"]]
            reward += result["reward"]
            info = result["info"]
            if result["terminated"] or result["truncated"]:
                break
    finally:
        await env.close_session(session["session_id"])
    score = Score.model_validate(info["score"]) if "score" in info else Score(reward=reward, accepted=reward > 0)
    return Trajectory(messages=[*chat, *messages[len(task.prompt):]], reward=reward, score=score, finish_reason=finish,
                      overlong=finish == "length", timings={"generate_s": seconds})


def make_group(group_id: str, task: Task, env_version: int, policy: Policy, trajectories: list[Trajectory]) -> Group:
    return Group(group_id=group_id, env=task.env, env_version=env_version, task_id=task.task_id, policy=policy.name,
                 policy_version=policy.version, trajectories=trajectories)
