"""The training run's configuration (a TOML file), validated with pydantic: errors name the field.

```toml
out_dir = "runs/sft"          # checkpoints (DCP, resumable), TensorBoard logs, and the exported hf/ checkpoint
steps = 200
[model]
checkpoint = "~/.cache/lachesis/models/smollm2-135m-instruct"   # Hugging Face dir: weights, config, tokenizer
[data]
paths = ["runs/demo/rollout"]   # rollout run dirs (their accepted-*.parquet) or Parquet files
seq_len = 4096
[optim]
lr = 1e-5
warmup_steps = 20
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from environments.config import load_toml
from environments.types import Strict


class Section(Strict):
    model_config = ConfigDict(strict=False)  # TOML values are plain: let "runs/x" become a Path, 1 a float


class ModelConfig(Section):
    checkpoint: Path | None = None  # a Hugging Face Llama checkpoint: config.json, *.safetensors, tokenizer
    shape: str | None = None  # or a named shape (model.SHAPES), randomly initialised
    tokenizer: Path | None = None  # with `shape`: where the tokenizer and chat template come from
    attention: Literal["auto", "flex", "sdpa"] = "auto"  # auto: Flex on CUDA, SDPA with a boolean mask on the CPU
    compile: bool = False  # torch.compile each transformer block (CUDA)
    activation_checkpointing: Literal["none", "full", "selective"] = "none"

    @field_validator("checkpoint", "tokenizer")
    @classmethod
    def _expand(cls, path: Path | None) -> Path | None:
        return None if path is None else path.expanduser()

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        if (self.checkpoint is None) == (self.shape is None):
            raise ValueError("give exactly one of model.checkpoint and model.shape")
        if self.shape is not None and self.tokenizer is None:
            raise ValueError("model.tokenizer is required with model.shape")
        return self

    @property
    def tokenizer_path(self) -> Path:
        return self.tokenizer or self.checkpoint


class DataConfig(Section):
    paths: list[Path] = Field(min_length=1)  # rollout run dirs (accepted-*.parquet) or Parquet files
    seq_len: int = Field(default=2048, ge=16)  # tokens per packed row
    overlong: Literal["drop", "truncate"] = "drop"  # samples longer than seq_len


class OptimConfig(Section):
    lr: float = Field(default=1e-5, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    eps: float = Field(default=1e-8, gt=0)
    warmup_steps: int = Field(default=0, ge=0)  # linear warmup, then cosine decay to min_lr_factor * lr
    min_lr_factor: float = Field(default=0.0, ge=0, le=1)
    max_norm: float = Field(default=1.0, gt=0)  # gradient clipping


class TrainConfig(Section):
    out_dir: Path
    steps: int = Field(ge=1)  # optimizer steps
    rows_per_micro_batch: int = Field(default=1, ge=1)  # packed rows per forward, per rank
    grad_accum: int = Field(default=1, ge=1)  # micro-batches per optimizer step
    seed: int = 0
    dtype: Literal["float32", "bfloat16"] = "float32"  # parameters; on CUDA the matmuls run in bf16 either way
    tensor_parallel: int = Field(default=1, ge=1)
    log_every: int = Field(default=1, ge=1)
    checkpoint_every: int = Field(default=500, ge=0)  # DCP checkpoints under out_dir/checkpoint, and at the last step;
    # a run resumes from the newest. 0: none (nothing to resume from; the export is still written)
    keep_checkpoints: int = Field(default=2, ge=0)  # 0 keeps all; 1 is refused (the last may be half written)
    export_hf: bool = True  # write the final weights as a Hugging Face checkpoint to out_dir/hf
    tensorboard: bool = True  # under out_dir/tb
    model: ModelConfig
    data: DataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)

    @field_validator("keep_checkpoints")
    @classmethod
    def _not_one(cls, keep: int) -> int:
        if keep == 1:
            raise ValueError("keep at least 2 checkpoints (or 0 for all): the newest may be half written")
        return keep

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return load_toml(cls, path)
