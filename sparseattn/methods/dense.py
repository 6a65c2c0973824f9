"""Dense attention: the exact reference every sparse method is measured against.

``softmax(scale * q k^T) v`` over all valid pairs (causal or not, GQA), computed in float32 (float64 for
float64 inputs) and returned in the input dtype. The output comes from PyTorch's fused
``scaled_dot_product_attention`` kernel (with the bottom-right-aligned causal mask when ``q_len < k_len``),
so the dense baseline is as fast as the framework's own; the sparse methods share the materialised
masked-softmax path :func:`~sparseattn.core.attention.attend`, which the tests check against this one.
Its trace counts the dense work at the input dtype's width (32 bits for float32).
"""

from __future__ import annotations

from ..core.attention import exact_attention, formal_workload, valid_mask_4d
from ..core.result import SparseResult
from ..core.validation import dtype_bits
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
