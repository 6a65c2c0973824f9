"""The linear operand of SOFA's attention prediction: the given keys, or keys predicted across phases.

SOFA generates K and V on demand, only for the keys the top-k stage selects, so the predictor cannot read the
real keys: it first predicts them (phase 1.1, "key prediction", SOFA §III-B, Fig. 7(b)) from the layer input X
and the key projection W_k, with W_k stored offline in the log domain (sign + 4-bit exponent) and X as INT8:
``K_hat = X W_k`` by DLZS, truncated to ``khat_bits`` (16) -- "truncated to at most 16 bit" -- then transformed
exactly as the model transforms its keys (bias, key norm per head or over the whole projection, rotary embedding;
:class:`~sparseattn.core.side.SideInputs`), and requantised to ``khat_bits`` for phase 1.2. Without the key norm
of Qwen3/OLMo2/Gemma 3 the predicted keys have cosine ~0.8 with the real ones and the attention sink drops out of
the top-k, so a model's K-side transforms are applied, never skipped. ``key_estimate="exact"`` computes
``X W_k`` at full precision instead of by DLZS: not SOFA's predictor, a check that the key path reproduces the
model's keys.

``keys="k"`` (:func:`given_keys`) skips phase 1.1 and quantises the given K to ``k_bits`` instead: what a
predictor sees when K already exists (decoding with a KV cache, or a model whose keys we cannot regenerate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ...core.call import AttentionCall
from ...core.errors import InvalidInputError
from ...core.quant import QuantizedTensor, quantize_symmetric
from ...core.shape import Shape
from ...core.side import SideInputs, apply_rope
from ...core.workload import Per, Workload
from .dlzs import accumulator_bits, exponent_bits, predict_keys


@dataclass
class KeyOperand:
    """Integer keys the predictor shifts, their scale and width."""

    values: torch.Tensor
    scale: torch.Tensor
    bits: int


def given_keys(call: AttentionCall, p: Any) -> KeyOperand:
    """The given K quantised to ``k_bits``."""
    kq = quantize_symmetric(call.k, p.k_bits, p.granularity)
    return KeyOperand(kq.values, kq.scale, p.k_bits)


def _truncated_khat(xq: QuantizedTensor, wq: QuantizedTensor, khat_bits: int) -> tuple[torch.Tensor, int]:
    """``K_hat = X W_k`` by DLZS (exact integers), keeping its ``khat_bits`` most significant bits (an arithmetic
    right shift by ``shift``); returns ``(K_hat >> shift << shift, shift)``."""
    khat = predict_keys(xq.values, wq.values)  # [B, Nk, Hkv*D] exact integers
    peak = float(khat.abs().max())
    shift = max(0, math.ceil(math.log2(peak + 1)) - (khat_bits - 1)) if peak > 0 else 0
    return torch.floor(khat / 2**shift) * 2**shift, shift


def predicted_keys(side: SideInputs, shape: Shape, p: Any, w: Workload | None = None) -> torch.Tensor:
    """Phase 1.1: ``K_hat = X W_k`` by DLZS (or exactly, ``key_estimate="exact"``), truncated to ``khat_bits``,
    dequantised, then biased, normalised and rotated like the model's keys; float32 ``[B, Hkv, Nk, D]``. Records
    its work in ``w`` when given."""
    side.key_projection(shape.batch, shape.k_len, shape.kv_heads, shape.head_dim)
    xq = quantize_symmetric(side.x, p.x_bits, "tensor")
    wq = quantize_symmetric(side.w_k, p.w_bits, "tensor")
    if getattr(p, "key_estimate", "dlzs") == "exact":
        kf, shift = torch.matmul(side.x.to(torch.float32), side.w_k.to(torch.float32).T), 0
    else:
        khat, shift = _truncated_khat(xq, wq, p.khat_bits)
        kf = (khat * xq.scale.double() * wq.scale.double()).to(torch.float32)
    with torch.no_grad():  # a prediction: no gradient flows through it
        kf = model_key_path(kf, side, shape)
    if w is not None:
        _count_key_prediction(w, side, xq, wq, p, rotated=side.rope_cos is not None, n_el=float(kf.numel()))
        if side.k_norm is not None:  # RMS norm: square-sum, one reciprocal square root per vector, scale, weight
            w.add("other", "mul", p.formal_bits, 3 * float(kf.numel()), Per.KEY_DIM)
            w.add("other", "add", p.formal_bits, float(kf.numel()), Per.KEY_DIM)
        w.meta["khat_shift"] = shift
    return kf


def model_key_path(k_proj: torch.Tensor, side: SideInputs, shape: Shape) -> torch.Tensor:
    """What the model does to its projected keys ``[B, Nk, Hkv * D]``: bias, key norm (over the whole projection
    or per head), heads split out, rotary embedding; float32 ``[B, Hkv, Nk, D]``."""
    kf = k_proj
    if side.b_k is not None:
        kf = kf + side.b_k.to(torch.float32)
    if side.k_norm is not None and side.k_norm_over == "all":
        kf = side.k_norm(kf).to(torch.float32)
    kf = kf.view(shape.batch, shape.k_len, shape.kv_heads, shape.head_dim)
    if side.k_norm is not None and side.k_norm_over == "head":
        kf = side.k_norm(kf).to(torch.float32)
    kf = kf.transpose(1, 2)
    if side.rope_cos is not None:
        kf = apply_rope(kf, side.rope_cos.to(torch.float32), side.rope_sin.to(torch.float32))
    return kf


def _count_key_prediction(w: Workload, side: SideInputs, xq: QuantizedTensor, wq: QuantizedTensor, p: Any,
                          rotated: bool, n_el: float) -> None:
    """One shift-add per non-zero (x, w) term for every key token; the rotation's multiply-adds."""
    if rotated:
        w.add("other", "mul", p.formal_bits, 2 * n_el, Per.KEY_DIM)
        w.add("other", "add", p.formal_bits, n_el, Per.KEY_DIM)
    terms = float(torch.matmul((xq.values != 0).float(), (wq.values != 0).float().T).sum())
    max_e = int(torch.log2(wq.values.abs().max().double().clamp(min=1)).floor())
    hidden = side.x.shape[-1]
    w.add("predict", "shift", p.x_bits, terms, Per.KEY_DIM)
    w.add("predict", "add", accumulator_bits(p.x_bits, max_e, hidden), terms, Per.KEY_DIM)
    w.meta.update({"w_k_exponent_bits": exponent_bits(p.w_bits), "hidden": hidden})


def cross_phase_keys(call: AttentionCall, p: Any, w: Workload) -> KeyOperand:
    """Predicted keys requantised to ``khat_bits`` (phase 1.2's linear operand); the work goes to ``w``."""
    if call.side is None:
        raise InvalidInputError(
            "keys='cross_phase' needs side inputs (the layer input x and key projection w_k, and the model's key "
            "transforms); the Hugging Face patch provides them for models whose key path it knows (a separate "
            "k_proj/key projection, optional bias and key norm, rotary embedding) -- for other models use keys='k'")
    kq = quantize_symmetric(predicted_keys(call.side, call.shape, p, w), p.khat_bits, p.granularity)
    return KeyOperand(kq.values, kq.scale, p.khat_bits)
