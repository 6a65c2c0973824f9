"""Where the Triton kernels may run, and the input checks every kernel wrapper shares.

The kernels run on CUDA tensors, or on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``, set
*before* ``sparseattn.kernels`` is imported: Triton reads it when a kernel is defined). Anything else is an
error that says so, never a silent fallback.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable

import torch

from ..core.errors import InvalidInputError, SparseAttnError

ATTN_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


class KernelUnavailableError(SparseAttnError):
    """The Triton kernels cannot run here (no triton, or CPU tensors without the interpreter)."""


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def triton_version() -> str | None:
    """The installed Triton version, or ``None``."""
    try:
        import triton
    except ImportError:
        return None
    return triton.__version__


def require_runtime(*tensors: torch.Tensor) -> None:
    """Raise :class:`KernelUnavailableError` unless the kernels can run on these tensors."""
    if triton_version() is None:
        raise KernelUnavailableError(
            "the sparseattn GPU kernels need triton: pip install 'sparseattn[gpu]' (or triton>=3.2)"
        )
    devices = {t.device.type for t in tensors}
    if devices - {"cuda", "cpu"} or len(devices) > 1:
        raise InvalidInputError(f"the kernels need all tensors on one CUDA device (or CPU), got {sorted(devices)}")
    if "cpu" in devices and not interpreting():
        raise KernelUnavailableError(
            "the sparseattn Triton kernels need CUDA tensors; on CPU set TRITON_INTERPRET=1 before importing "
            "sparseattn.kernels to run them in Triton's (slow) interpreter, or use method='star_block' (the "
            "PyTorch reference)"
        )
    from . import _jit

    if _jit.INTERPRETED != interpreting():
        raise KernelUnavailableError(
            "TRITON_INTERPRET changed after sparseattn.kernels was imported; set it before the first import"
        )


def check_dtype(name: str, x: torch.Tensor, allowed: tuple[torch.dtype, ...]) -> None:
    if x.dtype not in allowed:
        raise InvalidInputError(f"{name} must have dtype in {allowed}, got {x.dtype}")


def check_rank(name: str, x: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    """``x`` has rank ``len(shape)`` and the given sizes where not ``None``."""
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(shape) or any(s is not None and s != n for s, n in zip(shape, x.shape, strict=True)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise InvalidInputError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def check_block(name: str, value: int, low: int = 16, high: int = 128) -> None:
    """A kernel tile: a power of two in ``low .. high``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or value > high or value & (value - 1):
        raise InvalidInputError(f"{name} must be a power of two in {low}..{high} for the kernels, got {value!r}")


def next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def cuda_ms(fn: Callable[[], object], repeats: int = 10, warmup: int = 1) -> float:
    """Median milliseconds of ``fn`` on the GPU, timed with CUDA events after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)
