#!/usr/bin/env python
"""Write a randomly initialised Qwen 3 checkpoint at a real model's shape (default Qwen3-0.6B's: 28 layers,
hidden 1024, 16/8 heads of 128, FFN 3072, tied embeddings), for `train_bench.py ours --checkpoint` where no
model can be downloaded. The vocabulary is the given tokenizer's.

Usage: python bench/qwen3_checkpoint.py OUT_DIR --tokenizer DIR [--layers 28 --hidden 1024 --heads 16 --kv-heads 8]
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--layers", type=int, default=28)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--ffn", type=int, default=3072)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    args = p.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=args.ffn,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                         head_dim=args.head_dim, max_position_embeddings=40960, rope_theta=1e6, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print(f"wrote {args.out}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters")


if __name__ == "__main__":
    main()
