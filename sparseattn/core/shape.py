"""The shape of one attention computation, and the pair counts every method and hardware model shares.

Conventions (DESIGN.md, "Contracts"):

* tensors are ``[batch, heads, seq, head_dim]``; keys and values may have fewer heads (GQA): query head
  ``h`` reads KV head ``h // (heads // kv_heads)``, the order of Hugging Face's ``repeat_kv``;
* with ``causal=True`` and ``q_len <= k_len`` the queries are the **last** ``q_len`` positions of the key
  sequence (prefill when equal, decode against a KV cache otherwise): query row ``i`` may attend to keys
  ``0 .. k_len - q_len + i``;
* a sliding-window layer (``window=W``, causal only; Mistral, Gemma 2/3 local layers) also drops keys more than
  ``W - 1`` positions before the query: row ``i`` sees keys ``i + offset - W + 1 .. i + offset`` (Hugging Face's
  ``kv_idx > q_idx - sliding_window``). The window is part of the mask: every method selects inside it and every
  count (valid pairs, densities, traces) counts only pairs inside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Shape:
    """Dimensions of an attention workload; ``layers`` counts stacked identical layers (see ``Workload``)."""

    batch: int
    heads: int
    kv_heads: int
    q_len: int
    k_len: int
    head_dim: int
    causal: bool
    layers: int = 1
    window: int | None = None

    def __post_init__(self) -> None:
        for name in ("batch", "heads", "kv_heads", "q_len", "k_len", "head_dim", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Shape.{name} must be a positive int, got {value!r}")
        if self.heads % self.kv_heads:
            raise ValueError(f"Shape.heads ({self.heads}) must be a multiple of Shape.kv_heads ({self.kv_heads})")
        if self.causal and self.q_len > self.k_len:
            raise ValueError(
                f"a causal shape needs q_len <= k_len (queries are the last positions), "
                f"got q_len={self.q_len}, k_len={self.k_len}"
            )
        if self.window is not None:
            if not isinstance(self.window, int) or isinstance(self.window, bool) or self.window < 1:
                raise ValueError(f"Shape.window must be a positive int or None, got {self.window!r}")
            if not self.causal:
                raise ValueError("a sliding window (Shape.window) needs causal attention")

    @property
    def group_size(self) -> int:
        """Query heads per KV head (1 without GQA)."""
        return self.heads // self.kv_heads

    @property
    def offset(self) -> int:
        """Absolute position of query row 0 in the key sequence (``k_len - q_len``) when causal, else 0."""
        return self.k_len - self.q_len if self.causal else 0

    @property
    def valid_pairs_per_head(self) -> int:
        """(query, key) pairs a dense computation evaluates for one head of one batch entry."""
        if not self.causal:
            return self.q_len * self.k_len
        if self.window is None:
            return self.q_len * self.offset + self.q_len * (self.q_len + 1) // 2
        # row i sees min(i + offset + 1, W) keys: a ramp up to W, then W per row
        first = self.offset + 1  # keys of row 0 before the window cap
        ramp = max(0, min(self.q_len, self.window - first + 1))  # rows still below the cap
        ramp_sum = ramp * first + ramp * (ramp - 1) // 2
        return ramp_sum + (self.q_len - ramp) * self.window

    def valid_mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Boolean ``[q_len, k_len]`` mask of the valid pairs (see the module docstring)."""
        return valid_mask(self.q_len, self.k_len, self.causal, device, self.window)

    def valid_keys_per_row(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Number of valid keys of each query row, int64 ``[q_len]``."""
        return valid_keys_per_row(self.q_len, self.k_len, self.causal, device, self.window)

    @property
    def instances(self) -> int:
        """Independent attention matrices: layers x batch x heads."""
        return self.layers * self.batch * self.heads

    @property
    def valid_pairs(self) -> int:
        """Valid pairs over all layers, batch entries and heads."""
        return self.instances * self.valid_pairs_per_head

    @property
    def rows(self) -> int:
        """Query rows over all layers, batch entries and heads."""
        return self.instances * self.q_len

    def replace(self, **changes: object) -> Shape:
        values = asdict(self)
        values.update(changes)
        return Shape(**values)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def valid_mask(
    q_len: int, k_len: int, causal: bool, device: torch.device | str = "cpu", window: int | None = None
) -> torch.Tensor:
    """Boolean ``[q_len, k_len]`` mask of the pairs a dense computation evaluates.

    Causal rows follow :class:`Shape`'s convention: row ``i`` sees keys ``0 .. k_len - q_len + i`` (and, with a
    ``window``, none more than ``window - 1`` positions back).
    """
    if not causal:
        return torch.ones(q_len, k_len, dtype=torch.bool, device=device)
    rows = torch.arange(q_len, device=device)[:, None] + (k_len - q_len)
    cols = torch.arange(k_len, device=device)[None, :]
    mask = cols <= rows
    return mask if window is None else mask & (cols > rows - window)


def chunk_valid_mask(
    row0: int, row1: int, width: int, shape: Shape, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Rows ``row0 .. row1-1`` of the valid-pair mask over the first ``width`` keys, ``[row1 - row0, width]``."""
    if not shape.causal:
        return torch.ones(row1 - row0, width, dtype=torch.bool, device=device)
    cols = torch.arange(width, device=device)[None, :]
    pos = torch.arange(row0, row1, device=device)[:, None] + (shape.k_len - shape.q_len)
    mask = cols <= pos
    return mask if shape.window is None else mask & (cols > pos - shape.window)


def ceil_count(n: torch.Tensor, fraction: float | torch.Tensor) -> torch.Tensor:
    """``ceil(n * fraction)`` as int64, ignoring float noise such as 0.3 * 10 = 3.0000000000000004."""
    return torch.ceil(n.double() * fraction - 1e-9).to(torch.int64)


def valid_keys_per_row(
    q_len: int, k_len: int, causal: bool, device: torch.device | str = "cpu", window: int | None = None
) -> torch.Tensor:
    """Number of valid keys of each query row, int64 ``[q_len]``."""
    if not causal:
        return torch.full((q_len,), k_len, dtype=torch.int64, device=device)
    n = torch.arange(q_len, device=device, dtype=torch.int64) + (k_len - q_len) + 1
    return n if window is None else n.clamp(max=window)
