"""Learned detectors: the predictor parameters a method trains with the model (DOTA's low-rank detector).

DOTA (Qu et al., ASPLOS'22) estimates the attention scores with a low-rank projection ``P [head_dim, rank]`` --
``(Q P)(K P)^T`` -- and trains ``P`` with a *detection loss*, the mean squared error between the estimated and
the exact attention scores, beside the model's own loss. Here each attention layer gets its own ``P``,
initialised to the method's untrained default (the random ternary projection of its ``seed``, so step 0 is the
training-free method), attached to the layer as :data:`~sparseattn.models.layer.DETECTOR` (the method reads it
as ``side.detector``), and trained by :func:`detection_loss` on the layer's detached Q and K over the valid
pairs. Difference from the paper, stated: Q and K are detached, so the detection loss shapes the detector only,
not the model's projections.

Sanger's 4-bit predictor has no parameters of its own: its quantisation-aware fine-tuning is the model trained
with the 4-bit prediction's mask in the loop, which :func:`sparseattn.train.finetune` does with
``method="sanger"``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.attention import grouped_scores
from ..core.call import AttentionCall
from ..methods.dota import ternary_projection
from ..models.layer import DETECTOR
from ..models.patch import attention_layers

DETECTOR_METHODS = ("dota",)  # methods whose predictor has trainable parameters


def has_detector(method: str) -> bool:
    return method in DETECTOR_METHODS


def attach_detectors(model: Any, rank: int, seed: int) -> list[torch.nn.Parameter]:
    """Give every attention layer of ``model`` a trainable detector ``[head_dim, rank]`` initialised to DOTA's
    random ternary projection of ``seed``; returns them in layer order."""
    params = []
    for _, module in sorted(attention_layers(model).items()):
        head_dim = int(getattr(module, "head_dim", 0) or module.config.hidden_size // module.config.num_attention_heads)
        weight = next(module.parameters())
        p = torch.nn.Parameter(ternary_projection(head_dim, rank, seed).to(weight.device))
        setattr(module, DETECTOR, p)
        params.append(p)
    return params


def detectors(model: Any) -> dict[int, torch.Tensor]:
    """The attached detectors by layer index (empty when there are none)."""
    found = {i: getattr(m, DETECTOR, None) for i, m in attention_layers(model).items()}
    return {i: p for i, p in found.items() if p is not None}


def load_detectors(model: Any, tensors: dict[int, torch.Tensor]) -> None:
    """Attach ``tensors`` (layer -> ``[head_dim, rank]``) to the layers of ``model`` as frozen detectors."""
    layers = attention_layers(model)
    for i, t in tensors.items():
        weight = next(layers[i].parameters())
        setattr(layers[i], DETECTOR, torch.nn.Parameter(t.to(weight.device, torch.float32), requires_grad=False))


def detection_loss(call: AttentionCall, detector: torch.Tensor) -> torch.Tensor:
    """DOTA's detection loss of one call: mean squared error between ``scale (Q P)(K P)^T`` and the exact
    ``scale Q K^T`` over the valid pairs, Q and K detached (gradients reach only ``P``)."""
    q, k = call.q.detach().float(), call.k.detach().float()
    estimate = grouped_scores(q @ detector, k @ detector, call.scale)
    exact = grouped_scores(q, k, call.scale)
    valid = call.shape.valid_mask(q.device)
    return ((estimate - exact) ** 2)[..., valid].mean()
