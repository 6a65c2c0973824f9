"""SpAtten (HPCA'21): cascade token and head pruning with progressive quantisation.

* **Cascade token pruning.** A key token's importance is the attention probability it has received, summed
  over queries and heads and accumulated over the layers so far. Each layer keeps the most important of the
  tokens still alive -- layer ``l`` of ``L`` keeps ``1 - (1 - token_keep) * l / (L - 1)`` of all tokens, so the
  last layer keeps ``token_keep`` -- and a pruned token stays pruned in every later layer. The first layer
  prunes nothing (no importance yet). A causal row always keeps its own token.
* **Cascade head pruning.** A head's importance is the L1 norm of its attention output, accumulated over
  layers; each layer keeps the ``head_keep`` fraction of the still-alive query heads with the largest
  importance (pruned heads output zeros, in this and every later layer). Off by default (``head_keep=1``).
* **Progressive quantisation.** Q and K are ``total_bits`` integers, but K is fetched MSB-first: attention is
  first computed with K's top ``msb_bits`` only; rows whose largest probability is below ``lsb_threshold``
  (a flat distribution, sensitive to error) re-fetch the LSBs and are recomputed at full width. Rows with a
  dominant key keep the MSB-only result.

State across layers lives in the ``state`` dict the Hugging Face patch passes (``num_layers`` is filled in
there); a call without one prunes straight to ``token_keep`` from its own attention. A new prefill resets the
state; decode steps extend it with the new tokens. SpAtten is evaluated without fine-tuning here.

Trace: selection = accumulating importance (one add per kept pair, D adds per head row), the top-k engine
(streaming model of :func:`~sparseattn.methods.common.streaming_topk_compares`); QK = ``msb_bits``-bit MACs on
every kept pair plus ``total_bits``-bit MACs for re-fetched rows; softmax and PV at ``formal_bits``. Extra
DRAM reads: the LSBs of the keys re-fetched rows attend to.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, model_validator

from ..core.attention import attend_kept, formal_workload
from ..core.quant import quantize_symmetric
from ..core.result import SparseResult
from ..core.shape import valid_mask
from ..core.workload import Per
from .common import grouped_int_logits, streaming_topk_compares
from .pade.bui import truncated_keys
from .registry import AttentionCall, MethodParams, register


class SpAttenParams(MethodParams):
    token_keep: float = Field(0.5, gt=0, le=1, description="fraction of tokens alive at the last layer")
    head_keep: float = Field(1.0, gt=0, le=1, description="fraction of heads alive at the last layer")
    total_bits: int = Field(12, ge=2, le=16, description="full width of Q and K")
    msb_bits: int = Field(6, ge=1, le=16, description="K bits fetched first")
    lsb_threshold: float = Field(0.1, ge=0, le=1, description="re-fetch LSBs when a row's max probability is below")
    formal_bits: int = Field(16, ge=4, le=32, description="operand width of softmax and PV")

    @model_validator(mode="after")
    def _bits(self) -> SpAttenParams:
        if self.msb_bits > self.total_bits:
            raise ValueError(f"msb_bits ({self.msb_bits}) cannot exceed total_bits ({self.total_bits})")
        return self


def _schedule(keep: float, layer: int | None, layers: int | None) -> float:
    """Fraction of tokens (or heads) alive at ``layer``: linear from 1 at the first layer to ``keep`` at the last."""
    if layer is None or layers is None or layers < 2:
        return keep
    return 1 - (1 - keep) * min(layer, layers - 1) / (layers - 1)


def _prune(alive: torch.Tensor, importance: torch.Tensor, target: int) -> torch.Tensor:
    """Keep the ``target`` most important of the alive entries along the last dim (per batch row)."""
    if int(alive.sum(dim=-1).max()) <= target:
        return alive
    ranked = importance.masked_fill(~alive, float("-inf"))
    top = torch.topk(ranked, target, dim=-1).indices
    return torch.zeros_like(alive).scatter(-1, top, True) & alive


@register("spatten", SpAttenParams, "SpAtten: cascade token/head pruning, progressive quantisation (HPCA'21)")
def spatten(call: AttentionCall, p: SpAttenParams) -> SparseResult:
    if call.state is not None:
        return _spatten(call, p, call.state, fresh=True)
    state: dict = {}
    _spatten(call, p, state, fresh=True)  # a standalone call: importance from its own unpruned attention
    return _spatten(call, p, state, fresh=False)


def _spatten(call: AttentionCall, p: SpAttenParams, state: dict, fresh: bool) -> SparseResult:
    shape, dev = call.shape, call.q.device
    b, h, nq, nk, d = shape.batch, shape.heads, shape.q_len, shape.k_len, shape.head_dim
    new_pass = "tokens" not in state or (fresh and (call.layer is None or call.layer <= state.get("last_layer", -1)))
    if new_pass and (nq == nk or "tokens" not in state or state["tokens"].shape[0] != b):
        state.update(
            tokens=torch.ones(b, nk, dtype=torch.bool, device=dev),
            token_imp=None,
            heads=torch.ones(b, h, dtype=torch.bool, device=dev),
            head_imp=None,
        )
    state["last_layer"] = -1 if call.layer is None else call.layer
    tokens = state["tokens"]
    if tokens.shape[1] < nk:  # decode: new tokens arrive alive
        grow = nk - tokens.shape[1]
        tokens = torch.cat([tokens, torch.ones(b, grow, dtype=torch.bool, device=dev)], dim=1)
        if state["token_imp"] is not None:
            state["token_imp"] = torch.cat([state["token_imp"], torch.zeros(b, grow, device=dev)], dim=1)
    layers = state.get("num_layers")
    top_k_work = 0.0
    if state["token_imp"] is not None:
        target = max(1, math.ceil(_schedule(p.token_keep, call.layer, layers) * nk))
        top_k_work += float(streaming_topk_compares(tokens.sum(-1), torch.tensor(target)).sum())
        tokens = _prune(tokens, state["token_imp"], target)
    heads = state["heads"]
    if state["head_imp"] is not None and p.head_keep < 1:
        target_h = max(1, math.ceil(_schedule(p.head_keep, call.layer, layers) * h))
        top_k_work += float(streaming_topk_compares(heads.sum(-1), torch.tensor(target_h)).sum())
        heads = _prune(heads, state["head_imp"], target_h)

    valid = valid_mask(nq, nk, shape.causal, dev)
    keep = valid[None, None] & tokens[:, None, None, :]
    if shape.causal:  # a row always sees its own token
        own = torch.arange(nq, device=dev) + (nk - nq)
        keep[..., torch.arange(nq, device=dev), own] = True
    keep = (keep & heads[:, :, None, None]).expand(b, h, nq, nk).clone()

    qq = quantize_symmetric(call.q, p.total_bits)
    kq = quantize_symmetric(call.k, p.total_bits)
    k_msb = type(kq)(truncated_keys(kq.values, p.total_bits, p.msb_bits), kq.scale, p.total_bits)
    msb = grouped_int_logits(qq, k_msb, 0, nq, nk, h, call.scale)
    alive_rows = keep.any(dim=-1, keepdim=True)
    probs_msb = torch.softmax(msb.masked_fill(~keep, float("-inf")), dim=-1).nan_to_num(0.0)
    refetch = (probs_msb.amax(dim=-1, keepdim=True) < p.lsb_threshold) & alive_rows
    if p.msb_bits < p.total_bits and bool(refetch.any()):
        full = grouped_int_logits(qq, kq, 0, nq, nk, h, call.scale)
        logits = torch.where(refetch, full, msb)
    else:
        logits, refetch = msb, torch.zeros_like(refetch)
    safe_keep = keep | ~alive_rows  # pruned heads: any finite softmax, zeroed below
    out = attend_kept(logits.clone(), safe_keep, call.v.float(), torch.float32)
    out = (out * alive_rows).to(call.q.dtype)

    probs = torch.softmax(logits.masked_fill(~safe_keep, float("-inf")), dim=-1) * alive_rows
    imp = probs.sum(dim=(1, 2))  # [B, Nk]
    state["token_imp"] = imp if state["token_imp"] is None else state["token_imp"] + imp
    himp = out.float().abs().sum(dim=(2, 3))
    state["head_imp"] = himp if state["head_imp"] is None else state["head_imp"] + himp
    state["tokens"], state["heads"] = tokens, heads

    w = formal_workload(shape, keep, p.formal_bits, "spatten", p.model_dump())
    kept = float(keep.sum())
    refetched_pairs = float((keep & refetch).sum())
    w.drop("qk", "mac", p.formal_bits)  # QK runs at msb_bits, and at total_bits for re-fetched rows
    w.add("qk", "mac", p.msb_bits, kept * d, Per.PAIR_DIM)
    if refetched_pairs:
        w.add("qk", "mac", p.total_bits, refetched_pairs * d, Per.PAIR_DIM)
    w.add("select", "add", 16, kept, Per.PAIR)  # token importance
    w.add("select", "add", 16, float(shape.rows) * d, Per.ROW_DIM)  # head importance
    w.add("select", "compare", 16, top_k_work, Per.KEY)
    w.add_read("lsb_refetch", refetched_pairs * d * (p.total_bits - p.msb_bits) / 8, Per.PAIR_DIM)
    w.meta.update(
        {
            "tokens_alive": float(tokens.float().mean()),
            "heads_alive": float(heads.float().mean()),
            "refetch_rows": float(refetch.float().mean()),
            "layer": call.layer,
        }
    )
    return SparseResult(out=out, keep=keep, trace=w)
