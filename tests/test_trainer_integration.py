"""The trainer with the real embedded model (SmolLM2-135M-Instruct): the main job's fine-tuning step writes a
checkpoint the policy server's engine loads and samples from, and the length-control command builds its
dataset through the real embedded policy server."""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow.parquet as pq
import pytest

from environments.types import Group, Message, Score, Trajectory
from rollout.embedded import prepare_default_model
from rollout.shards import ShardWriter, trajectory_row
from trainer.packing import IGNORE

pytestmark = pytest.mark.slow


def write_run(path, n: int):
    results = []
    for i in range(n):
        chat = [Message(role="user", content=f"What is {i} plus {i}? Think first."),
                Message(role="assistant", content=f"\\boxed{{{2 * i}}}", reasoning=f"{i} and {i} make {2 * i}.")]
        group = Group(group_id=f"g{i}", env="arithmetic", task_id=f"t{i}",
                      trajectories=[Trajectory(messages=chat, reward=1.0, score=Score(reward=1.0, accepted=True))])
        results.append({"key": f"k{i}", "accepted": [trajectory_row(group, 0, f"k{i}", 0.0, {})]})
    ShardWriter(path).write(results)
    return path


def test_finetune_writes_a_checkpoint_the_policy_engine_serves(tmp_path):
    from rollout.embedded.engine import Engine
    from rollout.embedded.sampling import SamplingParams
    from trainer.train import finetune

    run = write_run(tmp_path / "rollout", 4)
    hf = finetune(run, prepare_default_model(), tmp_path / "sft", steps=1, seq_len=256, echo=False)
    engine = Engine.from_pretrained(hf)  # what `lachesis policy serve --model DIR` loads
    try:
        prompt = engine.tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 plus 2?"}],
                                                      add_generation_prompt=True, tokenize=False)
        ids = engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]

        async def sample():
            return await engine.generate(ids, SamplingParams(temperature=0.0, max_new_tokens=8))

        [out] = asyncio.run(sample())
        assert out.token_ids and out.finish_reason in ("stop", "length")
    finally:
        engine.close()


def test_length_control_through_the_embedded_policy_server(tmp_path):
    from trainer.length_control import LengthControlConfig, run_length_control
    from trainer.train import load_tokenizer

    run = write_run(tmp_path / "rollout", 3)
    config = LengthControlConfig(prompts=[run], out=tmp_path / "lc.parquet", budget=8, answer_tokens=40, max_prompts=2,
                                 temperature=0.0)  # greedy: the same traces and answers every run
    stats = asyncio.run(run_length_control(config))
    assert stats.prompts == 2 and stats.traces == 2
    assert stats.overran + stats.within_budget == 2
    assert stats.samples >= 1  # an 8-token budget is overrun, and SmolLM2 ends its short answers
    rows = pq.read_table(config.out).to_pylist()
    assert len(rows) == stats.samples
    tokenizer = load_tokenizer(prepare_default_model())
    for row in rows:
        ids, labels = np.array(row["input_ids"]), np.array(row["labels"])
        assert "".join(tokenizer.decode([t]) for t in ids[labels != IGNORE]) == "</think><|im_end|>"
