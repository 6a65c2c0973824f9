"""The validated inputs of one attention call, as every method step sees them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .shape import Shape
from .side import SideInputs


@dataclass(frozen=True)
class AttentionCall:
    """Validated inputs of one call.

    Attributes:
        q, k, v: ``[B, H, Nq, D]`` and ``[B, Hkv, Nk, D]`` tensors (validated by
            :func:`~sparseattn.core.validation.validate_qkv`).
        shape: their :class:`~sparseattn.core.shape.Shape`.
        scale: the logit scale (``1/sqrt(D)`` unless the caller gave one).
        layer: index of the model layer the call belongs to (selects per-layer parameters), or ``None``.
        side: tensors beyond Q, K, V some methods use (SOFA's cross-phase prediction), or ``None``.
        state: a mutable dict the caller keeps across the layers of one model (SpAtten's cascade), or ``None``.
    """

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    shape: Shape
    scale: float
    layer: int | None = None
    side: SideInputs | None = None
    state: dict | None = None
