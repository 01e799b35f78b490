"""Trainer data path: FFD packing invariants, assistant-only labels, document masks, config and CLI, and the
length-control samples (with a scripted policy standing in for a model)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from environments.types import Completion, Group, Message, Score, ToolCall, Trajectory
from lachesis.cli import main
from rollout.embedded import prepare_default_model
from rollout.shards import ShardWriter, trajectory_row
from trainer.config import TrainConfig
from trainer.data import encode_chat, fit, read_samples
from trainer.length_control import CLOSE, OPEN, build_samples, read_prompts
from trainer.masks import dense_mask, document_causal
from trainer.packing import IGNORE, collate, efficiency, pack


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(prepare_default_model())


def write_run(path, chats: list[list[Message]]) -> None:
    """A rollout run directory holding these chats as accepted trajectories (the rollout's own writer)."""
    results = []
    for i, chat in enumerate(chats):
        group = Group(group_id=f"g{i}", env="arithmetic", task_id=f"t{i}",
                      trajectories=[Trajectory(messages=chat, reward=1.0, score=Score(reward=1.0, accepted=True))])
        results.append({"key": f"arithmetic/train/{i}", "accepted": [trajectory_row(group, 0, f"k{i}", 0.0, {})]})
    ShardWriter(path).write(results)


def arithmetic_chats(n: int) -> list[list[Message]]:
    return [[Message(role="user", content=f"What is {a} plus {b}?"),
             Message(role="assistant", content=f"{a} plus {b} is \\boxed{{{a + b}}}.")]
            for a, b in ((i * 7 % 50, i * 13 % 40) for i in range(n))]


# -- packing ---------------------------------------------------------------------------------------------

def reference_ffd(lengths: list[int], seq_len: int) -> list[list[int]]:
    """First-Fit-Decreasing, one sample at a time (longest first, ties in input order)."""
    rows, free = [], []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for r, room in enumerate(free):
            if room >= lengths[i]:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(seq_len - lengths[i])
    return rows


@st.composite
def length_mixes(draw):
    seq_len = draw(st.integers(1, 300))
    # many short samples and a few long ones, with repeats (equal lengths take the grouped path)
    lengths = draw(st.lists(st.one_of(st.integers(1, max(1, seq_len // 8)), st.integers(1, seq_len),
                                      st.sampled_from([1, seq_len, max(1, seq_len // 2)])), max_size=120))
    return lengths, seq_len


@settings(max_examples=300, deadline=None)
@given(length_mixes())
def test_pack_is_first_fit_decreasing(mix):
    lengths, seq_len = mix
    rows = pack(lengths, seq_len)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))  # every sample exactly once
    assert all(sum(lengths[i] for i in row) <= seq_len for row in rows)  # capacity
    assert rows == reference_ffd(lengths, seq_len)  # exactly FFD's plan


def test_pack_rejects_too_long_samples_by_index():
    with pytest.raises(ValueError, match=r"sample 2 has 9 tokens, more than seq_len=8"):
        pack([3, 8, 9, 1], 8)
    with pytest.raises(ValueError, match="sample 1 has 0 tokens"):
        pack([3, 0], 8)
    assert pack([], 8) == []


def test_pack_efficiency_on_a_realistic_mix():
    rng = np.random.default_rng(0)
    short = rng.lognormal(6.0, 0.8, 20_000).clip(16, 4096).astype(int)
    long = rng.integers(4096, 16_385, 400)
    lengths = np.concatenate([short, long]).tolist()
    rows = pack(lengths, 16_384)
    assert efficiency(lengths, rows, 16_384) > 0.999


def test_collate_resets_positions_and_shifts_labels_inside_documents():
    a = (np.array([10, 11, 12]), np.array([IGNORE, 11, 12]))
    b = (np.array([20, 21]), np.array([20, 21]))
    batch = collate([[a, b]], seq_len=7, pad_id=0)
    assert batch.input_ids.tolist() == [[10, 11, 12, 20, 21, 0, 0]]
    assert batch.positions.tolist() == [[0, 1, 2, 0, 1, 0, 1]]
    assert batch.document_ids.tolist() == [[0, 0, 0, 1, 1, 2, 2]]
    # position i predicts token i + 1 of its own document; a document's last token predicts nothing
    assert batch.labels.tolist() == [[11, 12, IGNORE, 21, IGNORE, IGNORE, IGNORE]]
    assert batch.useful_tokens == 5 and batch.targets == 3
    assert batch.attention_pairs() == 6 + 3 + 3
    with pytest.raises(ValueError, match="more than seq_len=4"):
        collate([[a, b]], seq_len=4, pad_id=0)


# -- labels ----------------------------------------------------------------------------------------------

def trained_text(tokenizer, sample) -> str:
    return tokenizer.decode([t for t, lab in zip(sample.input_ids, sample.labels) if lab != IGNORE])


def test_labels_cover_assistant_turns_and_their_end_token_only(tokenizer):
    chat = [Message(role="system", content="Be brief."), Message(role="user", content="2+2?"),
            Message(role="assistant", content="4", reasoning="two and two"), Message(role="user", content="3+3?"),
            Message(role="assistant", content="6")]
    sample = encode_chat(tokenizer, chat)
    assert trained_text(tokenizer, sample) == "<think>\ntwo and two\n</think>\n\n4<|im_end|>6<|im_end|>"
    assert (sample.labels[sample.labels != IGNORE] == sample.input_ids[sample.labels != IGNORE]).all()
    text = tokenizer.decode(sample.input_ids)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")  # the template's rendering, untouched


def test_tool_calls_are_written_in_hermes_format_when_the_template_ignores_them(tokenizer):
    chat = [Message(role="user", content="weather?"),
            Message(role="assistant", content="", tool_calls=[ToolCall(name="weather", arguments={"city": "Oslo"})])]
    assert trained_text(tokenizer, encode_chat(tokenizer, chat)) == (
        '<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>')


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=40).filter(
    lambda s: s.strip() == s and "<|" not in s)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=3))
def test_trained_tokens_decode_to_the_assistant_turns(tokenizer, turns):
    chat = [m for user, answer in turns for m in (Message(role="user", content=user),
                                                  Message(role="assistant", content=answer))]
    sample = encode_chat(tokenizer, chat)
    as_tokenized = [tokenizer.decode(tokenizer(answer, add_special_tokens=False)["input_ids"]) for _, answer in turns]
    assert trained_text(tokenizer, sample) == "".join(f"{answer}<|im_end|>" for answer in as_tokenized)


def test_overlong_rule(tokenizer):
    sample = encode_chat(tokenizer, arithmetic_chats(1)[0])
    assert fit(sample, len(sample), "drop") is sample
    assert fit(sample, len(sample) - 1, "drop") is None
    cut = fit(sample, len(sample) - 3, "truncate")
    assert len(cut) == len(sample) - 3 and (cut.labels == sample.labels[:-3]).all()
    assert fit(sample, 10, "truncate") is None  # only the prompt survives: nothing left to train


def test_read_samples_from_a_rollout_run(tmp_path, tokenizer):
    chats = arithmetic_chats(5) + [[Message(role="user", content="x " * 400), Message(role="assistant", content="y")]]
    write_run(tmp_path / "run", chats)
    samples, stats = read_samples([tmp_path / "run"], tokenizer, seq_len=128)
    assert (stats.rows, stats.kept, stats.dropped_overlong) == (6, 5, 1)
    assert stats.trained_tokens == sum(s.trained for s in samples) > 0
    with pytest.raises(ValueError, match="no accepted-\\*.parquet"):
        read_samples([tmp_path], tokenizer, seq_len=128)


# -- masks -----------------------------------------------------------------------------------------------

def test_dense_mask_is_the_flex_mask_mod():
    from torch.nn.attention.flex_attention import create_mask

    docs = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 1, 1, 2, 3]])
    expected = create_mask(document_causal(docs), 2, None, 8, 8, device="cpu")
    assert torch.equal(dense_mask(docs), expected)
    # no token ever sees another document, and each sees itself
    mask = dense_mask(docs)[:, 0]
    assert not (mask & (docs[:, :, None] != docs[:, None, :])).any()
    assert mask.diagonal(dim1=1, dim2=2).all()


# -- config and CLI --------------------------------------------------------------------------------------

def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('out_dir = "x"\nsteps = 0\n[model]\nshape = "tiny"\n[data]\npaths = []\n')
    with pytest.raises(ValueError) as exc:
        TrainConfig.load(bad)
    message = str(exc.value)
    assert "steps" in message and "data.paths" in message and "model: Value error, model.tokenizer is required" in message
    assert main(["train", str(bad)]) == 2


def test_dry_run_prints_the_packing_plan(tmp_path, capsys):
    write_run(tmp_path / "run", arithmetic_chats(30))
    config = tmp_path / "sft.toml"
    config.write_text(f'out_dir = "{tmp_path / "out"}"\nsteps = 10\ngrad_accum = 2\n'
                      f'[model]\ncheckpoint = "{prepare_default_model()}"\n'
                      f'[data]\npaths = ["{tmp_path / "run"}"]\nseq_len = 256\n')
    assert main(["train", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "30 samples kept" in out and "packing efficiency" in out and "steps per epoch" in out
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


# -- length control --------------------------------------------------------------------------------------

class ScriptedPolicy:
    """Stands in for a model: traces that overrun or not, and answers that finish or not."""

    name, version = "scripted", 0

    def __init__(self, answers: list[Completion]):
        self.answers, self.calls = answers, []

    async def generate(self, chat, tools, sampling, n):
        self.calls.append((chat, sampling))
        last = chat[-1]
        assert last.role == "assistant"  # always a continuation of the assistant's turn
        if last.content == OPEN:
            return [Completion(text="Let me count: one, two, three, four", finish_reason="length"),
                    Completion(text="Short.\n</think>\nDone", finish_reason="stop")][:n]
        return [self.answers.pop(0)]

    async def close(self):
        pass


def test_length_control_samples_train_only_the_inserted_close_and_the_final_eos(tokenizer):
    prompts = [[Message(role="user", content="Count.")], [Message(role="user", content="Count again.")]]
    policy = ScriptedPolicy([Completion(text="4", finish_reason="stop"), Completion(text="4 and", finish_reason="length")])
    rows, stats = asyncio.run(build_samples(prompts, policy, tokenizer, budget=12, answer_tokens=8, n=2, concurrency=1))
    assert (stats.traces, stats.overran, stats.within_budget, stats.unfinished_answers, stats.samples) == (4, 2, 2, 1, 1)
    # the policy was asked to continue the cut reasoning, closed by the inserted </think>
    continued = [chat for chat, _ in policy.calls if chat[-1].content != OPEN][0]
    assert continued[-1].content == f"{OPEN}Let me count: one, two, three, four\n{CLOSE}\n"
    assert [s.max_tokens for _, s in policy.calls] == [12, 8, 12, 8]
    row = rows[0]
    ids, labels = np.array(row["input_ids"]), np.array(row["labels"])
    trained = [tokenizer.decode([t]) for t in ids[labels != IGNORE]]
    assert "".join(trained) == "</think><|im_end|>" and trained[-1] == "<|im_end|>"
    assert tokenizer.decode(ids).endswith("four\n</think>\n4<|im_end|>\n")
    assert row["messages"][-1]["role"] == "assistant"


def test_length_control_rows_train_like_any_data(tmp_path, tokenizer):
    import pyarrow as pa
    import pyarrow.parquet as pq

    policy = ScriptedPolicy([Completion(text="4", finish_reason="stop")])
    rows, _ = asyncio.run(build_samples([[Message(role="user", content="Count.")]], policy, tokenizer, budget=12,
                                        answer_tokens=8))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "lc.parquet")
    [sample], stats = read_samples([tmp_path / "lc.parquet"], tokenizer, seq_len=256)
    assert sample.trained == 4 and stats.kept == 1  # "</", "think", ">" and the end-of-turn token
    assert read_prompts([tmp_path / "lc.parquet"]) == [[Message(role="user", content="Count.")]]


def test_length_control_config_and_cli_errors(tmp_path):
    config = tmp_path / "lc.toml"
    config.write_text(f'prompts = ["{tmp_path}"]\nout = "{tmp_path / "lc.parquet"}"\nbudget = 0\n')
    assert main(["length-control", str(config)]) == 2
    config.write_text(f'prompts = ["{tmp_path}"]\nout = "x.parquet"\nbudget = 8\npolicy = {{kind = "openai", '
                      f'urls = ["http://127.0.0.1:9"], model = "m"}}\n')
    assert main(["length-control", str(config)]) == 2  # no tokenizer for a remote policy
