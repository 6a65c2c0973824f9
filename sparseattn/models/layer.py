"""What a Hugging Face attention layer applies to its queries and keys, read off the module and its call.

Our methods receive the layer's final Q, K and V through ``AttentionInterface`` (after its q/k norms and rotary
embedding), so Q-side transforms are honoured by construction. What must be read off the layer:

* **the mask** -- causal, bidirectional, or causal with a *sliding window* (Mistral; Gemma 2/3 and Qwen3 local
  layers: the layer's ``sliding_window``, passed by the model as a keyword): :func:`attention_kind`. Anything
  else (padding, packed sequences) is refused;
* **the K-side path** for SOFA's cross-phase key prediction, which regenerates keys from the layer input and must
  apply the same transforms: projection (``k_proj``, or BERT's ``key``), bias, key norm over each head (Qwen3,
  Gemma 3) or over the whole projection (OLMo2), rotary tables (:func:`side_inputs`). A model whose key path we do
  not know (fused QKV projections, clipping) gets no side inputs, and cross-phase prediction then refuses;
* **semantics our methods do not implement** -- logit soft-capping (Gemma 2), attention-sink logits (``s_aux``):
  refused with an error naming the layer (:func:`check_supported`) rather than computing a different attention.
  The attention scale the model passes (``scaling``, e.g. Gemma's ``query_pre_attn_scalar``) is used as given.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.errors import InvalidInputError
from ..core.shape import valid_mask
from ..core.side import SideInputs

# keyword arguments a model may pass to its attention function that change what attention computes
UNSUPPORTED = {
    "softcap": "logit soft-capping (tanh(s / c) * c)",
    "s_aux": "attention-sink logits (s_aux)",
}
KEY_PROJECTIONS = ("k_proj", "key")  # Llama-family and BERT-family names of the separate key projection
DETECTOR = "sparseattn_detector"  # a learned detector projection sparseattn.train attaches to a layer (DOTA)


def check_supported(module: Any, kwargs: dict[str, Any]) -> None:
    """Refuse a call whose keyword arguments ask for attention semantics sparseattn does not implement."""
    for name, what in UNSUPPORTED.items():
        if kwargs.get(name) is not None:
            raise InvalidInputError(
                f"layer {getattr(module, 'layer_idx', '?')} ({type(module).__name__}) uses {what}, "
                f"{name}={kwargs[name]!r}; sparseattn's methods do not implement it, so the layer is refused "
                f"rather than computed differently (patch other layers, or a model without it)")


def attention_kind(module: Any, mask: Any, q_len: int, k_len: int, window: int | None) -> tuple[bool, int | None]:
    """``(causal, window)`` of a call from its SDPA-style mask and the layer's sliding window; anything but
    causal (optionally windowed) or full attention is refused."""
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise InvalidInputError(f"layer {getattr(module, 'layer_idx', '?')} passed sliding_window={window!r}")
    if window is not None and window >= k_len:
        window = None  # the window covers every key of this call: plain causal attention
    if mask is None:
        causal = bool(getattr(module, "is_causal", False))
        if causal and q_len > k_len:
            raise InvalidInputError(f"causal layer got q_len={q_len} > k_len={k_len}")
        return causal, window if causal else None
    if not isinstance(mask, torch.Tensor):
        raise InvalidInputError(f"unsupported attention mask type {type(mask).__name__}")
    allowed = mask if mask.dtype == torch.bool else mask == 0
    if allowed.shape[-2:] != (q_len, k_len):
        raise InvalidInputError(f"attention mask ends in {tuple(allowed.shape[-2:])}, expected {(q_len, k_len)}")
    if bool(allowed.all()) and window is None:
        return False, None
    if q_len <= k_len and bool((allowed == valid_mask(q_len, k_len, True, allowed.device, window)).all()):
        return True, window
    what = f"causal with a sliding window of {window}" if window else "causal or full"
    raise InvalidInputError(
        f"sparseattn supports {what} attention masks; this mask of layer {getattr(module, 'layer_idx', '?')} has "
        "padding or another pattern (run one unpadded sequence per batch entry)")


def _key_norm(module: Any, proj: Any) -> tuple[Any, str | None]:
    """The layer's key norm and what it normalises (``"head"`` or ``"all"``), or ``(None, None)``."""
    norm = getattr(module, "k_norm", None)
    if norm is None:
        return None, None
    weight = getattr(norm, "weight", None)
    size = int(weight.shape[0]) if weight is not None else None
    head_dim = getattr(module, "head_dim", None) or getattr(module, "attention_head_size", None)
    if size is not None and size == head_dim:
        return norm, "head"
    if size is not None and size == proj.weight.shape[0]:
        return norm, "all"
    return None, "unknown"


def side_inputs(module: Any) -> SideInputs | None:
    """The layer input, key projection and K-side transforms captured for this call (SOFA's cross-phase
    prediction), and the layer's learned detector when :mod:`sparseattn.train` attached one (DOTA); ``None`` when
    there is neither a key path we know how to reproduce nor a detector."""
    captured = getattr(module, "_sparseattn_inputs", None)
    detector = getattr(module, DETECTOR, None)
    only_detector = SideInputs(detector=detector) if detector is not None else None
    proj = next((getattr(module, n) for n in KEY_PROJECTIONS if isinstance(getattr(module, n, None),
                                                                          torch.nn.Linear)), None)
    if captured is None or proj is None:
        return only_detector
    norm, over = _key_norm(module, proj)
    config = getattr(module, "config", None)
    if over == "unknown" or getattr(config, "clip_qkv", None):
        return only_detector  # a key transform we cannot reproduce: cross-phase prediction refuses
    hidden, rope = captured
    cos, sin = rope if isinstance(rope, tuple) and len(rope) == 2 else (None, None)
    return SideInputs(x=hidden, w_k=proj.weight, b_k=proj.bias, rope_cos=cos, rope_sin=sin, k_norm=norm,
                      k_norm_over=over, detector=detector)


def capture_inputs(module: Any, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook: keep the attention module's input and rotary tables for this call."""
    hidden = kwargs.get("hidden_states", args[0] if args else None)
    module._sparseattn_inputs = (hidden, kwargs.get("position_embeddings"))
