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

Steps: ``prepare`` applies the cascade (the prediction from earlier layers' importance), ``predict`` scores with the
keys' MSBs, ``select`` keeps the alive tokens of the alive heads, ``attend`` re-fetches the LSBs of flat rows and
accumulates this layer's importance into the state. One block holds every row (pruning is per call).

Trace: selection = accumulating importance (one ``aux_bits`` add per kept pair, D adds per head row), the top-k
engine (streaming model of :func:`~sparseattn.methods.common.streaming_topk_compares`); QK = ``msb_bits``-bit MACs
on every kept pair plus ``total_bits``-bit MACs for re-fetched rows; softmax and PV at ``formal_bits``. Extra
DRAM reads: the LSBs of the keys re-fetched rows attend to, once per tile of ``fetch_rows`` query rows (and the
query heads of a GQA group) that needs them (:func:`~sparseattn.methods.energon.tile_shared`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from pydantic import Field, model_validator

from ..core.attention import attend_kept, formal_workload
from ..core.bits import truncated_keys
from ..core.call import AttentionCall
from ..core.driver import Method, RowBlock, Tally, run_method
from ..core.errors import InvalidInputError
from ..core.quant import QuantizedTensor, quantize_symmetric
from ..core.result import SparseResult
from ..core.workload import Per, Workload
from .common import BaselineParams, grouped_int_logits, streaming_topk_compares
from .energon import tile_shared
from .registry import Knob, register


class SpAttenParams(BaselineParams):
    token_keep: float = Field(0.5, gt=0, le=1, description="fraction of tokens alive at the last layer")
    head_keep: float = Field(1.0, gt=0, le=1, description="fraction of heads alive at the last layer")
    total_bits: int = Field(12, ge=2, le=16, description="full width of Q and K")
    msb_bits: int = Field(6, ge=1, le=16, description="K bits fetched first")
    lsb_threshold: float = Field(0.1, ge=0, le=1, description="re-fetch LSBs when a row's max probability is below")
    fetch_rows: int = Field(16, ge=1, description="query rows sharing one fetch of a key's LSBs")

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


@dataclass
class _Cascade:
    """What survives into this layer, and the quantised operands of progressive quantisation."""

    state: dict  # carried across layers: tokens, heads, their importance
    tokens: torch.Tensor  # bool [B, Nk] alive in this layer
    heads: torch.Tensor  # bool [B, H]
    top_k_work: float  # comparisons of this layer's top-k engine
    q: QuantizedTensor
    k: QuantizedTensor
    k_msb: QuantizedTensor


def _start_pass(state: dict, call: AttentionCall, fresh: bool) -> None:
    """Reset the state at a new prefill (a layer index at or below the last one seen, or no state yet)."""
    s, dev = call.shape, call.q.device
    new_pass = "tokens" not in state or (fresh and (call.layer is None or call.layer <= state.get("last_layer", -1)))
    if new_pass and (s.q_len == s.k_len or "tokens" not in state or state["tokens"].shape[0] != s.batch):
        state.update(tokens=torch.ones(s.batch, s.k_len, dtype=torch.bool, device=dev), token_imp=None,
                     heads=torch.ones(s.batch, s.heads, dtype=torch.bool, device=dev), head_imp=None)
    state["last_layer"] = -1 if call.layer is None else call.layer


def _grown_tokens(state: dict, k_len: int) -> torch.Tensor:
    """Alive tokens, extended by the new tokens of a decode step (they arrive alive, with no importance)."""
    tokens = state["tokens"]
    grow = k_len - tokens.shape[1]
    if grow > 0:
        tokens = torch.cat([tokens, tokens.new_ones(tokens.shape[0], grow)], dim=1)
        if state["token_imp"] is not None:
            state["token_imp"] = torch.cat([state["token_imp"], state["token_imp"].new_zeros(tokens.shape[0], grow)],
                                           dim=1)
    return tokens


def _cascade(state: dict, call: AttentionCall, p: SpAttenParams) -> tuple[torch.Tensor, torch.Tensor, float]:
    """This layer's alive tokens and heads after cascade pruning, and the top-k engine's comparisons."""
    s = call.shape
    tokens, heads, layers, work = _grown_tokens(state, s.k_len), state["heads"], state.get("num_layers"), 0.0
    if state["token_imp"] is not None:
        target = max(1, math.ceil(_schedule(p.token_keep, call.layer, layers) * s.k_len))
        work += float(streaming_topk_compares(tokens.sum(-1), torch.tensor(target)).sum())
        tokens = _prune(tokens, state["token_imp"], target)
    if state["head_imp"] is not None and p.head_keep < 1:
        target_h = max(1, math.ceil(_schedule(p.head_keep, call.layer, layers) * s.heads))
        work += float(streaming_topk_compares(heads.sum(-1), torch.tensor(target_h)).sum())
        heads = _prune(heads, state["head_imp"], target_h)
    return tokens, heads, work


def _accumulate(state: dict, probs: torch.Tensor, out: torch.Tensor) -> None:
    """Token importance += attention probability received; head importance += |output| (cascade inputs)."""
    imp, himp = probs.sum(dim=(1, 2)), out.float().abs().sum(dim=(2, 3))
    state["token_imp"] = imp if state["token_imp"] is None else state["token_imp"] + imp
    state["head_imp"] = himp if state["head_imp"] is None else state["head_imp"] + himp


@dataclass
class SpAttenCounts:
    """What SpAtten's steps count: kept pairs whose LSBs are re-fetched, the rows that re-fetch, LSB fetches."""

    refetched_pairs: float = 0.0
    refetch_rows: float = 0.0
    lsb_fetches: float = 0.0


@register("spatten", SpAttenParams, "SpAtten: cascade token/head pruning, progressive quantisation (HPCA'21)",
          (Knob("token_keep", 0.05, 1.0, "up", "linear", source="the parameter's range (0, 1]"),))
class SpAtten(Method):
    counts = SpAttenCounts

    fresh = True  # a call that starts from the caller's state (False: the second pass of a standalone call)

    def run(self, call: AttentionCall) -> SparseResult:
        """With the caller's state: one pass. Standalone: importance from its own unpruned attention first."""
        if call.state is not None:
            return run_method(self, call)
        alone = dataclasses.replace(call, state={})
        run_method(self, alone)
        self.fresh = False
        return run_method(self, alone)

    def block_rows(self, call: AttentionCall) -> int:
        return call.shape.q_len

    def check_differentiable(self) -> None:
        raise InvalidInputError("spatten scores with progressively quantised keys (MSBs, then LSBs), whose rounding "
                                "has no useful gradient; gradients are refused rather than silently zero")

    def prepare(self, call: AttentionCall) -> _Cascade:
        state, p = call.state, self.p
        _start_pass(state, call, self.fresh)
        tokens, heads, work = _cascade(state, call, p)
        qq, kq = quantize_symmetric(call.q, p.total_bits), quantize_symmetric(call.k, p.total_bits)
        k_msb = QuantizedTensor(truncated_keys(kq.values, p.total_bits, p.msb_bits), kq.scale, p.total_bits)
        return _Cascade(state, tokens, heads, work, qq, kq, k_msb)

    def predict(self, c: _Cascade, block: RowBlock, tally: Tally[SpAttenCounts]) -> torch.Tensor:
        s = block.call.shape
        return grouped_int_logits(c.q, c.k_msb, 0, s.q_len, s.k_len, s.heads, block.call.scale)

    def select(self, c: _Cascade, block: RowBlock, msb: torch.Tensor, tally: Tally[SpAttenCounts]) -> torch.Tensor:
        s, dev = block.call.shape, block.call.q.device
        keep = block.valid[None, None] & c.tokens[:, None, None, :]
        if s.causal:  # a row always sees its own token
            rows = torch.arange(s.q_len, device=dev)
            keep[..., rows, rows + s.k_len - s.q_len] = True
        return (keep & c.heads[:, :, None, None]).expand(s.batch, s.heads, s.q_len, s.k_len).clone()

    def attend(self, c: _Cascade, block: RowBlock, msb: torch.Tensor, keep: torch.Tensor, tally: Tally[SpAttenCounts]):
        call, p = block.call, self.p
        alive_rows = keep.any(dim=-1, keepdim=True)
        probs_msb = torch.softmax(msb.masked_fill(~keep, float("-inf")), dim=-1).nan_to_num(0.0)
        refetch = (probs_msb.amax(dim=-1, keepdim=True) < p.lsb_threshold) & alive_rows
        logits = msb
        if p.msb_bits < p.total_bits and bool(refetch.any()):
            s = call.shape
            logits = torch.where(refetch, grouped_int_logits(c.q, c.k, 0, s.q_len, s.k_len, s.heads, call.scale), msb)
        else:
            refetch = torch.zeros_like(refetch)
        safe_keep = keep | ~alive_rows  # pruned heads: any finite softmax, zeroed below
        out = attend_kept(logits.clone(), safe_keep, call.v.float(), torch.float32) * alive_rows
        _accumulate(c.state, torch.softmax(logits.masked_fill(~safe_keep, float("-inf")), dim=-1) * alive_rows, out)
        c.state["tokens"], c.state["heads"] = c.tokens, c.heads
        tally.add(refetched_pairs=(keep & refetch).sum(), refetch_rows=refetch.float().mean(),
                  lsb_fetches=tile_shared(keep & refetch, call.shape.group_size, p.fetch_rows))
        return out.to(call.q.dtype)

    def count(self, c: _Cascade, call: AttentionCall, keep: torch.Tensor, tally: Tally[SpAttenCounts]) -> Workload:
        shape, p, d = call.shape, self.p, call.shape.head_dim
        w = formal_workload(shape, keep, p.formal_bits, self.name, p.model_dump())
        kept, refetched = float(keep.sum()), tally["refetched_pairs"]
        w.drop("qk", "mac", p.formal_bits)  # QK runs at msb_bits, and at total_bits for re-fetched rows
        w.add("qk", "mac", p.msb_bits, kept * d, Per.PAIR_DIM)
        if refetched:
            w.add("qk", "mac", p.total_bits, refetched * d, Per.PAIR_DIM)
        w.add("select", "add", p.aux_bits, kept, Per.PAIR)  # token importance
        w.add("select", "add", p.aux_bits, float(shape.rows) * d, Per.ROW_DIM)  # head importance
        w.add("select", "compare", p.aux_bits, c.top_k_work, Per.KEY)
        w.add_read("lsb_refetch", tally["lsb_fetches"] * d * (p.total_bits - p.msb_bits) / 8, Per.PAIR_DIM)
        w.meta.update({"tokens_alive": float(c.tokens.float().mean()), "heads_alive": float(c.heads.float().mean()),
                       "refetch_rows": tally["refetch_rows"], "layer": call.layer})
        return w
