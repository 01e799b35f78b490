"""Attention masks for packed rows: a token attends to earlier tokens of its own document only.

On CUDA the mask is a Flex-Attention BlockMask (causal ∧ same document), so blocks that cross documents are
skipped, not just masked. Flex's backward is not implemented on the CPU (torch 2.13), so there the same
mask is an explicit boolean [rows, 1, seq, seq] tensor for scaled-dot-product attention: the same
mathematics, tested against each other and against running every document alone.
"""

from __future__ import annotations

import torch
from torch.nn.attention.flex_attention import BlockMask, _mask_mod_signature, create_block_mask

AttentionMask = BlockMask | torch.Tensor


def document_causal(document_ids: torch.Tensor) -> _mask_mod_signature:
    """Flex mask_mod: query q sees key k when k is not after q and both belong to the same document."""

    def mask_mod(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (document_ids[b, q_idx] == document_ids[b, kv_idx])

    return mask_mod


def block_mask(document_ids: torch.Tensor) -> BlockMask:
    """The Flex BlockMask of a batch of packed rows (built on the rows' device, with torch.compile on CUDA)."""
    from torchtitan.models.attention import create_attention_mask  # torchtitan's compiled create_block_mask

    rows, seq_len = document_ids.shape
    build = create_attention_mask if document_ids.is_cuda else create_block_mask
    return build(document_causal(document_ids), rows, None, seq_len, seq_len, device=document_ids.device)


def dense_mask(document_ids: torch.Tensor) -> torch.Tensor:
    """The same mask as booleans, [rows, 1, seq, seq], True where attention is allowed."""
    seq_len = document_ids.shape[1]
    same = document_ids[:, :, None] == document_ids[:, None, :]
    causal = torch.ones(seq_len, seq_len, dtype=torch.bool, device=document_ids.device).tril()
    return (same & causal)[:, None]


def attention_mask(document_ids: torch.Tensor, kind: str) -> AttentionMask:
    """The mask the model's attention takes: "flex" (a BlockMask) or "sdpa" (booleans)."""
    if kind == "flex":
        return block_mask(document_ids)
    if kind == "sdpa":
        return dense_mask(document_ids)
    raise ValueError(f"unknown attention kind {kind!r}: expected 'flex' or 'sdpa'")
