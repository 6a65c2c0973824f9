"""Memory estimates: refuse a call that cannot fit before allocating anything, with the estimate and the limit.

The reference methods are exact and materialise what they reason about: the kept-pair mask
``[B, H, Nq, Nk]`` of every call (the :class:`~sparseattn.core.result.SparseResult` contract) and, per block of
query rows, a few score slabs ``[B, H, rows, Nk]``. At N = 200k tokens the mask alone is 40 GB per head, so a
call that cannot fit is refused up front (:class:`InsufficientMemoryError`, naming the estimate, its parts and the
limit) instead of failing deep inside the allocator. The limit is the memory available on the device
(``MemAvailable`` on Linux for CPU tensors, free memory for CUDA tensors), or ``SPARSEATTN_MEMORY_LIMIT_GB`` when
set.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import InvalidInputError

GIB = 1024**3


class InsufficientMemoryError(InvalidInputError):
    """A call would need more memory than the device has; the message gives the estimate and the limit."""


def available_bytes(device: torch.device) -> float:
    """Memory this call may use on ``device`` (the environment's limit when set)."""
    limit = os.environ.get("SPARSEATTN_MEMORY_LIMIT_GB")
    if limit:
        return float(limit) * GIB
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    return float("inf")  # unknown platform: do not refuse


def check_memory(parts: dict[str, float], what: str, device: torch.device) -> None:
    """Raise :class:`InsufficientMemoryError` when the ``parts`` (bytes) of ``what`` exceed the available memory."""
    need = sum(parts.values())
    have = available_bytes(device)
    if need > have:
        detail = ", ".join(f"{name} {b / GIB:.3g} GiB" for name, b in sorted(parts.items(), key=lambda kv: -kv[1]))
        raise InsufficientMemoryError(
            f"{what} needs about {need / GIB:.3g} GiB ({detail}) but {have / GIB:.3g} GiB are available on "
            f"{device}; use shorter sequences, fewer heads or a smaller batch (the references keep the "
            f"[batch, heads, q_len, k_len] kept-pair mask), or set SPARSEATTN_MEMORY_LIMIT_GB to override the limit"
        )
