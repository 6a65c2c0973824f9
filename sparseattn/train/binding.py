"""A method bound to a model's attention layers for training: every patched layer runs the training path of
:mod:`.attend` (selection without gradient, attention over the kept pairs with it).

The same door as :func:`sparseattn.models.patch` (``transformers.AttentionInterface``, with the same mask and
layer semantics read by :mod:`sparseattn.models.layer`), under its own name ``"sparseattn_train"`` so that a
model can be fine-tuned and evaluated through the reference patch without either knowing about the other.
A layer with a learned detector (DOTA, :mod:`.detector`) also records the detection loss of the call, which the
trainer adds to the language-model loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..core.call import AttentionCall
from ..core.driver import Method
from ..core.errors import InvalidParameterError
from ..core.side import SideInputs
from ..core.validation import validate_qkv
from ..methods.registry import get_method, parse_params
from ..models.layer import attention_kind, capture_inputs, check_supported, side_inputs
from ..models.patch import LayerStats, attention_layers
from .attend import Backend, resolve_backend, train_attention

TRAIN_ATTN = "sparseattn_train"
_REGISTERED = False

DetectionLoss = Callable[[AttentionCall, torch.Tensor], torch.Tensor]  # (call, detector) -> scalar loss


@dataclass
class TrainingPatch:
    """``method`` with ``params`` in the attention layers ``layers`` of ``model`` (see :func:`bind`)."""

    model: Any
    method: str
    runner: Method
    layers: frozenset[int]
    backend: Backend = "auto"
    previous_impl: str = "sdpa"
    detection_loss: DetectionLoss | None = None
    stats: dict[int, LayerStats] = field(default_factory=dict)
    detection: list[torch.Tensor] = field(default_factory=list)  # this forward's detection losses, by layer
    state: dict[str, Any] = field(default_factory=dict)
    active: bool = True

    @property
    def density(self) -> float:
        """Kept / valid pairs over the patched layers since the last :meth:`reset`."""
        kept = sum(s.kept for s in self.stats.values())
        valid = sum(s.valid for s in self.stats.values())
        return kept / valid if valid else float("nan")

    def reset(self) -> None:
        self.stats.clear()
        self.detection.clear()

    def run_layer(self, module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: Any,
                  scaling: float, window: int | None) -> torch.Tensor:
        layer = int(module.layer_idx)
        causal, window = attention_kind(module, mask, query.shape[2], key.shape[2], window)
        shape, scale = validate_qkv(query, key, value, causal, scaling, window)
        side = side_inputs(module)
        call = AttentionCall(q=query.contiguous(), k=key.contiguous(), v=value.contiguous(), shape=shape, scale=scale,
                             layer=layer, side=_without_grad(side), state=self.state)
        out, selection = train_attention(self.runner, call, self.backend)
        s = self.stats.setdefault(layer, LayerStats())
        s.kept += int(torch.count_nonzero(selection.keep))
        s.valid += shape.valid_pairs
        s.calls += 1
        learned = side.detector if side is not None else None
        if self.detection_loss is not None and learned is not None and torch.is_grad_enabled():
            self.detection.append(self.detection_loss(call, learned))
        return out

    def unbind(self) -> None:
        unbind(self.model)


def _without_grad(side: SideInputs | None) -> SideInputs | None:
    """The side inputs the selection sees: detached (the selection is a constant of the weights)."""
    if side is None or side.detector is None:
        return side
    return replace(side, detector=side.detector.detach())


def _forward(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: Any,
             scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """The function registered in ``AttentionInterface``: the layer's training patch, or SDPA."""
    binding: TrainingPatch | None = getattr(module, "_sparseattn_train", None)
    if binding is None or not binding.active or int(module.layer_idx) not in binding.layers:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    if dropout:
        raise InvalidParameterError("sparse fine-tuning does not implement attention dropout; set the model's "
                                    "attention_dropout to 0")
    check_supported(module, kwargs)
    if scaling is None:
        scaling = float(query.shape[-1]) ** -0.5
    out = binding.run_layer(module, query, key, value, attention_mask, float(scaling), kwargs.get("sliding_window"))
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(TRAIN_ATTN, _forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(TRAIN_ATTN, sdpa_mask)
    _REGISTERED = True


def training_runner(method: str, params: dict[str, Any]) -> Method:
    """The method's steps for training: its parameters validated, and refused when its output has no useful
    gradient (computed from quantised operands)."""
    p = parse_params(method, params)
    runner = get_method(method).factory(p)
    runner.check_differentiable()
    return runner


def bind(model: Any, method: str, params: dict[str, Any], *, backend: Backend = "auto",
         detection_loss: DetectionLoss | None = None) -> TrainingPatch:
    """Run ``method`` with ``params`` in every attention layer of the transformers ``model`` on the training path.
    ``detection_loss``: called with each call and its layer's learned detector (DOTA) in grad mode."""
    runner = training_runner(method, params)
    modules = attention_layers(model)
    if any(getattr(m, "_sparseattn_train", None) is not None or getattr(m, "_sparseattn_patch", None) is not None
           for m in modules.values()):
        raise InvalidParameterError("this model is already patched; unbind or unpatch it first")
    device = next(model.parameters()).device
    if resolve_backend(backend, device) == "flex" and device.type != "cuda":
        raise InvalidParameterError(f"backend='flex' trains on CUDA only (FlexAttention has no backward on "
                                    f"{device.type}); use backend='sdpa' or 'auto'")
    _register()
    p = TrainingPatch(model=model, method=method, runner=runner, layers=frozenset(modules), backend=backend,
                      previous_impl=model.config._attn_implementation, detection_loss=detection_loss)
    p.state["num_layers"] = len(modules)
    for m in modules.values():
        m._sparseattn_train = p
        m._sparseattn_train_hook = m.register_forward_pre_hook(capture_inputs, with_kwargs=True)
    model.set_attn_implementation(TRAIN_ATTN)
    return p


def unbind(model: Any) -> None:
    """Restore the model's previous attention implementation."""
    previous = None
    for m in attention_layers(model).values():
        binding = getattr(m, "_sparseattn_train", None)
        if binding is not None:
            previous = binding.previous_impl
            binding.active = False
            m._sparseattn_train = None
            m._sparseattn_train_hook.remove()
            m._sparseattn_train_hook = m._sparseattn_inputs = None
    if previous is not None:
        model.set_attn_implementation(previous)
