"""The entry points of the methods: ``attention(q, k, v, method=...) -> SparseResult`` and ``select(q, k,
method=...) -> Selection`` (the kept pairs alone), plus the method listing.

:mod:`sparseattn.api` re-exports them as the public API; code inside the package (models, eval, dse, cli) imports
them from here, so no layer below ``api`` imports it (DESIGN.md, "Rooms and doors")."""

from __future__ import annotations

from typing import Any

import torch

from ..core.call import AttentionCall
from ..core.driver import select_pairs
from ..core.errors import InvalidParameterError
from ..core.result import SparseResult
from ..core.selection import Selection
from ..core.side import SideInputs
from ..core.validation import validate_qkv
from . import registry
from .registry import MethodInfo


def _call(q, k, v, method, causal, scale, window, layer, side, state, params) -> tuple[registry.MethodSpec, Any,
                                                                                      AttentionCall]:
    spec = registry.get_method(method)
    shape, scale = validate_qkv(q, k, v, causal, scale, window)
    p = registry.parse_params(method, params)
    if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
        raise InvalidParameterError(f"layer must be a non-negative int or None, got {layer!r}")
    if side is not None and not isinstance(side, SideInputs):
        raise InvalidParameterError(f"side must be a SideInputs or None, got {type(side).__name__}")
    if state is not None and not isinstance(state, dict):
        raise InvalidParameterError(f"state must be a dict or None, got {type(state).__name__}")
    # contiguous [B, H, N, D]: a model's transposed views halve the speed of every reference
    q, k, v = (x.contiguous() for x in (q, k, v))
    return spec, p, AttentionCall(q=q, k=k, v=v, shape=shape, scale=scale, layer=layer, side=side, state=state)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    /,
    method: str = "dense",
    *,
    causal: bool = False,
    scale: float | None = None,
    window: int | None = None,
    layer: int | None = None,
    side: SideInputs | None = None,
    state: dict | None = None,
    **params: Any,
) -> SparseResult:
    """Run ``method`` on ``q [B, H, Nq, D]``, ``k, v [B, Hkv, Nk, D]``.

    ``q``, ``k`` and ``v`` are positional-only, so a method parameter may be called ``k`` (top-k's count).

    Args:
        method: a registered method name (see :func:`list_methods`).
        causal: queries are the last ``Nq`` positions and see only keys at or before their position.
        scale: logit scale, default ``1/sqrt(D)``.
        window: a sliding window (causal only): a query sees at most the last ``window`` keys, itself included
            (Hugging Face's ``sliding_window``); methods select inside it and traces count only pairs inside it.
        layer: index of the model layer this call belongs to; selects the entry of per-layer parameters.
        side: tensors beyond Q, K, V that some methods use (SOFA's cross-phase prediction).
        state: a dict the caller keeps across the layers of one model (SpAtten's cascade pruning); the
            Hugging Face patch passes one per patched model.
        **params: the method's parameters; unknown names or out-of-range values raise ``ValueError``.

    Returns:
        :class:`~sparseattn.core.result.SparseResult` with the output, the kept-pair mask and the trace.

    Gradients: when ``q``, ``k`` or ``v`` requires grad (and grad mode is on), gradients flow through the exact
    attention on the kept pairs, the selection being a constant (what sparse fine-tuning needs); a method whose
    output is computed from quantised operands (``pade`` with ``formal="int8"``, ``dense_int8``, ``spatten``)
    refuses such inputs with an error instead of returning zero gradients.
    """
    spec, p, call = _call(q, k, v, method, causal, scale, window, layer, side, state, params)
    runner = spec.factory(p)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        runner.check_differentiable()
        return runner.run(call)
    with torch.no_grad():
        return runner.run(call)


def select(
    q: torch.Tensor,
    k: torch.Tensor,
    /,
    method: str,
    *,
    causal: bool = False,
    scale: float | None = None,
    window: int | None = None,
    layer: int | None = None,
    side: SideInputs | None = None,
    **params: Any,
) -> Selection:
    """Only the selection of ``method``: which pairs it keeps (and their predicted scores), without computing
    attention. ``Selection.blocks(bq, bk)`` gives the compact per-query-block key-block lists a block-sparse
    kernel or FlexAttention's ``BlockMask.from_kv_blocks`` takes. Stateful methods (SpAtten) select from a fresh
    state."""
    spec, p, call = _call(q, k, k, method, causal, scale, window, layer, side, None, params)
    with torch.no_grad():
        return select_pairs(spec.factory(p), call)


def list_methods() -> dict[str, MethodInfo]:
    """Every registered method with its summary and parameters (name, type, default, range, meaning)."""
    return {name: registry.describe(registry.get_method(name)) for name in registry.method_names()}
