"""Fixtures of the mesh tests: small meshes, small shapes, the bundled STAR trace."""

from __future__ import annotations

import pytest

from sparseattn.core.shape import Shape
from sparseattn.hw import load_trace
from sparseattn.hw.spatial import load_mesh


def small_shape(seq: int = 2048, heads: int = 4, kv_heads: int | None = None, layers: int = 1) -> Shape:
    return Shape(batch=1, heads=heads, kv_heads=kv_heads or heads, q_len=seq, k_len=seq, head_dim=128, causal=True,
                 layers=layers)


def mesh(name: str = "spatial-star-2x2", **updates):
    """A bundled mesh with top-level fields or ``orchestration`` / ``noc`` / ``hbm`` fields replaced."""
    arch = load_mesh(name)
    for block in ("orchestration", "noc", "hbm"):
        fields = {k: updates.pop(k) for k in list(updates) if k in type(getattr(arch, block)).model_fields}
        if fields:
            updates[block] = getattr(arch, block).model_copy(update=fields)
    return arch.model_copy(update=updates)


@pytest.fixture(scope="session")
def star_trace():
    return load_trace("star")
