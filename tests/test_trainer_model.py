"""Trainer model path on the CPU: packed rows compute exactly what each sample alone computes (SDPA with the
boolean mask, and Flex's forward), Hugging Face weights in and out, training lowers the loss, a resumed run
equals an uninterrupted one, and several ranks (FSDP2 over gloo) equal one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from environments.types import Group, Message, Score, Trajectory
from rollout.embedded import prepare_default_model
from rollout.shards import ShardWriter, trajectory_row
from trainer.config import TrainConfig
from trainer.masks import attention_mask
from trainer.model import ModelSpec, build_model, export_hf, load_hf_weights, materialize
from trainer.packing import collate
from trainer.train import load_tokenizer, train

SMOL = prepare_default_model()


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(SMOL)


def tiny(tokenizer, attention: str = "sdpa", seed: int = 0, seq_len: int = 256):
    spec = ModelSpec.from_shape("tiny", seq_len, len(tokenizer))
    model = build_model(spec, attention)
    torch.manual_seed(seed)
    materialize(model, torch.device("cpu"), spec.tied, init=True)
    return spec, model.eval()


def write_run(path: Path, n: int) -> Path:
    results = []
    for i in range(n):
        a, b = i * 7 % 50, i * 13 % 40
        chat = [Message(role="user", content=f"What is {a} plus {b}?"),
                Message(role="assistant", content=f"{a} plus {b} is \\boxed{{{a + b}}}.")]
        group = Group(group_id=f"g{i}", env="arithmetic", task_id=f"t{i}",
                      trajectories=[Trajectory(messages=chat, reward=1.0, score=Score(reward=1.0, accepted=True))])
        results.append({"key": f"k{i}", "accepted": [trajectory_row(group, 0, f"k{i}", 0.0, {})]})
    ShardWriter(path).write(results)
    return path


def config(tmp_path: Path, run: Path, tokenizer_dir: Path, **fields) -> TrainConfig:
    base = dict(out_dir=tmp_path / "out", steps=6, rows_per_micro_batch=2, log_every=1, tensorboard=False,
                checkpoint_every=0, model={"shape": "tiny", "tokenizer": tokenizer_dir},
                data={"paths": [run], "seq_len": 128}, optim={"lr": 3e-3, "warmup_steps": 1, "min_lr_factor": 0.1})
    return TrainConfig.model_validate({**base, **fields})


def documents(tokenizer, n: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [(ids, ids) for ids in (rng.integers(0, len(tokenizer), size=s) for s in (37, 80, 21)[:n])]


def per_document_logits(model, docs, seq_len):
    """Logits of each document run alone (one row, one document)."""
    out = []
    for ids, lab in docs:
        batch = collate([[(ids, lab)]], len(ids), pad_id=0)
        with torch.no_grad():
            out.append(model(batch.input_ids, attention_masks=attention_mask(batch.document_ids, "sdpa"),
                             positions=batch.positions)[0])
    return out


def packed_logits(model, docs, seq_len, kind):
    batch = collate([docs], seq_len, pad_id=0)
    with torch.no_grad():
        logits = model(batch.input_ids, attention_masks=attention_mask(batch.document_ids, kind), positions=batch.positions)[0]
    starts = np.cumsum([0] + [len(ids) for ids, _ in docs])
    return [logits[a:b] for a, b in zip(starts[:-1], starts[1:])]


def test_packed_rows_compute_what_each_sample_alone_computes(tokenizer):
    _, model = tiny(tokenizer)
    docs = documents(tokenizer)
    for alone, packed in zip(per_document_logits(model, docs, 256), packed_logits(model, docs, 256, "sdpa")):
        torch.testing.assert_close(packed, alone, atol=2e-5, rtol=1e-5)


def test_flex_forward_on_cpu_matches_the_sdpa_mask(tokenizer, monkeypatch):
    from torch.nn.attention.flex_attention import flex_attention
    from torchtitan.models.attention import FlexAttentionWrapper

    # torchtitan compiles Flex for the GPU; on the CPU its eager forward is the reference implementation
    monkeypatch.setattr(FlexAttentionWrapper, "_compiled_flex_attn", flex_attention)
    spec, sdpa = tiny(tokenizer)
    flex = build_model(spec, "flex")
    materialize(flex, torch.device("cpu"), spec.tied, init=False)
    flex.load_state_dict(sdpa.state_dict())
    docs = documents(tokenizer)
    for a, b in zip(packed_logits(flex.eval(), docs, 256, "flex"), per_document_logits(sdpa, docs, 256)):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("tied", [True, False])
def test_hf_export_round_trip(tmp_path, tokenizer, tied):
    from transformers import AutoModelForCausalLM

    spec, model = tiny(tokenizer)
    if not tied:  # the same shape with its own output layer
        spec = ModelSpec(spec.args, False, {**spec.hf_config, "tie_word_embeddings": False})
        untied = build_model(spec, "sdpa")
        materialize(untied, torch.device("cpu"), False, init=True)
        model = untied.eval()
    export_hf(model, spec, tmp_path / "hf", tokenizer)
    assert ("lm_head.weight" in load_file(tmp_path / "hf" / "model.safetensors")) != tied
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    ids = torch.tensor([tokenizer.encode("The policy server loads this checkpoint.")])
    with torch.no_grad():
        ours = model(ids, attention_masks=attention_mask(torch.zeros_like(ids), "sdpa"),
                     positions=torch.arange(ids.shape[1])[None])
        torch.testing.assert_close(hf(ids).logits, ours, atol=1e-4, rtol=1e-4)
    assert load_tokenizer(tmp_path / "hf").chat_template == tokenizer.chat_template
    # and back in: the same weights
    reloaded = build_model(spec, "sdpa")
    materialize(reloaded, torch.device("cpu"), spec.tied, init=False)
    load_hf_weights(reloaded, spec, tmp_path / "hf")
    for (name, a), b in zip(model.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_smollm2_weights_load_through_the_adapter(tokenizer):
    from transformers import AutoModelForCausalLM

    spec = ModelSpec.from_checkpoint(SMOL, 64)
    model = build_model(spec, "sdpa")
    materialize(model, torch.device("cpu"), spec.tied, init=False)
    load_hf_weights(model, spec, SMOL)
    ids = torch.tensor([tokenizer.encode("2 + 2 = 4, and 3 + 3 = 6")])
    with torch.no_grad():
        ours = model(ids, attention_masks=attention_mask(torch.zeros_like(ids), "sdpa"),
                     positions=torch.arange(ids.shape[1])[None])
        theirs = AutoModelForCausalLM.from_pretrained(SMOL, dtype=torch.float32)(ids).logits
    torch.testing.assert_close(ours, theirs, atol=2e-3, rtol=1e-3)


def test_unsupported_checkpoints_are_refused_with_the_field(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(ValueError, match="model_type 'qwen2' is not supported"):
        ModelSpec.from_checkpoint(tmp_path, 64)
    config = json.loads((SMOL / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "attention_bias": True}))
    with pytest.raises(ValueError, match="attention_bias=True"):
        ModelSpec.from_checkpoint(tmp_path, 64)


# -- Qwen 3 ---------------------------------------------------------------------------------------------
def qwen3_checkpoint(path: Path, tokenizer, tied: bool) -> Path:
    """A tiny random Qwen 3 written by transformers (head_dim 32 with hidden 64 and 4 heads: not dim / heads)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(3)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=512,
                         rope_theta=10000.0, tie_word_embeddings=tied, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    Qwen3ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("tied", [True, False])
def test_qwen3_loads_computes_as_transformers_packs_and_exports(tmp_path, tokenizer, tied):
    from transformers import AutoModelForCausalLM

    checkpoint = qwen3_checkpoint(tmp_path / "qwen3", tokenizer, tied)
    spec = ModelSpec.from_checkpoint(checkpoint, 256)
    assert spec.family == "qwen3" and spec.tied == tied and spec.head_dim == 32
    model = build_model(spec, "sdpa")
    materialize(model, torch.device("cpu"), spec.tied, init=False)
    load_hf_weights(model, spec, checkpoint)
    model.eval()
    ids = torch.tensor([tokenizer.encode("Qwen 3 normalises queries and keys per head.")])
    hf = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    with torch.no_grad():
        ours = model(ids, attention_masks=attention_mask(torch.zeros_like(ids), "sdpa"),
                     positions=torch.arange(ids.shape[1])[None])
        torch.testing.assert_close(ours, hf(ids).logits, atol=1e-4, rtol=1e-4)
    docs = documents(tokenizer)
    for alone, packed in zip(per_document_logits(model, docs, 256), packed_logits(model, docs, 256, "sdpa")):
        torch.testing.assert_close(packed, alone, atol=2e-5, rtol=1e-5)

    export_hf(model, spec, tmp_path / "out", tokenizer)
    assert ("lm_head.weight" in load_file(tmp_path / "out" / "model.safetensors")) != tied
    assert json.loads((tmp_path / "out" / "config.json").read_text())["model_type"] == "qwen3"
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "out", dtype=torch.float32).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, ours, atol=1e-4, rtol=1e-4)


def test_qwen3_flex_forward_on_cpu_matches_the_sdpa_mask(tmp_path, tokenizer, monkeypatch):
    from torch.nn.attention.flex_attention import flex_attention
    from torchtitan.models.attention import FlexAttentionWrapper

    monkeypatch.setattr(FlexAttentionWrapper, "_compiled_flex_attn", flex_attention)  # eager: the CPU reference
    checkpoint = qwen3_checkpoint(tmp_path / "qwen3", tokenizer, tied=True)
    spec = ModelSpec.from_checkpoint(checkpoint, 256)
    sdpa, flex = build_model(spec, "sdpa"), build_model(spec, "flex")
    for model in (sdpa, flex):
        materialize(model, torch.device("cpu"), spec.tied, init=False)
        load_hf_weights(model, spec, checkpoint)
    docs = documents(tokenizer)
    for a, b in zip(packed_logits(flex.eval(), docs, 256, "flex"), per_document_logits(sdpa.eval(), docs, 256)):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)


def test_qwen3_trains_and_refuses_what_it_cannot_express(tmp_path, tokenizer):
    checkpoint = qwen3_checkpoint(tmp_path / "qwen3", tokenizer, tied=True)
    run = write_run(tmp_path / "run", 24)
    result = train(config(tmp_path, run, checkpoint, steps=4, model={"checkpoint": checkpoint}), echo=False)
    assert result.losses[-1] < result.losses[0], result.losses
    assert json.loads((result.hf_dir / "config.json").read_text())["model_type"] == "qwen3"
    base = json.loads((checkpoint / "config.json").read_text())
    for change, field in (({"use_sliding_window": True}, "use_sliding_window=True"),
                          ({"attention_bias": True}, "attention_bias=True"),
                          ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e6}},
                           "rope type 'yarn'"),
                          ({"rope_parameters": None, "rope_scaling": {"type": "dynamic", "factor": 2.0}},
                           "rope type 'dynamic'")):
        (tmp_path / "bad").mkdir(exist_ok=True)
        (tmp_path / "bad" / "config.json").write_text(json.dumps({**base, **change}))
        with pytest.raises(ValueError, match=field):
            ModelSpec.from_checkpoint(tmp_path / "bad", 64)


def test_training_lowers_the_loss_and_exports(tmp_path, tokenizer):
    run = write_run(tmp_path / "run", 24)
    result = train(config(tmp_path, run, SMOL, tensorboard=True), echo=False)
    assert result.steps == 6 and len(result.losses) == 6
    assert result.losses[-1] < 0.8 * result.losses[0], result.losses
    assert result.efficiency > 0.5
    assert (result.hf_dir / "model.safetensors").is_file() and (result.hf_dir / "tokenizer.json").is_file()
    assert list((tmp_path / "out" / "tb").glob("**/events.out.tfevents.*"))


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, tokenizer):
    run = write_run(tmp_path / "run", 24)
    constant_lr = {"lr": 3e-3, "warmup_steps": 0, "min_lr_factor": 1.0}  # the schedule must not depend on `steps`
    whole = train(config(tmp_path / "a", run, SMOL, steps=4, optim=constant_lr), echo=False)
    first = train(config(tmp_path / "b", run, SMOL, steps=2, checkpoint_every=1, optim=constant_lr), echo=False)
    assert sorted(p.name for p in (tmp_path / "b" / "out" / "checkpoint").iterdir()) == ["step-1", "step-2"]
    rest = train(config(tmp_path / "b", run, SMOL, steps=4, checkpoint_every=1, optim=constant_lr), echo=False)
    assert rest.steps == 4 and len(rest.losses) == 2  # steps 3 and 4, on the rows that follow step 2's
    assert first.losses + rest.losses == pytest.approx(whole.losses, rel=1e-5)
    a, b = (load_file(tmp_path / d / "out" / "hf" / "model.safetensors") for d in ("a", "b"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5)
    # keep_checkpoints=2 purged step-1; torchtitan writes the final step's checkpoint after purging
    assert sorted(p.name for p in (tmp_path / "b" / "out" / "checkpoint").iterdir()) == ["step-2", "step-3", "step-4"]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llama3", "qwen3"])
def test_two_ranks_with_fsdp_equal_one(tmp_path, tokenizer, family):
    """torchrun with 2 CPU processes (gloo): FSDP2 over a tied model, each rank one row per micro-batch, gives
    the weights one process gets from two rows per micro-batch."""
    run = write_run(tmp_path / "run", 24)
    if family == "qwen3":
        qwen3_checkpoint(tmp_path / "init", tokenizer, tied=True)
    else:
        spec, model = tiny(tokenizer)
        export_hf(model, spec, tmp_path / "init", tokenizer)  # both start from these weights (loaded into the shards)
    start = {"checkpoint": tmp_path / "init"}
    single = train(config(tmp_path / "one", run, SMOL, steps=3, model=start), echo=False)
    cfg = config(tmp_path / "two", run, SMOL, steps=3, rows_per_micro_batch=1, model=start)
    path = tmp_path / "two.toml"
    path.write_text(_toml(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "lachesis", "train", str(path)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = [float(line.split("loss ")[1].split()[0]) for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert losses == pytest.approx(single.losses, rel=1e-4)
    a, b = (load_file(tmp_path / d / "out" / "hf" / "model.safetensors") for d in ("one", "two"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4)


def _toml(cfg: TrainConfig) -> str:
    def value(v):
        return json.dumps(str(v) if isinstance(v, Path) else ([str(x) for x in v] if isinstance(v, list) else v))

    data = cfg.model_dump(mode="json", exclude_none=True)
    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section in ("model", "data", "optim"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in data[section].items()]
    return "\n".join(lines) + "\n"
