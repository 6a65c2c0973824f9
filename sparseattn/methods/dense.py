"""Dense attention: the exact reference every sparse method is measured against.

``softmax(scale * q k^T) v`` over all valid pairs (causal or not, GQA by grouping), computed in float32
(float64 for float64 inputs) and returned in the input dtype. Equal to
``torch.nn.functional.scaled_dot_product_attention`` within 1e-5 in float32. Its trace counts the dense work
at the input dtype's width (32 bits for float32).
"""

from __future__ import annotations

from ..core.attention import attend, formal_workload, grouped_scores, valid_mask_4d
from ..core.result import SparseResult
from ..core.validation import dtype_bits
from .registry import AttentionCall, MethodParams, register


class DenseParams(MethodParams):
    """Dense attention has no parameters."""


@register("dense", DenseParams, "exact attention over every valid pair (the reference)")
def dense(call: AttentionCall, p: DenseParams) -> SparseResult:
    shape = call.shape
    valid = valid_mask_4d(shape, call.q.device)
    scores = grouped_scores(call.q, call.k, call.scale)
    out = attend(scores, valid, call.v, call.q.dtype)
    keep = valid.expand(shape.batch, shape.heads, shape.q_len, shape.k_len)
    trace = formal_workload(shape, valid, dtype_bits(call.q.dtype), "dense", p.model_dump())
    return SparseResult(out=out, keep=keep, trace=trace)
