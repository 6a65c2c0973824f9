"""The public entry points, re-exported: ``attention(q, k, v, method=...) -> SparseResult``, ``select(q, k,
method=...) -> Selection`` (the kept pairs alone) and ``list_methods()``. Their bodies live in
:mod:`sparseattn.methods.entry`; this module only re-exports them, and nothing inside the package imports it."""

from .methods.entry import attention, list_methods, select

__all__ = ["attention", "list_methods", "select"]
