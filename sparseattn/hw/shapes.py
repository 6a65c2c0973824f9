"""Model shapes: the attention geometry of the papers' models (``shapes/<name>.yaml``), separate from the traces
that give them their sparsity (:mod:`~sparseattn.hw.traces`) and from the architectures that run them.

A shape file carries layers, heads, KV heads, head dim, whether attention is causal, and the sequence lengths the
papers evaluate the model at; :meth:`ModelShape.shape` turns it into the :class:`~sparseattn.core.shape.Shape` of a
prefill at a given length.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field

from ..core.shape import Shape
from .config import ConfigError, StrictModel, find_file, read_yaml, validated

SHAPE_DIR = Path(__file__).parent / "shapes"


class ModelShape(StrictModel):
    """The attention shape of one model."""

    name: str
    description: str = ""
    source: str = ""
    layers: int = Field(gt=0, le=1000)
    heads: int = Field(gt=0, le=4096)
    kv_heads: int = Field(gt=0, le=4096)
    head_dim: int = Field(gt=0, le=4096)
    causal: bool
    seq_lens: list[Annotated[int, Field(ge=1, le=10**8)]] = Field(min_length=1)

    def shape(self, seq: int, batch: int = 1) -> Shape:
        """The prefill shape of all layers at ``seq`` tokens."""
        if not isinstance(seq, int) or seq < 1:
            raise ConfigError(f"seq must be a positive int, got {seq!r}")
        return Shape(
            batch=batch, heads=self.heads, kv_heads=self.kv_heads, q_len=seq, k_len=seq,
            head_dim=self.head_dim, causal=self.causal, layers=self.layers,
        )


def model_shape_names() -> list[str]:
    """Model shapes bundled in ``shapes/``."""
    return sorted(p.stem for p in SHAPE_DIR.glob("*.yaml"))


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int, size: int) -> ModelShape:
    return validated(ModelShape, read_yaml(path), str(path))


def load_model_shape(name_or_path: str | Path) -> ModelShape:
    """A bundled model shape by name (``"llama2-7b"``) or a YAML file by path (cached until the file changes)."""
    path = find_file(name_or_path, SHAPE_DIR, ".yaml", "model shape", model_shape_names())
    stat = path.stat()
    return _load(path, stat.st_mtime_ns, stat.st_size)
