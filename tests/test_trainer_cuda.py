"""The trainer's CUDA path (skipped without a GPU): compiled Flex attention with the document BlockMask computes
for each packed sample what that sample alone computes, in the forward and in the gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.masks import attention_mask
from trainer.model import ModelSpec, build_model, materialize
from trainer.packing import collate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_flex_block_mask_on_cuda_equals_each_sample_alone(monkeypatch):
    from torch.nn.attention.flex_attention import flex_attention
    from torchtitan.models.attention import FlexAttentionWrapper

    # the default compile mode: torchtitan's max-autotune spends minutes tuning, which proves nothing here
    monkeypatch.setattr(FlexAttentionWrapper, "_compiled_flex_attn", torch.compile(flex_attention))
    cuda = torch.device("cuda")
    spec = ModelSpec.from_shape("tiny", 512, vocab_size=1000)
    flex, dense = build_model(spec, "flex"), build_model(spec, "sdpa")
    torch.manual_seed(0)
    materialize(flex, cuda, spec.tied, init=True)
    materialize(dense, cuda, spec.tied, init=False)
    dense.load_state_dict(flex.state_dict())
    rng = np.random.default_rng(0)
    docs = [(ids, ids) for ids in (rng.integers(0, 1000, n) for n in (200, 7, 129, 176))]  # a full row: no padding
    packed = collate([docs], 512, pad_id=0).to(cuda)
    logits = flex(packed.input_ids, attention_masks=attention_mask(packed.document_ids, "flex"), positions=packed.positions)
    logits.float().square().mean().backward()
    at = 0
    for ids, labels in docs:
        alone = collate([[(ids, labels)]], len(ids), pad_id=0).to(cuda)
        out = dense(alone.input_ids, attention_masks=attention_mask(alone.document_ids, "sdpa"), positions=alone.positions)
        torch.testing.assert_close(logits[0, at:at + len(ids)], out[0], atol=1e-4, rtol=1e-4)
        at += len(ids)
    # gradients: the packed row's loss is the sum of the per-sample losses, so the weight gradients agree
    dense.zero_grad()
    total = sum(dense(b.input_ids, attention_masks=attention_mask(b.document_ids, "sdpa"), positions=b.positions)
                .float().square().sum() for b in (collate([[d]], len(d[0]), pad_id=0).to(cuda) for d in docs))
    (total / logits.numel()).backward()
    grads_flex = torch.cat([p.grad.flatten() for p in flex.parameters()])
    grads_dense = torch.cat([p.grad.flatten() for p in dense.parameters()])
    assert grads_flex.abs().max() > 0
    torch.testing.assert_close(grads_flex, grads_dense, atol=1e-5, rtol=1e-3)
