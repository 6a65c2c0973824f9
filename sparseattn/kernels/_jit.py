"""Triton, imported once: the kernel modules take ``triton`` and ``tl`` from here, and :data:`INTERPRETED` records
whether their kernels were defined for the interpreter (Triton decides when a kernel is decorated)."""

from __future__ import annotations

import triton
import triton.language as tl

from ._runtime import interpreting

INTERPRETED = interpreting()

__all__ = ["INTERPRETED", "tl", "triton"]
