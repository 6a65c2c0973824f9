"""DLZS: differential leading-zero summation, SOFA's add-only sparsity predictor (SOFA §III-B, Fig. 7).

One operand of each product is converted to the log domain by a leading-zero encoder -- it keeps only its
sign and the position of its leading one -- and the other operand is *shifted* by that exponent instead of
being multiplied::

    x * y  ~=  sign(x) * sign(y) * (|x| << floor(log2 |y|))          (zero operands are skipped)

This is the "floor" snap of Fig. 7(c): 24 x 6 -> 24 << 2 = 96 (exact: 144). It always under-estimates
``|x*y|`` by a factor in (0.5, 1] and is exact when ``|y|`` is a power of two. Summed over a dot product,
``sum_d sign(x_d) sign(y_d) (|x_d| << e(y_d))`` equals ``x . leading_one(y)`` exactly, which is how the
reference computes it (an integer matrix product in float64, exact because every partial sum stays below
2^53); the trace counts what the hardware does instead: shifts and adds, never multiplications.

Two uses (SOFA §III-B):

* attention prediction ``A_hat = Q K^T`` with Q as INT16 snapped to 5-bit leading-zero exponents ("we
  convert Q into the log domain instead of K_hat") and the keys linear;
* cross-phase key prediction ``K_hat = X W_k`` with ``W_k`` stored offline as sign + 4-bit exponent and X as
  INT8 linear, truncated to 16 bits.
"""

from __future__ import annotations

import math

import torch

from ...core.bits import floor_log2, leading_one


def dlzs_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Element-wise DLZS estimate of ``x * y`` with ``y`` in the log domain (int64)."""
    x64, y64 = x.to(torch.int64), y.to(torch.int64)
    nz = (x64 != 0) & (y64 != 0)
    shift = floor_log2(torch.where(y64 == 0, torch.ones_like(y64), y64))
    est = torch.sign(x64) * torch.sign(y64) * (x64.abs() << shift)
    return torch.where(nz, est, torch.zeros_like(est))


def log_operand(y: torch.Tensor) -> torch.Tensor:
    """The log-domain operand as float64 ``sign(y) * 2^floor(log2|y|)`` (0 for 0): what a leading-zero
    encoder keeps of ``y``."""
    return leading_one(y).to(torch.float64)


def exponent_bits(width: int) -> int:
    """Bits of a leading-zero code for a ``width``-bit magnitude (5 for INT16, 4 for INT8 ... as in SOFA)."""
    return max(1, math.ceil(math.log2(width)))


def predict_scores(q_int: torch.Tensor, k_int: torch.Tensor) -> torch.Tensor:
    """Phase 1.2, ``A_hat[i, j] = sum_d DLZS(k[j, d], q[i, d])`` with Q in the log domain:
    ``leading_one(Q) @ K^T`` for ``q_int [..., Nq, D]``, ``k_int [..., Nk, D]``; float64 exact integers."""
    return torch.matmul(log_operand(q_int), k_int.to(torch.float64).transpose(-1, -2))


def predict_keys(x_int: torch.Tensor, w_int: torch.Tensor) -> torch.Tensor:
    """Phase 1.1, ``K_hat[t, c] = sum_h DLZS(x[t, h], w[c, h])`` with W_k in the log domain:
    ``X @ leading_one(W_k)^T`` for ``x_int [..., N, hidden]``, ``w_int [out, hidden]``; float64 exact."""
    return torch.matmul(x_int.to(torch.float64), log_operand(w_int).transpose(-1, -2))


def accumulator_bits(linear_bits: int, max_shift: int, terms: int) -> int:
    """Signed accumulator width that holds a sum of ``terms`` shifted ``linear_bits``-bit values."""
    return linear_bits + max_shift + max(1, math.ceil(math.log2(max(terms, 2))))
