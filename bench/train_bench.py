"""Trainer benchmark: packing speed on the CPU, and one GPU's SFT step against torchtitan's own training loop.

    python bench/train_bench.py pack [--samples 1000000] [--seq-len 16384]
    python bench/train_bench.py gpu --tokenizer DIR [--shape llama3-1b] [--seq-len 16384] [--steps 12] [--warmup 4]
    python bench/train_bench.py ours --tokenizer DIR --checkpoint HF_DIR   (our trainer alone, e.g. on a Qwen 3)

`gpu` runs two variants on the same model (torchtitan's Llama 3 at the Llama-3.2-1B shape, random weights,
bf16 parameters, fused AdamW, each transformer block and the loss compiled), each in a process of its own:
  ours   `lachesis train` (trainer.train) on First-Fit-Decreasing packed rows with Flex document masks;
  titan  torchtitan's Trainer.train_step on the same samples, one per row padded to seq_len, causal SDPA.
Both draw the same realistic length mix: many short chats and long reasoning traces, 5:1 in tokens. Per
variant it prints tokens/s (every row token), useful tokens/s (non-padding), MFU against the datasheet peak
(989 TFLOP/s dense bf16 for H100/H200) with torchtitan's formula (full attention over every row) and counting
only the attention computed (causal, inside each document), and peak GPU memory. Rates are totals over
the steps after `--warmup` (rows differ in how much attention they need).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainer.packing import IGNORE, efficiency, pack  # noqa: E402


def length_mix(n: int, seq_len: int, seed: int = 0, short_to_long_tokens: float = 5.0) -> np.ndarray:
    """Sample lengths: short chats (log-normal, median 600 tokens, 32..4096) and long reasoning traces
    (uniform, seq_len/4..seq_len), long ones drawn just often enough for a 5:1 short:long token ratio."""
    rng = np.random.default_rng(seed)
    short = rng.lognormal(np.log(600), 0.8, n).clip(32, min(4096, seq_len)).astype(np.int64)
    long = rng.integers(seq_len // 4, seq_len + 1, n)
    p_long = short.mean() / (short.mean() + short_to_long_tokens * long.mean())
    return np.where(rng.random(n) < p_long, long, short)


def bench_pack(samples: int, seq_len: int) -> dict:
    lengths = length_mix(samples, seq_len).tolist()
    start = time.perf_counter()
    rows = pack(lengths, seq_len)
    seconds = time.perf_counter() - start
    return {"samples": samples, "seq_len": seq_len, "rows": len(rows), "seconds": seconds,
            "efficiency": efficiency(lengths, rows, seq_len)}


def samples_for(seq_len: int, vocab: int, rows: int = 1024, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, token ids) of random samples in the length mix, `rows` rows' worth: packing that many is
    representative (≥ 99.9 % efficiency); the steps take their rows from the shuffled plan."""
    lengths = length_mix(1_000_000, seq_len, seed)
    lengths = lengths[: int(np.searchsorted(np.cumsum(lengths), rows * seq_len)) + 1]
    return lengths, np.random.default_rng(seed).integers(0, vocab, int(lengths.sum()), dtype=np.int32)


def sft_labels(lengths: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """SFT-like labels: the first fifth of each sample (its prompt) untrained."""
    offset = np.arange(len(ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.where(offset < np.repeat(lengths // 5, lengths), IGNORE, ids).astype(np.int32)


def run_ours(args) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.config import TrainConfig
    from trainer.train import load_tokenizer, train

    vocab = len(load_tokenizer(args.tokenizer))
    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    lengths, ids = samples_for(args.seq_len, vocab)
    offsets = pa.array(np.r_[0, np.cumsum(lengths)].astype(np.int32))
    pq.write_table(pa.table({"input_ids": pa.ListArray.from_arrays(offsets, pa.array(ids)),
                             "labels": pa.ListArray.from_arrays(offsets, pa.array(sft_labels(lengths, ids)))}),
                   work / "data.parquet")
    config = TrainConfig.model_validate({
        "out_dir": work / "out", "steps": args.steps, "dtype": "bfloat16", "checkpoint_every": 0, "export_hf": False,
        "tensorboard": False, "model": {**({"checkpoint": args.checkpoint} if args.checkpoint else {"shape": args.shape}),
                                        "tokenizer": args.tokenizer, "compile": not args.no_compile},
        "data": {"paths": [work / "data.parquet"], "seq_len": args.seq_len},
        "optim": {"lr": 1e-5, "warmup_steps": 2}})
    result = train(config)
    steady = [m for m in result.metrics if m["step"] > args.warmup]
    seconds = sum(m["step_seconds"] for m in steady)

    def rate(key: str) -> float:  # over all steady steps: rows differ in how much attention they need
        return sum(m.get(key, float("nan")) * m["step_seconds"] for m in steady) / seconds

    return {"variant": "ours: packed + Flex document masks", "tokens_per_s": rate("tokens_per_s"),
            "useful_tokens_per_s": rate("useful_tokens_per_s"), "mfu": rate("mfu"),
            "mfu_attention_computed": rate("mfu_attention_computed"), "step_seconds": seconds / len(steady),
            "step_seconds_range": [min(m["step_seconds"] for m in steady), max(m["step_seconds"] for m in steady)],
            "peak_memory_gib": max(m.get("memory_gib", 0) for m in result.metrics),
            "packing_efficiency": result.efficiency}


def run_titan(args) -> dict:
    """torchtitan's own Trainer and train_step, fed one padded sample per row."""
    import dataclasses

    import torch
    from torchtitan.components.dataloader import BaseDataLoader
    from torchtitan.config import JobConfig
    from torchtitan.models.llama3 import TransformerModelArgs, get_train_spec
    from torchtitan.protocols.train_spec import register_train_spec
    from torchtitan.tools.utils import get_peak_flops
    from torchtitan.train import Trainer

    from trainer.model import SHAPES, ModelSpec, attention_flops
    from trainer.train import load_tokenizer

    vocab = len(load_tokenizer(args.tokenizer))
    fields, _ = SHAPES[args.shape]
    model_args = TransformerModelArgs(**{**fields, "vocab_size": fields["vocab_size"] or vocab})
    lengths, ids = samples_for(args.seq_len, vocab)
    labels = sft_labels(lengths, ids)
    starts = np.cumsum(lengths) - lengths

    class PaddedRows(BaseDataLoader):
        def __iter__(self):
            for start, n in zip(starts, lengths):
                row = np.zeros(args.seq_len, dtype=np.int64)
                row[:n] = ids[start:start + n]
                target = np.full(args.seq_len, IGNORE, dtype=np.int64)
                target[: n - 1] = labels[start + 1:start + n]
                yield {"input": torch.from_numpy(row)[None]}, torch.from_numpy(target)[None]

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    register_train_spec("lachesis_bench", dataclasses.replace(
        get_train_spec(), model_args={"bench": model_args}, build_dataloader_fn=lambda **_: PaddedRows(),
        build_tokenizer_fn=None, build_validator_fn=None, state_dict_adapter=None))
    job = JobConfig()
    job.job.dump_folder = tempfile.mkdtemp(prefix="titan-bench-")
    job.model.name, job.model.flavor = "lachesis_bench", "bench"
    job.training.seq_len, job.training.local_batch_size, job.training.steps = args.seq_len, 1, args.steps
    job.training.dtype = "bfloat16"
    job.optimizer.lr, job.optimizer.weight_decay = 1e-5, 0.0
    job.lr_scheduler.warmup_steps = 2
    job.compile.enable, job.compile.components = not args.no_compile, ["model", "loss"]
    job.activation_checkpoint.mode = "none"
    job.metrics.log_freq = 10**9  # its log resets the peak-memory counter: log step 1 only
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", str(_free_port()))):
        os.environ.setdefault(key, value)
    trainer = Trainer(job)
    batches = trainer.batch_generator(trainer.dataloader)
    times = []
    for _ in range(args.steps):
        trainer.step += 1
        torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.train_step(batches)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    model = trainer.model_parts[0]
    matmul = 6 * sum(p.numel() for n, p in model.named_parameters() if "tok_embeddings" not in n)
    steady = times[args.warmup:]
    seconds, rows = sum(steady), len(steady)
    useful = int(lengths[args.warmup:args.steps].sum())
    seq = args.seq_len
    peak = get_peak_flops(torch.cuda.get_device_name())
    full = seq * matmul + attention_flops(ModelSpec(model_args, False, {}), seq * seq)  # per row
    causal = seq * matmul + attention_flops(ModelSpec(model_args, False, {}), seq * (seq + 1) // 2)
    result = {"variant": "titan: padded rows, causal SDPA", "tokens_per_s": rows * seq / seconds,
              "useful_tokens_per_s": useful / seconds, "mfu": rows * full / seconds / peak,
              "mfu_attention_computed": rows * causal / seconds / peak, "step_seconds": seconds / rows,
              "step_seconds_range": [min(steady), max(steady)],
              "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
              "packing_efficiency": useful / (rows * seq)}
    trainer.close()
    torch.distributed.destroy_process_group()
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def table(results: list[dict]) -> str:
    lines = [f"{'variant':<40}{'tokens/s':>11}{'useful/s':>11}{'MFU':>8}{'MFU attn':>10}{'step s (min-max)':>22}"
             f"{'memory':>11}{'non-pad':>9}"]
    for r in results:
        lo, hi = r["step_seconds_range"]
        lines.append(f"{r['variant']:<40}{r['tokens_per_s']:>11,.0f}{r['useful_tokens_per_s']:>11,.0f}{r['mfu']:>8.1%}"
                     f"{r['mfu_attention_computed']:>10.1%}{r['step_seconds']:>9.3f} ({lo:.3f}-{hi:.3f})"
                     f"{r['peak_memory_gib']:>7.1f} GiB{r['packing_efficiency']:>9.2%}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["pack", "gpu", "ours", "titan"])
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--seq-len", type=int, default=16_384)
    p.add_argument("--shape", default="llama3-1b")
    p.add_argument("--tokenizer", type=Path, help="a tokenizer directory with a chat template")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--no-compile", action="store_true", help="eager (a quick check on the CPU)")
    p.add_argument("--checkpoint", type=Path, help="`ours` only: a Hugging Face checkpoint (Llama 3 or Qwen 3) "
                                                   "instead of --shape")
    args = p.parse_args()
    if args.mode == "pack":
        r = bench_pack(args.samples, args.seq_len)
        print(f"packed {r['samples']:,} samples into {r['rows']:,} rows of {r['seq_len']:,} tokens in "
              f"{r['seconds']:.2f} s (CPU), efficiency {r['efficiency']:.4%}")
        return 0
    if args.tokenizer is None:
        p.error("--tokenizer is required for the GPU benchmark")
    if args.mode in ("ours", "titan"):
        result = (run_ours if args.mode == "ours" else run_titan)(args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    results = []
    for variant in ("titan", "ours"):  # each in its own process: its own compile caches and peak memory
        cmd = [sys.executable, __file__, variant, *sys.argv[2:]]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        print(proc.stdout[-4000:], flush=True)
        found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not found:
            print(f"{variant}: failed (exit code {proc.returncode})", flush=True)
            continue
        results.append(json.loads(found[-1][len("RESULT "):]))
    print(table(results))
    if len(results) == 2:
        titan, ours = results
        print(f"ours / titan: tokens/s {ours['tokens_per_s'] / titan['tokens_per_s']:.2f}x, "
              f"useful tokens/s {ours['useful_tokens_per_s'] / titan['useful_tokens_per_s']:.2f}x")
    return 0 if len(results) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
