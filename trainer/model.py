"""The model: torchtitan's Llama 3 or Qwen 3 (dense) Transformer, sized from a Hugging Face config or a named
shape, parallelized with torchtitan's functions, and loaded from / exported to Hugging Face safetensors
through torchtitan's state-dict adapters.

Packed rows reach the model as `model(tokens, attention_masks=mask, positions=positions)`: torchtitan's
models already take a Flex BlockMask and per-token positions. On the CPU their attention modules are
replaced by `DenseMaskAttention` / `DenseMaskQwen3Attention`, the same projections (and Qwen 3's q/k norms)
and rotary embedding followed by scaled-dot-product attention with an explicit boolean mask (Flex has no
CPU backward).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torchtitan.models.llama3 import Transformer, TransformerModelArgs
from torchtitan.models.llama3.model.args import RoPEScalingArgs
from torchtitan.models.llama3.model.model import Attention, apply_rotary_emb, precompute_freqs_cis
from torchtitan.models.llama3.model.state_dict_adapter import Llama3StateDictAdapter
from torchtitan.models.qwen3 import Qwen3Model, Qwen3ModelArgs, Qwen3StateDictAdapter
from torchtitan.models.qwen3.model.model import Attention as Qwen3Attention
from torchtitan.models.qwen3.model.model import apply_rotary_emb as qwen3_rotary

# Named shapes for random initialisation (benchmarks, tests): torchtitan arguments, vocab_size None for the
# tokenizer's, and whether the output layer shares the embedding's weight.
SHAPES: dict[str, tuple[dict[str, Any], bool]] = {
    "tiny": (dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, multiple_of=64, rope_theta=10000.0, vocab_size=None),
             True),  # tied, like SmolLM2
    # Llama-3.2-1B's dimensions with an untied output layer (1.5 B parameters), as torchtitan builds it
    "llama3-1b": (dict(dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn_dim_multiplier=1.5, multiple_of=256,
                       rope_theta=500000.0, vocab_size=128256), False),
}
NO_ROPE_SCALING = RoPEScalingArgs(scaling_factor=1.0)  # torchtitan's Llama 3.1 scaling with factor 1 is the identity


def _masked_attention(attention: nn.Module, x: torch.Tensor, mask: torch.Tensor, rotate: Any,
                      norms: tuple[nn.Module, nn.Module] | None = None, scale: float | None = None) -> torch.Tensor:
    """An attention module's projections (and per-head q/k norms), rotary embedding by `rotate(q, k)`, then
    scaled-dot-product attention with an explicit boolean mask [rows, 1, seq, seq] and the output projection."""
    rows, seq_len, _ = x.shape
    q, k, v = (w(x).view(rows, seq_len, -1, attention.head_dim) for w in (attention.wq, attention.wk, attention.wv))
    if norms is not None:
        q, k = norms[0](q), norms[1](k)
    q, k = rotate(q, k)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                                         scale=scale, enable_gqa=attention.enable_gqa)
    return attention.wo(out.transpose(1, 2).reshape(rows, seq_len, -1))


class DenseMaskAttention(Attention):
    """torchtitan's Llama 3 attention, taking an explicit boolean mask (the CPU path)."""

    def forward(self, x: torch.Tensor, freqs_cis: torch.Tensor, attention_masks: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        return _masked_attention(self, x, attention_masks,
                                 lambda q, k: apply_rotary_emb(q, k, freqs_cis=freqs_cis, positions=positions))


class DenseMaskQwen3Attention(Qwen3Attention):
    """torchtitan's Qwen 3 attention (q/k RMSNorm per head), taking an explicit boolean mask (the CPU path)."""

    def forward(self, x: torch.Tensor, rope_cache: torch.Tensor, attention_masks: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        norms = (self.q_norm, self.k_norm) if self.q_norm is not None else None
        return _masked_attention(self, x, attention_masks, lambda q, k: qwen3_rotary(q, k, rope_cache, positions),
                                 norms, self.scaling)


class ModelSpec:
    """What to build: the model family ("llama3" or "qwen3"), its torchtitan arguments, whether the output
    layer shares the embedding's weight, and the Hugging Face config.json that describes it (for export)."""

    def __init__(self, args: TransformerModelArgs | Qwen3ModelArgs, tied: bool, hf_config: dict[str, Any]):
        self.args, self.tied, self.hf_config = args, tied, hf_config
        self.family = "qwen3" if isinstance(args, Qwen3ModelArgs) else "llama3"

    @property
    def head_dim(self) -> int:
        return self.args.head_dim if self.family == "qwen3" else self.args.dim // self.args.n_heads

    @classmethod
    def from_checkpoint(cls, checkpoint: Path, seq_len: int) -> ModelSpec:
        path = Path(checkpoint) / "config.json"
        try:
            config = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"model.checkpoint: cannot read {path}: {exc}") from exc
        tied = bool(config.get("tie_word_embeddings", False))
        if config.get("model_type") == "qwen3":
            return cls(qwen3_args_from_hf_config(config, seq_len, tied), tied, config)
        return cls(args_from_hf_config(config, seq_len), tied, config)

    @classmethod
    def from_shape(cls, shape: str, seq_len: int, vocab_size: int) -> ModelSpec:
        if shape not in SHAPES:
            raise ValueError(f"model.shape {shape!r}: expected one of {sorted(SHAPES)}")
        fields, tied = SHAPES[shape]
        fields = {**fields, "vocab_size": fields["vocab_size"] or vocab_size}
        args = TransformerModelArgs(**fields, max_seq_len=seq_len, rope_scaling_args=NO_ROPE_SCALING)
        return cls(args, tied, hf_config_from_args(args, tied))


def args_from_hf_config(config: dict[str, Any], seq_len: int) -> TransformerModelArgs:
    """torchtitan Llama 3 arguments for a Hugging Face Llama config; anything torchtitan's model cannot
    express is refused with the name of the config field."""
    if config.get("model_type") != "llama":
        raise ValueError(f"model.checkpoint: model_type {config.get('model_type')!r} is not supported "
                         "('llama' or 'qwen3')")
    _refuse_unsupported(config, (("hidden_act", "silu"), ("attention_bias", False), ("mlp_bias", False)))
    dim, heads = config["hidden_size"], config["num_attention_heads"]
    if config.get("head_dim", dim // heads) * heads != dim:
        raise ValueError("model.checkpoint: config.json head_dim * num_attention_heads must equal hidden_size")
    kind, rope = _rope(config, 10000.0)
    if kind == "default":
        scaling = NO_ROPE_SCALING
    elif kind == "llama3":
        scaling = RoPEScalingArgs(scaling_factor=rope["factor"], low_freq_factor=rope["low_freq_factor"],
                                  high_freq_factor=rope["high_freq_factor"],
                                  original_max_position_embeddings=rope["original_max_position_embeddings"])
    else:
        raise ValueError(f"model.checkpoint: rope type {kind!r} is not supported ('default' or 'llama3')")
    # torchtitan sizes the feed-forward layer as a multiple of `multiple_of` above ffn_dim_multiplier * 8/3 dim:
    # with multiple_of = intermediate_size and a multiplier just reaching it, it is exactly intermediate_size.
    hidden = config["intermediate_size"]
    return TransformerModelArgs(
        dim=dim, n_layers=config["num_hidden_layers"], n_heads=heads,
        n_kv_heads=config.get("num_key_value_heads", heads), vocab_size=config["vocab_size"],
        multiple_of=hidden, ffn_dim_multiplier=hidden / int(8 * dim / 3), norm_eps=config.get("rms_norm_eps", 1e-5),
        rope_theta=float(rope.get("rope_theta", 10000.0)), rope_scaling_args=scaling, max_seq_len=seq_len)


def qwen3_args_from_hf_config(config: dict[str, Any], seq_len: int, tied: bool) -> Qwen3ModelArgs:
    """torchtitan Qwen 3 (dense) arguments for a Hugging Face Qwen3 config, refusing what it cannot express."""
    _refuse_unsupported(config, (("hidden_act", "silu"), ("attention_bias", False), ("use_sliding_window", False)))
    kind, rope = _rope(config, 1e6)
    if kind != "default":
        raise ValueError(f"model.checkpoint: rope type {kind!r} is not supported for qwen3 ('default')")
    dim, heads = config["hidden_size"], config["num_attention_heads"]
    return Qwen3ModelArgs(
        dim=dim, n_layers=config["num_hidden_layers"], n_heads=heads, n_kv_heads=config.get("num_key_value_heads", heads),
        vocab_size=config["vocab_size"], head_dim=config.get("head_dim") or dim // heads,
        hidden_dim=config["intermediate_size"], norm_eps=config.get("rms_norm_eps", 1e-6),
        rope_theta=float(rope.get("rope_theta", 1e6)), qk_norm=True, max_seq_len=seq_len, enable_weight_tying=tied)


def _rope(config: dict[str, Any], default_theta: float) -> tuple[str, dict[str, Any]]:
    """The RoPE type and parameters of a Hugging Face config, in the newer (`rope_parameters`) or the older
    (`rope_scaling` and `rope_theta`) layout."""
    rope = config.get("rope_parameters") or {**(config.get("rope_scaling") or {}),
                                             "rope_theta": config.get("rope_theta", default_theta)}
    return rope.get("rope_type", rope.get("type", "default")), rope


def _refuse_unsupported(config: dict[str, Any], expected: tuple[tuple[str, Any], ...]) -> None:
    for key, value in expected:
        if config.get(key, value) != value:
            raise ValueError(f"model.checkpoint: config.json {key}={config[key]!r} is not supported (needs {value!r})")


def hf_config_from_args(args: TransformerModelArgs, tied: bool) -> dict[str, Any]:
    """A Hugging Face LlamaConfig (as a dict) for a model built from torchtitan arguments."""
    hidden = args.multiple_of * math.ceil(int((args.ffn_dim_multiplier or 1.0) * int(8 * args.dim / 3)) / args.multiple_of)
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": args.dim,
        "num_hidden_layers": args.n_layers, "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.n_kv_heads or args.n_heads, "intermediate_size": hidden,
        "vocab_size": args.vocab_size, "rms_norm_eps": args.norm_eps, "hidden_act": "silu",
        "max_position_embeddings": args.max_seq_len, "tie_word_embeddings": tied,
        "rope_parameters": {"rope_theta": args.rope_theta, "rope_type": "default"},
        "attention_bias": False, "mlp_bias": False,
    }


def build_model(spec: ModelSpec, attention: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The model on the meta device (materialize() gives it storage), with "flex" or "sdpa" attention and
    parameters of `dtype`."""
    from torchtitan.tools.utils import set_default_dtype

    args = replace(spec.args, attn_type="flex" if attention == "flex" else "sdpa", attn_mask_type="block_causal")
    qwen3 = spec.family == "qwen3"
    with torch.device("meta"), set_default_dtype(dtype):
        model = Qwen3Model(args) if qwen3 else Transformer(args)
        if attention == "sdpa":
            for block in model.layers.values():
                block.attention = DenseMaskQwen3Attention(args) if qwen3 else DenseMaskAttention(args)
        if spec.tied:
            model.output.weight = model.tok_embeddings.weight
    return model


def parallelize(model: nn.Module, spec: ModelSpec, *, dp_mesh: DeviceMesh | None, tp_mesh: DeviceMesh | None,
                compile: bool, activation_checkpointing: str, param_dtype: torch.dtype) -> None:
    """torchtitan's parallelisms for the family, in its order: tensor parallel, activation checkpointing, per-block
    torch.compile, then FSDP2 over the data-parallel ranks (bf16 compute, fp32 gradient reduction)."""
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
    from torchtitan.config.job_config import ActivationCheckpoint, Compile
    from torchtitan.models.llama3.infra.parallelize import (
        _op_sac_save_list, apply_ac, apply_compile, apply_fsdp, apply_tp, disable_fsdp_gradient_division)

    if tp_mesh is not None:
        if spec.tied:
            raise ValueError("tensor_parallel > 1 needs an untied output layer (the embedding is split by rows, "
                             "the output layer by columns); this checkpoint ties them")
        if spec.family == "qwen3":
            from torchtitan.models.qwen3.infra.parallelize import apply_non_moe_tp

            apply_non_moe_tp(model, tp_mesh, loss_parallel=False, enable_float8_tensorwise_tp=False,
                             enable_async_tp=False, cp_enabled=False)
        else:
            apply_tp(model, tp_mesh, loss_parallel=False, enable_float8_tensorwise_tp=False)
    if activation_checkpointing != "none":
        apply_ac(model, ActivationCheckpoint(mode=activation_checkpointing), model_compile_enabled=compile,
                 op_sac_save_list=_op_sac_save_list)
    if compile:
        apply_compile(model, Compile(enable=True, components=["model"]))
    if dp_mesh is None:
        return
    if not spec.tied:
        apply_fsdp(model, dp_mesh, param_dtype=param_dtype, reduce_dtype=torch.float32, pp_enabled=False)
    else:
        # torchtitan shards the embedding and the output layer in groups of their own; FSDP2 needs a shared
        # weight in one group, so a tied model leaves both to the root group.
        mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
        for block in model.layers.values():
            fully_shard(block, mesh=dp_mesh, mp_policy=mp)
        fully_shard(model, mesh=dp_mesh, mp_policy=mp)
        disable_fsdp_gradient_division(model)  # the loss is already divided by the global count of trained tokens
    if dp_mesh.device_type == "cpu":  # gloo lacks NCCL's pre-multiplied sum: reduce with plain sums
        for module in model.modules():
            if isinstance(module, FSDPModule):
                module.set_force_sum_reduction_for_comms(True)


def materialize(model: nn.Module, device: torch.device, tied: bool, *, init: bool) -> None:
    """Allocate the (possibly sharded) parameters on `device`; with `init`, give them torchtitan's initial
    values (skip it when a checkpoint's weights come next: it takes seconds on a CPU)."""
    model.to_empty(device=device)
    if tied:  # to_empty gives each module a fresh parameter: tie them again
        model.output.weight = model.tok_embeddings.weight
    with torch.no_grad():
        if init:
            model.init_weights(buffer_device=device)
        elif isinstance(model, Qwen3Model):  # only the rotary table, a buffer no checkpoint holds
            model.rope_cache = model._precompute_rope_cache().to(device)
        else:
            args = model.model_args
            model.freqs_cis = precompute_freqs_cis(args.dim // args.n_heads, args.max_seq_len, args.rope_theta,
                                                   args.rope_scaling_args).to(device)


def hf_adapter(spec: ModelSpec) -> Llama3StateDictAdapter | Qwen3StateDictAdapter:
    """torchtitan's mapping between its state dict and Hugging Face's, for the spec's family."""
    return Qwen3StateDictAdapter(spec.args, None) if spec.family == "qwen3" else HFAdapter(spec)


class HFAdapter(Llama3StateDictAdapter):
    """torchtitan's Llama 3 <-> Hugging Face mapping, plus tied embeddings (no lm_head.weight in the file).
    (Its Qwen 3 adapter handles tied embeddings itself.)"""

    def __init__(self, spec: ModelSpec):
        super().__init__(spec.args, None)
        self.tied = spec.tied

    def to_hf(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        if self.tied:
            state_dict = {k: v for k, v in state_dict.items() if k != "output.weight"}
        return super().to_hf(state_dict)

    def from_hf(self, hf_state_dict: dict[str, Any]) -> dict[str, Any]:
        hf_state_dict = {k: v for k, v in hf_state_dict.items() if not k.endswith("rotary_emb.inv_freq")}
        state = super().from_hf(hf_state_dict)
        if self.tied:
            state["output.weight"] = state["tok_embeddings.weight"]
        return state


def load_hf_weights(model: nn.Module, spec: ModelSpec, checkpoint: Path) -> None:
    """Load a Hugging Face safetensors checkpoint into the (possibly FSDP-sharded) model; every weight must match."""
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, set_model_state_dict

    files = sorted(Path(checkpoint).glob("*.safetensors"))
    if not files:
        raise ValueError(f"model.checkpoint: no *.safetensors file in {checkpoint}")
    hf_state = {k: v for f in files for k, v in load_file(f).items()}
    try:
        state = hf_adapter(spec).from_hf(hf_state)
    except KeyError as exc:
        raise ValueError(f"model.checkpoint: unexpected weight {exc.args[0]!r} for a {spec.family} model") from exc
    if missing := get_model_state_dict(model).keys() - state.keys():
        raise ValueError(f"model.checkpoint: {checkpoint} lacks weights for {sorted(missing)[:5]}")
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=True))


def export_hf(model: nn.Module, spec: ModelSpec, out_dir: Path, tokenizer: Any, *, write: bool = True) -> None:
    """Write the weights as a Hugging Face checkpoint (config.json, model.safetensors, tokenizer files) that
    transformers and the embedded policy server load. Every rank must call it (FSDP gathers the weights);
    only the one with `write` writes."""
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not write:
        return
    hf_state = {k: v.contiguous() for k, v in hf_adapter(spec).to_hf(state).items()}
    dtype = next(iter(hf_state.values())).dtype
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(hf_state, out_dir / "model.safetensors", metadata={"format": "pt"})
    config = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
              "pad_token_id": tokenizer.pad_token_id, **spec.hf_config, "dtype": str(dtype).removeprefix("torch.")}
    config.pop("torch_dtype", None)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tokenizer.save_pretrained(out_dir)


def matmul_flops_per_token(model: nn.Module) -> int:
    """Forward + backward FLOPs per token of every weight matrix but the embedding lookup (torchtitan's
    6 x parameters convention; a tied output layer counts, as it is a matmul)."""
    params = sum(p.numel() for name, p in model.named_parameters(remove_duplicate=False)
                 if not name.startswith("tok_embeddings"))
    return 6 * params


def attention_flops(spec: ModelSpec, pairs: int) -> int:
    """Forward + backward FLOPs of attention over `pairs` (query, key) pairs: QK^T and PV, 2 FLOPs per
    multiply-add, x3 for the backward."""
    return 12 * spec.args.n_layers * spec.args.n_heads * spec.head_dim * pairs
