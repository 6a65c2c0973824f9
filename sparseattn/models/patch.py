"""Run any sparseattn method inside a Hugging Face model, through ``transformers.AttentionInterface``.

``patch(model, "topk", ratio=0.2)`` registers one attention function under the name ``"sparseattn"`` (and
SDPA's mask builder under the same name), switches the model to it, and binds the method and its
parameters to each chosen attention layer. Layers that are not chosen run PyTorch SDPA, which is also what
they ran before when the model used SDPA. ``unpatch`` (or leaving the ``with`` block) restores the
model's previous attention implementation.

Masks and layer semantics (:mod:`.layer`): a missing mask on a causal layer, or a boolean mask equal to the
causal mask (queries are the last positions), is causal attention -- with the layer's sliding window when it has
one (the window is part of the mask: methods select inside it); an all-true mask is full attention (encoders).
Anything else (padding, packed sequences), and semantics the methods do not implement (logit soft-capping,
attention-sink logits), are refused with an error rather than silently ignored.

Gradients: in train mode gradients flow through the exact attention on the kept pairs (the selection is a
constant), so sparse fine-tuning works through the patch; a method computed on quantised operands refuses
(see :func:`sparseattn.attention`). Attention dropout is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.errors import InvalidParameterError
from ..core.workload import Workload, total
from ..methods.entry import attention
from ..methods.registry import parse_params
from .layer import attention_kind, capture_inputs, check_supported, side_inputs
from .loader import LoadedModel

ATTN_NAME = "sparseattn"
_REGISTERED = False


@dataclass
class LayerStats:
    """Kept and valid (query, key) pairs a layer saw since the last reset, over batch and heads."""

    kept: int = 0
    valid: int = 0
    calls: int = 0

    @property
    def density(self) -> float:
        return self.kept / self.valid if self.valid else float("nan")


@dataclass
class CapturedQKV:
    """Post-RoPE query, key and value of one layer call ``[B, H(kv), N, D]`` and how it was masked."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    causal: bool
    scale: float
    window: int | None = None  # the layer's sliding window, when it has one


@dataclass
class SparsePatch:
    """A method bound to a model's attention layers; see :func:`patch`."""

    model: Any
    method: str
    params: dict[str, Any]
    layers: frozenset[int]
    capture_traces: bool = False
    capture_qkv: bool = False
    previous_impl: str = "sdpa"
    stats: dict[int, LayerStats] = field(default_factory=dict)
    traces: dict[int, list[Workload]] = field(default_factory=dict)
    qkv: dict[int, list[CapturedQKV]] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # carried across layers by stateful methods
    active: bool = True

    # ------------------------------------------------------------------ results
    @property
    def kept_pairs(self) -> int:
        return sum(s.kept for s in self.stats.values())

    @property
    def valid_pairs(self) -> int:
        return sum(s.valid for s in self.stats.values())

    @property
    def density(self) -> float:
        """Kept / valid pairs over every patched layer and call since the last :meth:`reset`."""
        return self.kept_pairs / self.valid_pairs if self.valid_pairs else float("nan")

    def steps(self) -> list[Workload]:
        """One trace per forward call of the model, its layers stacked: ``steps()[0]`` is the first call (the
        prefill of ``generate()``), ``steps()[i]`` the i-th decode step. Needs ``capture_traces=True``."""
        if not self.traces:
            raise InvalidParameterError("no traces captured: patch with capture_traces=True and run the model first")
        calls = {len(ws) for ws in self.traces.values()}
        if len(calls) != 1:
            raise InvalidParameterError(f"the patched layers saw different numbers of calls {sorted(calls)}; "
                                        "traces cannot be grouped into forward steps")
        return [total(self.traces[layer][i] for layer in sorted(self.traces)) for i in range(calls.pop())]

    def workload(self, step: int | None = None) -> Workload:
        """The captured traces stacked into one (needs ``capture_traces=True``).

        After one forward pass this is that pass (every patched layer, stacked). After several passes of one shape
        (several forwards of the same length) they are stacked too. Generation gives a prefill and decode steps of
        different shapes, which cannot be stacked as layers of one shape: pass ``step`` (0 = the prefill, i = the
        i-th decode step) or use :meth:`steps` -- a mixed set is refused rather than silently truncated.
        """
        steps = self.steps()
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(steps):
                raise InvalidParameterError(f"step must be an int in 0..{len(steps) - 1}, got {step!r}")
            return steps[step]
        shapes = {w.shape.replace(layers=1) for w in steps}
        if len(shapes) > 1:
            prefill = steps[0].shape
            raise InvalidParameterError(
                f"captured {len(steps)} forward calls of different shapes (a first call of q_len {prefill.q_len} "
                f"then {len(steps) - 1} more, e.g. decode steps); use p.workload(step=0) for the first call, "
                f"p.workload(step=i) for the i-th next one, or p.steps() for all of them")
        return total(steps)

    def reset(self) -> None:
        self.stats.clear()
        self.traces.clear()
        self.qkv.clear()

    # ------------------------------------------------------------------ lifetime
    def unpatch(self) -> None:
        unpatch(self.model)

    def __enter__(self) -> SparsePatch:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active:
            self.unpatch()

    # ------------------------------------------------------------------ the attention call
    def run_layer(
        self, module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: Any, scaling: float,
        window: int | None = None,
    ) -> torch.Tensor:
        layer = int(module.layer_idx)
        causal, window = attention_kind(module, mask, query.shape[2], key.shape[2], window)
        result = attention(
            query,
            key,
            value,
            self.method,
            causal=causal,
            scale=scaling,
            window=window,
            layer=layer,
            side=side_inputs(module),
            state=self.state,
            **self.params,
        )
        s = self.stats.setdefault(layer, LayerStats())
        s.kept += result.kept_pairs
        s.valid += result.trace.shape.valid_pairs
        s.calls += 1
        if self.capture_traces:
            self.traces.setdefault(layer, []).append(result.trace)
        if self.capture_qkv:
            self.qkv.setdefault(layer, []).append(
                CapturedQKV(query.detach().clone(), key.detach().clone(), value.detach().clone(), causal, scaling,
                            window)
            )
        return result.out


def _attention_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The function registered in ``AttentionInterface``: dispatch to the layer's patch, or to SDPA."""
    binding: SparsePatch | None = getattr(module, "_sparseattn_patch", None)
    if binding is None or not binding.active or int(module.layer_idx) not in binding.layers:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    if dropout:
        raise InvalidParameterError("sparseattn methods do not implement attention dropout; call model.eval()")
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

    AttentionInterface.register(ATTN_NAME, _attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTN_NAME, sdpa_mask)
    _REGISTERED = True


def attention_layers(model: Any) -> dict[int, Any]:
    """The model's self-attention modules by layer index."""
    found: dict[int, Any] = {}
    for module in model.modules():
        idx = getattr(module, "layer_idx", None)
        if isinstance(idx, int) and type(module).__name__.endswith("Attention"):
            found[idx] = module
    if not found:
        raise InvalidParameterError(f"no attention layers with a layer_idx found in {type(model).__name__}")
    return found


def _hf_model(model: Any) -> Any:
    return model.model if isinstance(model, LoadedModel) else model


def patch(
    model: Any,
    method: str,
    layers: Iterable[int] | None = None,
    *,
    capture_traces: bool = False,
    capture_qkv: bool = False,
    **params: Any,
) -> SparsePatch:
    """Make the chosen attention layers of ``model`` (default: all) run ``method`` with ``params``.

    Accepts a transformers model or a :class:`~sparseattn.models.loader.LoadedModel`. Returns a
    :class:`SparsePatch`, also usable as a context manager. ``capture_traces`` keeps each layer call's
    :class:`~sparseattn.core.workload.Workload`; ``capture_qkv`` keeps copies of its post-RoPE Q, K, V.
    """
    model = _hf_model(model)
    parse_params(method, params)  # fail now, not inside the forward pass
    modules = attention_layers(model)
    if layers is None:
        chosen = frozenset(modules)
    else:
        layers = list(layers)
        odd = [i for i in layers if isinstance(i, bool) or not isinstance(i, int)]
        if odd:
            raise InvalidParameterError(f"layers must be ints (layer indices), got {odd!r}")
        chosen = frozenset(layers)
        bad = sorted(chosen - set(modules))
        if bad or not chosen:
            raise InvalidParameterError(
                f"layers {bad or '(empty)'} not in the model's attention layers 0..{max(modules)}"
            )
    if any(getattr(m, "_sparseattn_patch", None) is not None for m in modules.values()):
        raise InvalidParameterError("this model is already patched; unpatch it first")
    _register()
    p = SparsePatch(
        model=model,
        method=method,
        params=dict(params),
        layers=chosen,
        capture_traces=capture_traces,
        capture_qkv=capture_qkv,
        previous_impl=model.config._attn_implementation,
    )
    p.state["num_layers"] = len(modules)
    for m in modules.values():
        m._sparseattn_patch = p
        m._sparseattn_hook = m.register_forward_pre_hook(capture_inputs, with_kwargs=True)
    model.set_attn_implementation(ATTN_NAME)
    return p


def unpatch(model: Any) -> None:
    """Restore the model's previous attention implementation and drop the method bindings."""
    model = _hf_model(model)
    previous = None
    for m in attention_layers(model).values():
        binding = getattr(m, "_sparseattn_patch", None)
        if binding is not None:
            previous = binding.previous_impl
            binding.active = False
            m._sparseattn_patch = None
            m._sparseattn_hook.remove()
            m._sparseattn_hook = m._sparseattn_inputs = None
    if previous is not None:
        model.set_attn_implementation(previous)
