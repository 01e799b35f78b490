"""The SFT loop: packed rows of accepted trajectories, torchtitan's Llama 3, AdamW with linear warmup and
cosine decay, gradient accumulation and clipping, DCP checkpoints a run resumes from, and a Hugging Face
export the policy server loads.

One process per GPU under `torchrun` (FSDP2 over the data-parallel ranks, optional tensor parallel), or a
single process on a GPU or the CPU. The loss is the sum of token cross-entropies divided by the number of
trained tokens in the whole optimizer step (all micro-batches, all ranks), as torchtitan does, so every
trained token weighs the same however the rows fall.

Each logged step reports loss, learning rate, gradient norm, tokens/s (all row tokens) and useful tokens/s
(non-padding), packing efficiency, peak memory, and on CUDA MFU twice: with torchtitan's FLOP formula,
which counts full attention over the row, and counting only the attention computed (causal, inside each
document), which is what packed rows with document masks actually do.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .config import TrainConfig
from .data import DataStats, Sample, TemplateError, read_samples
from .masks import attention_mask
from .packing import PackedBatch, collate, efficiency, pack


@dataclass
class TrainResult:
    steps: int  # the last step reached (a resumed run counts the steps before it)
    losses: list[float]  # per step run now
    metrics: list[dict[str, float]]  # per logged step: what the log line shows
    hf_dir: Path | None
    data: DataStats
    efficiency: float


class PackedLoader:
    """An endless stream of packed micro-batches: the rows of the packing plan in a seeded order that changes
    every epoch. Each data-parallel rank takes its own rows of every global micro-batch; the position in the
    stream is checkpointed (torch.distributed.checkpoint Stateful), so a resumed run continues with the
    next rows."""

    def __init__(self, samples: list[Sample], rows: list[list[int]], *, seq_len: int, pad_id: int,
                 rows_per_batch: int, dp_rank: int = 0, dp_world: int = 1, seed: int = 0):
        if not rows:
            raise ValueError("no packed rows: the data holds no trainable sample")
        self.samples, self.rows, self.seq_len, self.pad_id = samples, rows, seq_len, pad_id
        self.rows_per_batch, self.dp_rank, self.dp_world, self.seed = rows_per_batch, dp_rank, dp_world, seed
        self.consumed = 0  # rows of the stream taken by all ranks together
        self._order: tuple[int, np.ndarray] | None = None

    @property
    def epoch(self) -> float:
        return self.consumed / len(self.rows)

    def next_batch(self) -> PackedBatch:
        first = self.consumed + self.dp_rank * self.rows_per_batch
        picked = [self.rows[self._row(first + i)] for i in range(self.rows_per_batch)]
        self.consumed += self.rows_per_batch * self.dp_world
        return collate([[(self.samples[j].input_ids, self.samples[j].labels) for j in row] for row in picked],
                       self.seq_len, self.pad_id)

    def _row(self, k: int) -> int:
        epoch, i = divmod(k, len(self.rows))
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.rows)))
        return int(self._order[1][i])

    def state_dict(self) -> dict[str, Any]:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.consumed = int(state["consumed"])


@dataclass
class TrainState:
    step: int = 0
    tokens_seen: int = 0

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "tokens_seen": self.tokens_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.tokens_seen = int(state["step"]), int(state["tokens_seen"])


@dataclass
class Work:
    """What one rank computed in a step: rows, tokens (padding included), useful tokens, attention pairs."""

    rows: int = 0
    tokens: int = 0
    useful: int = 0
    pairs: int = 0  # (query, key) pairs inside the causal document masks

    def add(self, batch: PackedBatch) -> None:
        self.rows += batch.input_ids.shape[0]
        self.tokens += batch.input_ids.numel()
        self.useful += batch.useful_tokens
        self.pairs += batch.attention_pairs()


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"model: cannot load a tokenizer from {path}: {exc}") from exc
    if not tokenizer.chat_template:
        raise TemplateError(f"the tokenizer in {path} has no chat template")
    return tokenizer


def plan(config: TrainConfig) -> tuple[Any, list[Sample], list[list[int]], DataStats]:
    """Tokenizer, samples and the packing plan (rows of sample indices), without any model."""
    tokenizer = load_tokenizer(config.model.tokenizer_path)
    samples, stats = read_samples(config.data.paths, tokenizer, config.data.seq_len, config.data.overlong)
    rows = pack([len(s) for s in samples], config.data.seq_len)
    return tokenizer, samples, rows, stats


def describe_plan(config: TrainConfig, samples: list[Sample], rows: list[list[int]], stats: DataStats,
                  dp_world: int = 1) -> str:
    """The packing plan as text: what was read, rows, efficiency, steps per epoch, a few rows."""
    seq_len = config.data.seq_len
    eff = efficiency([len(s) for s in samples], rows, seq_len)
    per_step = config.rows_per_micro_batch * config.grad_accum * dp_world
    docs = [len(r) for r in rows] or [0]
    lines = [stats.summary(),
             f"{len(rows)} rows of {seq_len} tokens, packing efficiency {eff:.4%} (non-padding / all tokens)",
             f"documents per row: min {min(docs)}, mean {np.mean(docs):.1f}, max {max(docs)}",
             f"{per_step} rows per optimizer step ({config.rows_per_micro_batch} per micro-batch x {config.grad_accum} "
             f"accumulated x {dp_world} ranks): {len(rows) / per_step:.2f} steps per epoch, "
             f"{config.steps} steps = {config.steps * per_step / max(len(rows), 1):.2f} epochs"]
    for i, row in enumerate(rows[:5]):
        lengths = [len(samples[j]) for j in row]
        lines.append(f"  row {i}: {len(row)} documents {lengths[:12]}{' ...' if len(row) > 12 else ''}, "
                     f"{seq_len - sum(lengths)} padding")
    return "\n".join(lines)


def dry_run(config: TrainConfig) -> str:
    _, samples, rows, stats = plan(config)
    return describe_plan(config, samples, rows, stats)


def train(config: TrainConfig, *, echo: bool = True) -> TrainResult:
    """Train as configured; resumes from the newest checkpoint under out_dir/checkpoint if there is one."""
    from torchtitan.components.checkpoint import CheckpointManager
    from torchtitan.components.loss import cross_entropy_loss
    from torchtitan.components.lr_scheduler import build_lr_schedulers
    from torchtitan.components.optimizer import OptimizersContainer
    from torchtitan.config.job_config import Checkpoint, LRScheduler
    from torchtitan.distributed.utils import clip_grad_norm_

    from .model import (ModelSpec, build_model, export_hf, load_hf_weights, materialize,
                        matmul_flops_per_token, parallelize)

    torch.manual_seed(config.seed)
    with _distributed() as (rank, world, device):
        say = print if echo and rank == 0 else (lambda *a, **k: None)
        tp = config.tensor_parallel
        if world % tp:
            raise ValueError(f"tensor_parallel={tp} does not divide the {world} ranks")
        dp_rank, dp_world = rank // tp, world // tp
        tokenizer, samples, rows, stats = plan(config)
        say(describe_plan(config, samples, rows, stats, dp_world))
        seq_len = config.data.seq_len
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        loader = PackedLoader(samples, rows, seq_len=seq_len, pad_id=pad_id, rows_per_batch=config.rows_per_micro_batch,
                              dp_rank=dp_rank, dp_world=dp_world, seed=config.seed)

        mc = config.model
        spec = (ModelSpec.from_checkpoint(mc.checkpoint, seq_len) if mc.checkpoint
                else ModelSpec.from_shape(mc.shape, seq_len, len(tokenizer)))
        attention = mc.attention if mc.attention != "auto" else ("flex" if device.type == "cuda" else "sdpa")
        if attention == "flex" and device.type != "cuda":
            raise ValueError("model.attention = 'flex' needs CUDA: Flex attention has no backward on the CPU")
        model = build_model(spec, attention, torch.bfloat16 if config.dtype == "bfloat16" else torch.float32)
        dp_mesh, tp_mesh = _meshes(device, dp_world, tp)
        compute_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        parallelize(model, spec, dp_mesh=dp_mesh, tp_mesh=tp_mesh, compile=mc.compile,
                    activation_checkpointing=mc.activation_checkpointing, param_dtype=compute_dtype)
        materialize(model, device, spec.tied, init=mc.checkpoint is None)
        if mc.checkpoint:
            load_hf_weights(model, spec, mc.checkpoint)
        model.train()
        # single device: autocast to bf16 on CUDA; FSDP casts itself (torchtitan's rule)
        amp = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and dp_mesh is None and tp_mesh is None
               else contextlib.nullcontext())

        o = config.optim
        optimizers = OptimizersContainer([model], torch.optim.AdamW, {
            "lr": o.lr, "betas": (o.beta1, o.beta2), "eps": o.eps, "weight_decay": o.weight_decay,
            "fused": True, "foreach": False})  # fused AdamW: also ~10x faster than foreach on the CPU
        schedulers = build_lr_schedulers(optimizers, LRScheduler(
            warmup_steps=o.warmup_steps, decay_type="cosine", min_lr_factor=o.min_lr_factor), config.steps)
        state = TrainState()
        checkpointer = CheckpointManager(
            dataloader=loader, model_parts=[model], optimizers=optimizers, lr_schedulers=schedulers,
            states={"train_state": state}, sd_adapter=None, base_folder=str(config.out_dir),
            checkpoint_config=Checkpoint(enable=config.checkpoint_every > 0, folder="checkpoint",
                                         interval=max(1, config.checkpoint_every),
                                         keep_latest_k=config.keep_checkpoints, last_save_model_only=False))
        if checkpointer.load():
            say(f"resumed from step {state.step} ({loader.epoch:.2f} epochs of data seen)")

        matmul = matmul_flops_per_token(model)
        peak = _peak_flops(device)
        tb = _tensorboard(config) if rank == 0 else None
        losses: list[float] = []
        logged: list[dict[str, float]] = []
        if mc.compile:  # as torchtitan does with compile.components = ["model", "loss"]
            cross_entropy_loss = torch.compile(cross_entropy_loss)
        try:
            for step in range(state.step + 1, config.steps + 1):
                start = time.perf_counter()
                lr = schedulers.schedulers[0].get_last_lr()[0]  # this step's (the scheduler steps after it)
                loss, grad_norm, work = _step(model, loader, config, attention, amp, device, dp_mesh, cross_entropy_loss,
                                              clip_grad_norm_, optimizers, schedulers)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds = time.perf_counter() - start
                state.step, state.tokens_seen = step, state.tokens_seen + work.tokens * dp_world
                checkpointer.save(step, last_step=step == config.steps)
                losses.append(loss)
                if step % config.log_every == 0 or step == config.steps:
                    metrics = _metrics(work, loss, grad_norm, lr, seconds, dp_world, world, matmul, spec, peak, device)
                    logged.append({"step": step, **metrics})
                    say(_format(step, config.steps, metrics))
                    if tb is not None:
                        tb.log(metrics, step)
        finally:
            if tb is not None:
                tb.close()
            checkpointer.close()
        hf_dir = config.out_dir / "hf" if config.export_hf else None
        if hf_dir is not None:
            export_hf(model, spec, hf_dir, tokenizer, write=rank == 0)
            say(f"Hugging Face checkpoint: {hf_dir}")
        return TrainResult(state.step, losses, logged, hf_dir, stats,
                           efficiency([len(s) for s in samples], rows, seq_len))


def _step(model, loader, config, attention, amp, device, dp_mesh, loss_fn, clip, optimizers, schedulers):
    """One optimizer step over grad_accum micro-batches: (loss per trained token, gradient norm, this rank's work)."""
    optimizers.zero_grad()
    batches = [loader.next_batch() for _ in range(config.grad_accum)]
    targets = torch.tensor(float(sum(b.targets for b in batches)), device=device)
    if dp_mesh is not None:
        dist.all_reduce(targets, group=dp_mesh.get_group())
    total = torch.zeros((), device=device)
    work = Work()
    for batch in batches:
        work.add(batch)
        batch = batch.to(device)
        with amp:
            logits = model(batch.input_ids, attention_masks=attention_mask(batch.document_ids, attention),
                           positions=batch.positions)
            loss = loss_fn(logits, batch.labels) / targets
        del logits  # free the largest activation before the backward
        loss.backward()
        total += loss.detach()
    grad_norm = clip(list(model.parameters()), config.optim.max_norm, foreach=True)
    optimizers.step()
    schedulers.step()
    if dp_mesh is not None:
        dist.all_reduce(total, group=dp_mesh.get_group())
    return float(total), float(grad_norm), work


def _metrics(work: Work, loss: float, grad_norm: float, lr: float, seconds: float, dp_world: int, world: int,
             matmul: int, spec, peak: float | None, device: torch.device) -> dict[str, float]:
    from .model import attention_flops

    tokens, useful = work.tokens * dp_world, work.useful * dp_world
    m = {"loss": loss, "grad_norm": grad_norm, "lr": lr,
         "tokens_per_s": tokens / seconds, "useful_tokens_per_s": useful / seconds,
         "efficiency": useful / tokens, "step_seconds": seconds}
    if peak:
        seq_len = spec.args.max_seq_len
        full = attention_flops(spec, work.rows * seq_len * seq_len)  # torchtitan: every (query, key) pair
        computed = attention_flops(spec, work.pairs)
        gpu_seconds = seconds * world / dp_world  # each rank computes its micro-batches (TP ranks share theirs)
        m["mfu"] = (work.tokens * matmul + full) / (gpu_seconds * peak)
        m["mfu_attention_computed"] = (work.tokens * matmul + computed) / (gpu_seconds * peak)
    if device.type == "cuda":
        m["memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return m


def _format(step: int, steps: int, m: dict[str, float]) -> str:
    line = (f"step {step}/{steps}  loss {m['loss']:.4f}  lr {m['lr']:.2e}  grad_norm {m['grad_norm']:.3f}  "
            f"tokens/s {m['tokens_per_s']:,.0f} (useful {m['useful_tokens_per_s']:,.0f}, {m['efficiency']:.2%})")
    if "mfu" in m:
        line += f"  MFU {m['mfu']:.1%} (attention computed only: {m['mfu_attention_computed']:.1%})"
    if "memory_gib" in m:
        line += f"  peak memory {m['memory_gib']:.1f} GiB"
    return line


@contextlib.contextmanager
def _distributed() -> Iterator[tuple[int, int, torch.device]]:
    """(rank, world size, device). Under torchrun the process group comes from its environment; a single
    process gets a group of one (torchtitan's checkpointer asks for ranks). A group made here is destroyed."""
    world, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    made = not dist.is_initialized()
    if made:
        backend = "cuda:nccl,cpu:gloo" if cuda else "gloo"
        if world > 1:
            dist.init_process_group(backend)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield dist.get_rank(), dist.get_world_size(), device
    finally:
        if made:
            dist.destroy_process_group()


def _meshes(device: torch.device, dp: int, tp: int):
    """Device meshes for data parallel (FSDP) and tensor parallel, None where the degree is 1."""
    if dp * tp == 1:
        return None, None
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (dp, tp), mesh_dim_names=("dp", "tp"))
    return (mesh["dp"] if dp > 1 else None), (mesh["tp"] if tp > 1 else None)


def _peak_flops(device: torch.device) -> float | None:
    """Datasheet dense bf16 FLOP/s of the GPU (torchtitan's table); None on the CPU."""
    if device.type != "cuda":
        return None
    from torchtitan.tools.utils import get_peak_flops

    return get_peak_flops(torch.cuda.get_device_name(device))


def _tensorboard(config: TrainConfig):
    if not config.tensorboard:
        return None
    from torchtitan.components.metrics import TensorBoardLogger

    return TensorBoardLogger(str(config.out_dir / "tb"))


def finetune(accepted: str | Path | list[str | Path], base_checkpoint: str | Path, out_dir: str | Path, *,
             steps: int = 3, seq_len: int = 512, lr: float = 2e-5, echo: bool = True) -> Path:
    """The main job's training step: fine-tune a Hugging Face checkpoint for a few steps on a rollout's
    accepted trajectories (on the CPU when there is no GPU) and return the directory of the Hugging Face
    checkpoint written (out_dir/hf), which `lachesis policy serve --model DIR` loads."""
    paths = accepted if isinstance(accepted, list) else [accepted]
    config = TrainConfig(
        out_dir=Path(out_dir), steps=steps, log_every=1, checkpoint_every=0, seed=0,
        model={"checkpoint": Path(base_checkpoint)}, data={"paths": paths, "seq_len": seq_len, "overlong": "truncate"},
        optim={"lr": lr, "warmup_steps": 1, "min_lr_factor": 0.1})
    result = train(config, echo=echo)
    assert result.hf_dir is not None
    return result.hf_dir
