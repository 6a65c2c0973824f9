"""One driver for every method: **predict -> select -> attend -> count** (DESIGN.md, "The one idea").

A method is a :class:`Method` with four small steps, run by :func:`run_method` over blocks of query rows:

* ``predict(ctx, block, tally)`` -- the cheap importance estimate of the block's (query, key) pairs (SOFA's DLZS
  scores, Sanger's 4-bit logits, PADE's bit-serial partial scores; the oracles' exact logits);
* ``select(ctx, block, prediction, tally)`` -- the kept pairs: a boolean ``[B, H, rows, width]`` mask, or a record
  whose ``keep`` is that mask and whose other fields the attend step uses (SADS's per-segment top-1/top-2). It stands
  alone (:func:`select_pairs` runs only predict and select), as FlexAttention keeps *which pairs* apart from
  *how they are computed*: a GPU kernel or a ``BlockMask`` can take any method's selection
  (:class:`~sparseattn.core.selection.Selection`);
* ``attend(ctx, block, prediction, keep, tally)`` -- exact attention on the kept pairs (the default: softmax of
  the exact logits over the kept pairs, times V);
* ``count(ctx, call, keep, tally)`` -- the trace (:class:`~sparseattn.core.workload.Workload`) from the work the
  steps recorded in the :class:`Tally`.

``prepare(call)`` builds a per-call context first (quantised tensors, hashes, cross-layer state): the part of a
predictor that looks at the whole call. Blocks follow :class:`RowBlock`: ``block_rows`` query rows (128, the
query tile of SOFA's array, by default) and only the keys a causal row of the block can reach, so the causal
upper triangle is never scored (3.6x faster than one full ``[Nq, Nk]`` slab at 2048 tokens on 2 cores).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, Generic, TypeVar

import torch

from .attention import attend_kept, grouped_scores
from .call import AttentionCall
from .memory import check_memory
from .result import SparseResult
from .selection import Selection
from .shape import chunk_valid_mask
from .workload import Workload

C = TypeVar("C")  # a method's counts (a dataclass)
Ctx = TypeVar("Ctx")  # its per-call context (prepare)
Pred = TypeVar("Pred")  # its prediction of a block (predict)
Choice = TypeVar("Choice")  # its selection of a block (select): a keep mask, or a record with a ``keep`` field


@dataclass(frozen=True)
class RowBlock:
    """Query rows ``row0 .. row1 - 1`` of a call and the keys ``0 .. width - 1`` any of them can see."""

    call: AttentionCall
    row0: int
    row1: int
    width: int

    @property
    def rows(self) -> int:
        return self.row1 - self.row0

    @cached_property
    def valid(self) -> torch.Tensor:
        """``[rows, width]`` bool: the pairs a dense computation evaluates (causal rows see a prefix)."""
        return chunk_valid_mask(self.row0, self.row1, self.width, self.call.shape, self.call.q.device)

    @property
    def q(self) -> torch.Tensor:
        return self.call.q[:, :, self.row0 : self.row1]

    @property
    def k(self) -> torch.Tensor:
        return self.call.k[:, :, : self.width]

    @property
    def v(self) -> torch.Tensor:
        return self.call.v[:, :, : self.width]

    @cached_property
    def scores(self) -> torch.Tensor:
        """Exact scaled logits ``[B, H, rows, width]`` in the compute dtype, computed once on first use."""
        return grouped_scores(self.q, self.k, self.call.scale)


def row_blocks(call: AttentionCall, block_rows: int) -> Iterator[RowBlock]:
    """Blocks of ``block_rows`` query rows covering the call, each with the keys its last row can reach."""
    shape = call.shape
    for a in range(0, shape.q_len, block_rows):
        b = min(a + block_rows, shape.q_len)
        yield RowBlock(call, a, b, shape.offset + b if shape.causal else shape.k_len)


@dataclass
class NoCounts:
    """The counts of a method whose steps count nothing (its trace comes from the kept pairs alone)."""


class Tally(Generic[C]):
    """What the steps counted, in the method's declared counts type ``C`` (a dataclass of float counters, summed
    over blocks, and list fields, per-block items kept in order): :meth:`Method.count` turns it into the trace.
    Every name is checked against the declaration -- a typo'd counter is an error where it is added or read, never
    a silent zero. ``counting`` is false when no trace will be made (:func:`select_pairs`): a step may then skip
    work done only for the trace (never work that decides the pairs)."""

    def __init__(self, counts_type: type[C], counting: bool = True) -> None:
        self.counting = counting
        self.counts: C = counts_type()
        self._fields = {f.name for f in fields(counts_type)}  # type: ignore[arg-type]

    def _field(self, name: str, kind: type) -> None:
        """``name`` must be a declared counter of ``kind`` (``float``: a sum, ``list``: per-block items)."""
        if name not in self._fields or not isinstance(getattr(self.counts, name), kind):
            declared = [n for n in self._fields if isinstance(getattr(self.counts, n), kind)]
            raise KeyError(f"{type(self.counts).__name__} declares no {kind.__name__} counter {name!r} "
                           f"(it declares: {', '.join(declared) or 'none'})")

    def add(self, **counts: float) -> None:
        """Add to declared float counters (``tally.add(v_reads=n)``)."""
        for name, value in counts.items():
            self._field(name, float)
            setattr(self.counts, name, getattr(self.counts, name) + float(value))

    def append(self, name: str, item: Any) -> None:
        """Append a per-block item to the declared list field ``name``."""
        self._field(name, list)
        getattr(self.counts, name).append(item)

    def __getitem__(self, name: str) -> float:
        """A declared float counter's sum (zero when no block added to it; a name not declared is an error)."""
        self._field(name, float)
        return getattr(self.counts, name)


class Method(Generic[Ctx, Pred, Choice, C]):
    """A sparse-attention method as four steps (see the module docstring), generic over its per-call context
    ``Ctx``, its block prediction ``Pred``, its selection ``Choice`` and its counts ``C`` (the dataclass its steps
    add to, ``counts``). Subclasses set ``name`` and ``counts`` and override the steps; ``params`` is the method's
    validated parameter model."""

    name: str = ""
    counts: type[C] = NoCounts  # type: ignore[assignment]

    def __init__(self, params: Any) -> None:
        self.p = params

    def block_rows(self, call: AttentionCall) -> int:
        """Query rows per block (the driver's chunk)."""
        return 128

    def prepare(self, call: AttentionCall) -> Ctx:
        """Per-call context of the predictor (default: nothing)."""
        return None  # type: ignore[return-value]

    def predict(self, ctx: Ctx, block: RowBlock, tally: Tally[C]) -> Pred:
        raise NotImplementedError

    def select(self, ctx: Ctx, block: RowBlock, prediction: Pred, tally: Tally[C]) -> Choice:
        raise NotImplementedError

    def attend(self, ctx: Ctx, block: RowBlock, prediction: Pred, chosen: Choice, tally: Tally[C]) -> torch.Tensor:
        """Exact attention on the kept pairs (softmax of the exact logits over them, times V). Consumes
        ``block.scores`` (the softmax runs in place)."""
        return attend_kept(block.scores, kept_mask(chosen), block.v, block.call.q.dtype)

    def count(self, ctx: Ctx, call: AttentionCall, keep: torch.Tensor, tally: Tally[C]) -> Workload:
        raise NotImplementedError

    def memory_parts(self, call: AttentionCall) -> dict[str, float]:
        """Bytes the call will hold at its peak, by part (checked before anything is allocated): the kept-pair
        mask, a few score slabs of one block (scores, prediction, masks, softmax temporaries) and the output."""
        s = call.shape
        compute = 8 if call.q.dtype == torch.float64 else 4
        rows = min(self.block_rows(call), s.q_len)
        return {
            "kept-pair mask": float(s.batch * s.heads * s.q_len * s.k_len),
            "score slabs": 4.0 * s.batch * s.heads * rows * s.k_len * compute,
            "output": float(s.batch * s.heads * s.q_len * s.head_dim * call.q.element_size()),
        }

    def check_differentiable(self) -> None:
        """Raise a clear error when gradients cannot flow through this method's output (default: they can --
        through the exact attention on the kept pairs, the selection being a constant)."""

    def score(self, prediction: Pred) -> torch.Tensor | None:
        """The predicted importance of the block's pairs (higher first), used to order kept pairs: the
        prediction itself when it is a tensor, else ``None``."""
        return prediction if isinstance(prediction, torch.Tensor) else None

    def run(self, call: AttentionCall) -> SparseResult:
        return run_method(self, call)


def _describe(shape) -> str:
    return (f"[batch {shape.batch}, heads {shape.heads} ({shape.kv_heads} KV), q_len {shape.q_len}, "
            f"k_len {shape.k_len}, head_dim {shape.head_dim}]")


def kept_mask(chosen: Any) -> torch.Tensor:
    """The boolean mask of a ``select`` result (the result itself, or its ``keep`` field)."""
    return chosen if isinstance(chosen, torch.Tensor) else chosen.keep


def _full_keep(call: AttentionCall) -> torch.Tensor:
    s = call.shape
    return torch.zeros(s.batch, s.heads, s.q_len, s.k_len, dtype=torch.bool, device=call.q.device)


def run_method(method: Method[Any, Any, Any, Any], call: AttentionCall) -> SparseResult:
    """Run ``method`` on ``call``: predict, select and attend block by block, then count. ``prepare`` and
    ``count`` never record gradients; the attend step does when the inputs require them."""
    check_memory(method.memory_parts(call), f"method {method.name!r} on {_describe(call.shape)}", call.q.device)
    with torch.no_grad():
        ctx = method.prepare(call)
    tally = Tally(method.counts)
    s = call.shape
    blocks = list(row_blocks(call, method.block_rows(call)))
    out = torch.empty_like(call.q)
    keep = None if len(blocks) == 1 else _full_keep(call)
    for block in blocks:
        prediction = method.predict(ctx, block, tally)
        chosen = method.select(ctx, block, prediction, tally)
        out[:, :, block.row0 : block.row1] = method.attend(ctx, block, prediction, chosen, tally)
        mask = kept_mask(chosen)
        if keep is None:  # one block: keep its mask as it is (a broadcast view stays a view)
            keep = mask if block.width == s.k_len else _full_keep(call)
            if block.width != s.k_len:
                keep[..., : block.width] = mask
        else:
            keep[:, :, block.row0 : block.row1, : block.width] = mask
    keep = keep.expand(s.batch, s.heads, s.q_len, s.k_len)
    with torch.no_grad():
        trace = method.count(ctx, call, keep, tally)
    trace.meta["device"] = device_description(call.q.device)
    return SparseResult(out=out, keep=keep, trace=trace)


def device_description(device: torch.device) -> str:
    """Where a trace was measured: the CPU's vector capability (float reductions can differ in the last bits
    between AVX2 and AVX-512 kernels) or the GPU's name."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {torch.backends.cpu.get_cpu_capability()}"


def select_pairs(method: Method[Any, Any, Any, Any], call: AttentionCall) -> Selection:
    """Only the selection of ``method`` on ``call`` (predict and select, no attention), with the predicted
    scores of the kept pairs when the method's prediction is a score tensor."""
    parts = method.memory_parts(call)
    s = call.shape
    pairs = float(s.batch * s.heads * s.q_len * s.k_len)
    parts.setdefault("kept-pair mask", pairs)  # a method that never builds one (dense) still gets one here
    parts["predicted scores"] = 4 * pairs  # float32
    check_memory(parts, f"selection of {method.name!r} on {_describe(call.shape)}", call.q.device)
    with torch.no_grad():
        ctx = method.prepare(call)
    tally = Tally(method.counts, counting=False)
    keep = _full_keep(call)
    score: torch.Tensor | None = None
    for block in row_blocks(call, method.block_rows(call)):
        prediction = method.predict(ctx, block, tally)
        keep[:, :, block.row0 : block.row1, : block.width] = kept_mask(method.select(ctx, block, prediction, tally))
        ranked = method.score(prediction)
        if ranked is not None:
            if score is None:
                score = torch.full(keep.shape, float("-inf"), dtype=torch.float32, device=keep.device)
            score[:, :, block.row0 : block.row1, : block.width] = ranked.to(torch.float32).expand(
                keep.shape[0], keep.shape[1], block.rows, block.width
            )
    if score is not None:
        score = score.masked_fill(~keep, float("-inf"))
    return Selection(keep=keep, score=score, shape=call.shape, method=method.name)
