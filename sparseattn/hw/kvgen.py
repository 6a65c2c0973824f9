"""SOFA's on-demand K/V generation (``operands.kv_source: generated``): K and V made on chip from the tokens.

SOFA (MICRO'24, section IV-A and Table III) does not read K and V: per 128-query
tile the fetcher reads the tokens X, the DLZS array predicts ``K_hat = X W_k`` from log-format weights (sign +
4-bit exponent) for every key the tile sees, and after SADS the 128x4 16-bit PE array generates ``K = X W_k`` and
``V = X W_v`` for the keys the tile selected only. In the simulator (traffic stage, :func:`generated_cells`; work,
:func:`generation_bindings`):

* **DRAM**: instead of K and V, the token rows X (``hidden x x_bits``) of every key a query tile's predictor scans
  (once per KV head when one head's X fits the buffers that hold ``x``), and the head's weights W_k, W_v
  (``weight_bits``) and log-format W_k (``log_weight_bits``) -- once per KV head when they fit the weight buffer,
  else once per query tile;
* **work**: ``2 x hidden x head_dim`` 16-bit MACs per key a query tile fetches for the formal stage (the selected
  keys, at the formal tile's granularity), bound to the unit that executes ``kvgen/mac``; ``hidden x head_dim``
  shift-adds of K_hat per key the tile's predictor scans, bound to the unit that executes ``predict/shift``.

``hidden`` is taken as ``heads x head_dim`` (true of every bundled model shape). This is projection work (the
linear layer's ``X W_k``, ``X W_v``) that a dense baseline does outside its attention: SOFA's Table II latency (137
GOPs of Llama-7B attention in 45 ms at 128 multipliers) cannot include it, so it is a variant (system scope), not
the attention-scope comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.workload import Per
from .binding import Binding, unit_for
from .config import ConfigError
from .mapping import Mapping
from .schema import AcceleratorArch
from .tiling import TiledSparsity


@dataclass(frozen=True)
class Generation:
    """Keys generated and keys whose K_hat is predicted, over all target instances."""

    generated_keys: float
    predicted_keys: float
    hidden: int
    head_dim: int


def _fits(arch: AcceleratorArch, tensor: str, nbytes: float) -> bool:
    return nbytes <= sum(b.kb for b in arch.buffer_for(tensor)) * 1024


def generated_cells(arch: AcceleratorArch, mapping: Mapping, ts: TiledSparsity, kept: np.ndarray,
                    scanned: np.ndarray, share: float) -> tuple[dict[str, np.ndarray], Generation, list[str]]:
    """DRAM bytes per cell of the tokens and weights that replace K and V, and the generation work (see the module
    docstring); ``kept``/``scanned``: keys fetched / scanned per cell of one target instance."""
    ops, shape = arch.operands, ts.shape
    d, hidden = shape.head_dim, shape.heads * shape.head_dim
    x_row = hidden * ops.x_bits / 8
    x_keys, x_how = _x_keys(arch, mapping, ts, scanned, share, x_row)
    w_head = hidden * d * (2 * ops.weight_bits + ops.log_weight_bits) / 8
    w_once = _fits(arch, "weights", w_head)
    tiles = np.broadcast_to(ts.q_tiles[None].astype(np.float64), kept.shape)
    w_cells = np.full(kept.shape, w_head * share / len(ts.rows)) if w_once else tiles * w_head * share
    cells = {"x": x_keys * x_row}
    if mapping.projection == "inside":
        cells["weights"] = w_cells
    m = ts.multiplicity
    gen = Generation(float(kept.sum() * m), float(scanned.sum() * m), hidden, d)
    w_how = ("charged with the K/V and K_hat projection work to the linear layer's block (outside attention)"
             if mapping.projection == "outside" else
             "once per head" if w_once else "per query tile")
    notes = [f"K/V generated on chip from the tokens: X ({x_row:g} B per token) read {x_how}, W_k/W_v "
             f"({w_head / 1024:.0f} KB per head) {w_how}; {gen.generated_keys:.3g} keys generated, "
             f"K_hat of {gen.predicted_keys:.3g}"]
    return cells, gen, notes


def _x_keys(arch: AcceleratorArch, mapping: Mapping, ts: TiledSparsity, scanned: np.ndarray, share: float,
            x_row: float) -> tuple[np.ndarray, str]:
    """Token rows X read per cell: once per layer (``mapping.x_reuse: once``), once per KV head when one head's X
    fits the buffers, else every key a query tile's predictor scans."""
    shape = ts.shape
    if mapping.x_reuse == "once":  # every head of the layer shares one read of X
        per_instance = float(ts.keys.sum()) / shape.heads
        return np.full(scanned.shape, per_instance / len(ts.rows)), "once per layer"
    if _fits(arch, "x", shape.k_len * x_row):
        return np.full(scanned.shape, float(ts.keys.sum()) * share / len(ts.rows)), "once per KV head"
    return scanned, "per query tile"


def generation_bindings(arch: AcceleratorArch, gen: Generation, projection: str = "inside") -> list[Binding]:
    """The K/V generation MACs and K_hat shift-adds as bindings to the units that execute them; none when the
    projection is charged to the linear layer's own block (``mapping.projection: outside``): both are the
    projection ``X W_k``, ``X W_v`` (exact and log-format), which attention's schedule then does not carry."""
    out: list[Binding] = []
    if projection == "outside":
        return out
    work = [("kvgen", "mac", arch.operands.weight_bits, 2.0 * gen.hidden * gen.head_dim * gen.generated_keys, "kept"),
            ("predict", "shift", arch.operands.x_bits, gen.hidden * gen.head_dim * gen.predicted_keys, "valid"),
            ("predict", "add", 16, gen.hidden * gen.head_dim * gen.predicted_keys, "valid")]
    for stage, op, bits, count, spread in work:
        unit = unit_for(arch, stage, op)
        if unit is None:
            raise ConfigError(f"{arch.name!r} generates K/V on chip (operands.kv_source: generated) but has no unit "
                              f"that executes {stage}/{op}")
        out.append(Binding(stage, op, bits, Per.KEY_DIM, count, unit, spread))
    return out
