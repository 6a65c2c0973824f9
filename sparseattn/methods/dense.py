"""Dense attention: the exact reference every sparse method is measured against.

``softmax(scale * q k^T) v`` over all valid pairs (causal or not, GQA), computed in float32 (float64 for
float64 inputs) and returned in the input dtype. The output comes from PyTorch's fused
``scaled_dot_product_attention`` kernel (with the bottom-right-aligned causal mask when ``q_len < k_len``),
so the dense baseline is as fast as the framework's own; the sparse methods share the materialised
masked-softmax path :func:`~sparseattn.core.attention.attend`, which the tests check against this one.
Its trace counts the dense work at the input dtype's width (32 bits for float32).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from ..core.attention import attend, exact_attention, formal_workload, valid_mask_4d
from ..core.quant import quantize_symmetric
from ..core.result import SparseResult
from ..core.validation import dtype_bits
from .common import grouped_int_logits
from .registry import AttentionCall, MethodParams, register


class DenseParams(MethodParams):
    """Dense attention has no parameters."""


@register("dense", DenseParams, "exact attention over every valid pair (the reference)")
def dense(call: AttentionCall, p: DenseParams) -> SparseResult:
    shape = call.shape
    valid = valid_mask_4d(shape, call.q.device)
    out = exact_attention(call.q, call.k, call.v, shape, call.scale, valid)
    keep = valid.expand(shape.batch, shape.heads, shape.q_len, shape.k_len)
    trace = formal_workload(shape, valid, dtype_bits(call.q.dtype), "dense", p.model_dump())
    return SparseResult(out=out, keep=keep, trace=trace)


class DenseIntParams(MethodParams):
    bits: int = Field(8, ge=2, le=16, description="integer width of Q, K and V")
    granularity: Literal["tensor", "head", "token"] = Field("tensor", description="quantisation scale groups")


def integer_logits(
    q: torch.Tensor, k: torch.Tensor, scale: float, bits: int, granularity: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantise Q and K symmetrically and return ``(logits, q_int, k_int)``: ``logits = (Q_int K_int^T) s_q s_k
    scale`` as float32 ``[B, H, Nq, Nk]``. The integer product is exact (float64 above 8 bits)."""
    qq, kq = quantize_symmetric(q, bits, granularity), quantize_symmetric(k, bits, granularity)
    logits = grouped_int_logits(qq, kq, 0, q.shape[2], k.shape[2], q.shape[1], scale)
    return logits, qq.values, kq.values


@register("dense_int8", DenseIntParams, "dense attention on symmetric INT-b (default INT8) Q, K and V")
def dense_int8(call: AttentionCall, p: DenseIntParams) -> SparseResult:
    shape = call.shape
    valid = valid_mask_4d(shape, call.q.device)
    logits, _, _ = integer_logits(call.q, call.k, call.scale, p.bits, p.granularity)
    vq = quantize_symmetric(call.v, p.bits, p.granularity)
    out = attend(logits, valid, vq.dequantize().to(torch.float32), call.q.dtype)
    keep = valid.expand(shape.batch, shape.heads, shape.q_len, shape.k_len)
    trace = formal_workload(shape, valid, p.bits, "dense_int8", p.model_dump())
    return SparseResult(out=out, keep=keep, trace=trace)
