"""Dense attention: the exact reference every sparse method is measured against.

``softmax(scale * q k^T) v`` over all valid pairs (causal or not, GQA), computed in float32 (float64 for
float64 inputs) and returned in the input dtype. The output comes from PyTorch's fused
``scaled_dot_product_attention`` kernel (with the bottom-right-aligned causal mask when ``q_len < k_len``),
so the dense baseline is as fast as the framework's own; the sparse methods share the materialised
masked-softmax path :func:`~sparseattn.core.attention.attend_kept`, which the tests check against this one.
Its trace counts the dense work at the input dtype's width (32 bits for float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field

from ..core.attention import attend_kept, exact_attention, formal_workload, valid_mask_4d
from ..core.driver import Method, RowBlock, Tally
from ..core.errors import InvalidInputError
from ..core.quant import quantize_symmetric
from ..core.validation import dtype_bits
from ..core.workload import Workload
from .common import LowPrecision, grouped_int_logits
from .registry import AttentionCall, MethodParams, register


class DenseParams(MethodParams):
    """Dense attention has no parameters."""


@register("dense", DenseParams, "exact attention over every valid pair (the reference)")
class Dense(Method):
    """One block of every row: select the valid pairs, attend with PyTorch's fused SDPA."""

    def block_rows(self, call: AttentionCall) -> int:
        return call.shape.q_len

    def memory_parts(self, call: AttentionCall) -> dict[str, float]:
        """The valid-pair mask (one ``[Nq, Nk]`` broadcast over batch and heads, plus its tile-profile copy) and
        the output; SDPA itself works in row blocks."""
        s = call.shape
        return {"valid-pair mask and profile": 2.0 * s.q_len * s.k_len,
                "output": float(s.batch * s.heads * s.q_len * s.head_dim * call.q.element_size())}

    def predict(self, ctx: None, block: RowBlock, tally: Tally) -> None:
        return None

    def select(self, ctx: None, block: RowBlock, prediction: None, tally: Tally) -> torch.Tensor:
        return valid_mask_4d(block.call.shape, block.call.q.device)

    def attend(self, ctx: None, block: RowBlock, prediction: None, keep: torch.Tensor, tally: Tally) -> torch.Tensor:
        call = block.call
        return exact_attention(call.q, call.k, call.v, call.shape, call.scale, keep)

    def count(self, ctx: None, call: AttentionCall, keep: torch.Tensor, tally: Tally) -> Workload:
        valid = valid_mask_4d(call.shape, call.q.device)
        return formal_workload(call.shape, valid, dtype_bits(call.q.dtype), self.name, self.p.model_dump())


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


@dataclass
class _IntQKV:
    qk: LowPrecision
    v: torch.Tensor  # dequantised INT-b values, float32


@register("dense_int8", DenseIntParams, "dense attention on symmetric INT-b (default INT8) Q, K and V")
class DenseInt(Method):
    """Every valid pair, on integer Q, K, V: the INT8 reference PADE's accuracy is measured against."""

    def check_differentiable(self) -> None:
        raise InvalidInputError("dense_int8 computes attention on INT-quantised Q, K and V, whose rounding has no "
                                "useful gradient; use method='dense' for gradients")

    def prepare(self, call: AttentionCall) -> _IntQKV:
        v = quantize_symmetric(call.v, self.p.bits, self.p.granularity).dequantize().to(torch.float32)
        return _IntQKV(LowPrecision.of(call, self.p.bits, self.p.granularity), v)

    def predict(self, ctx: _IntQKV, block: RowBlock, tally: Tally) -> torch.Tensor:
        return ctx.qk.logits(block.row0, block.rows, block.width)

    def select(self, ctx: _IntQKV, block: RowBlock, logits: torch.Tensor, tally: Tally) -> torch.Tensor:
        return block.valid

    def attend(self, ctx: _IntQKV, block: RowBlock, logits: torch.Tensor, keep: torch.Tensor, tally: Tally):
        return attend_kept(logits, keep, ctx.v[:, :, : block.width], block.call.q.dtype)

    def count(self, ctx: _IntQKV, call: AttentionCall, keep: torch.Tensor, tally: Tally) -> Workload:
        valid = valid_mask_4d(call.shape, call.q.device)
        return formal_workload(call.shape, valid, self.p.bits, self.name, self.p.model_dump())
