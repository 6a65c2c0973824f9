"""ISTA: interleaving sparsity-tiled attention -- the order in which a row visits its key tiles (PADE §IV-C).

The pruning threshold needs the row maximum, which tiling hides; ISTA carries the running threshold from
tile to tile, which is safe because bounds and threshold are monotone (a key pruned under the running
threshold would be pruned under the final one). *Head-tail interleaving* visits the attention-sink tiles at
the start of the sequence and the most recent tiles first, where attention locality puts the largest
scores, so the threshold rises early and prunes more of the middle. The paper does not give the exact
schedule; ours (a parameter): the first ``head`` tiles, then the last ``tail`` valid tiles from the most
recent backwards, then the middle in order. ``plain`` visits tiles in key order.
"""

from __future__ import annotations

from typing import Literal

Order = Literal["head_tail", "plain"]


def tile_order(n_tiles: int, order: Order = "head_tail", head: int = 1, tail: int = 2) -> list[int]:
    """Visiting order of ``n_tiles`` key tiles (tile ``n_tiles - 1`` holds the most recent keys)."""
    if n_tiles < 1:
        raise ValueError(f"need at least one tile, got {n_tiles}")
    if order == "plain":
        return list(range(n_tiles))
    if order != "head_tail":
        raise ValueError(f"order must be 'head_tail' or 'plain', got {order!r}")
    first = list(range(min(head, n_tiles)))
    recent = [t for t in range(n_tiles - 1, max(n_tiles - 1 - tail, -1), -1) if t not in first]
    middle = [t for t in range(n_tiles) if t not in first and t not in recent]
    return first + recent + middle
