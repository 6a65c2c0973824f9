"""Side inputs: tensors some methods need beyond Q, K and V.

SOFA's cross-phase prediction estimates keys from the layer input ``X`` and the key projection ``W_k``, and must
then transform them exactly as the model transforms its keys (bias, a per-head or whole-vector key norm as in
Qwen3, OLMo2 and Gemma 3, rotary embedding), so a caller that has them -- the Hugging Face integration does --
passes a :class:`SideInputs` to :func:`sparseattn.attention`. Methods that do not need it ignore it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from .errors import InvalidInputError
from .validation import check_tensor


@dataclass(frozen=True)
class SideInputs:
    """Optional per-call tensors.

    Attributes:
        x: layer input the keys are projected from, ``[B, Nk, hidden]`` (after the layer's input norm).
        w_k: key projection weight ``[kv_heads * head_dim, hidden]`` (``nn.Linear`` layout).
        b_k: key projection bias ``[kv_heads * head_dim]`` or ``None``.
        rope_cos, rope_sin: rotary tables ``[B, Nk, head_dim]`` in Hugging Face's ``rotate_half``
            convention, or ``None`` when the model has no rotary embedding.
        k_norm: the model's key normalisation (a callable, e.g. its RMSNorm module), applied after the projection
            and bias and before the rotation, or ``None``.
        k_norm_over: what ``k_norm`` normalises: ``"head"`` (each head's ``[head_dim]`` vector: Qwen3, Gemma 3)
            or ``"all"`` (the whole ``[kv_heads * head_dim]`` projection: OLMo2).
        detector: a learned low-rank detector projection ``[head_dim, rank]`` of this layer (DOTA's, trained by
            :mod:`sparseattn.train`), or ``None`` (the method's untrained default).
    """

    x: torch.Tensor | None = None
    w_k: torch.Tensor | None = None
    b_k: torch.Tensor | None = None
    rope_cos: torch.Tensor | None = None
    rope_sin: torch.Tensor | None = None
    k_norm: Callable[[torch.Tensor], torch.Tensor] | None = None
    k_norm_over: Literal["head", "all"] | None = None
    detector: torch.Tensor | None = None

    def key_projection(self, batch: int, k_len: int, kv_heads: int, head_dim: int) -> SideInputs:
        """Check that ``x`` and ``w_k`` are present and consistent with the attention shape."""
        if self.x is None or self.w_k is None:
            raise InvalidInputError("this method needs side inputs x and w_k (the layer input and key projection)")
        check_tensor("side.x", self.x, rank=3)
        check_tensor("side.w_k", self.w_k, rank=2)
        b, n, hidden = self.x.shape
        if (b, n) != (batch, k_len):
            raise InvalidInputError(
                f"side.x must be [batch={batch}, k_len={k_len}, hidden], got {tuple(self.x.shape)}; "
                "cross-phase prediction needs the input of every key (decoding with a KV cache is not supported)"
            )
        if tuple(self.w_k.shape) != (kv_heads * head_dim, hidden):
            raise InvalidInputError(
                f"side.w_k must be [kv_heads*head_dim={kv_heads * head_dim}, hidden={hidden}], "
                f"got {tuple(self.w_k.shape)}"
            )
        if self.b_k is not None:
            check_tensor("side.b_k", self.b_k, rank=1)
            if self.b_k.shape[0] != kv_heads * head_dim:
                raise InvalidInputError(f"side.b_k must have {kv_heads * head_dim} entries, got {self.b_k.shape[0]}")
        if self.k_norm is not None and self.k_norm_over not in ("head", "all"):
            raise InvalidInputError(f"side.k_norm_over must be 'head' or 'all' with a k_norm, got {self.k_norm_over!r}")
        if (self.rope_cos is None) != (self.rope_sin is None):
            raise InvalidInputError("give both rope_cos and rope_sin, or neither")
        if self.rope_cos is not None:
            for name, t in (("side.rope_cos", self.rope_cos), ("side.rope_sin", self.rope_sin)):
                check_tensor(name, t, rank=3)
                if tuple(t.shape) != (batch, k_len, head_dim):
                    raise InvalidInputError(f"{name} must be [{batch}, {k_len}, {head_dim}], got {tuple(t.shape)}")
        return self


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Hugging Face's rotary helper: ``[x1, x2] -> [-x2, x1]`` over the last dim."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate keys ``[B, Hkv, N, D]`` with tables ``[B, N, D]`` (``k*cos + rotate_half(k)*sin``)."""
    return k * cos[:, None] + rotate_half(k) * sin[:, None]
