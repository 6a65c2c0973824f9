"""What every method returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .workload import Workload


@dataclass
class SparseResult:
    """Output of one sparse-attention call.

    Attributes:
        out: attention output ``[B, H, Nq, D]`` in the query's dtype.
        keep: boolean ``[B, H, Nq, Nk]`` mask of the (query, key) pairs whose exact score entered the
            softmax. It is always a tensor of that shape, possibly an expanded (zero-copy) view -- dense
            attention returns the valid-pair mask broadcast over batch and heads. Pairs a causal row may not
            see are always ``False``.
        trace: the :class:`~sparseattn.core.workload.Workload` of this call.
    """

    out: torch.Tensor
    keep: torch.Tensor
    trace: Workload

    @property
    def kept_pairs(self) -> int:
        return int(torch.count_nonzero(self.keep))

    @property
    def density(self) -> float:
        """Kept pairs / valid pairs (1.0 for dense attention)."""
        return self.kept_pairs / self.trace.shape.valid_pairs
