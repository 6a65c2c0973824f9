"""sparseattn: dynamic sparse attention algorithm-hardware co-design.

>>> import torch, sparseattn
>>> q, k, v = (torch.randn(1, 4, 512, 64) for _ in range(3))
>>> r = sparseattn.attention(q, k, v, method="topk", causal=True, ratio=0.25)
>>> r.out.shape, round(r.density, 3)          # at least 16 keys per row, so a little above 0.25
(torch.Size([1, 4, 512, 64]), 0.254)
>>> r.trace.summary()["qk/mac/32"]            # exact QK work on the kept pairs only
8546304.0
"""

from .api import attention, list_methods, select
from .core import Shape, SparseResult, Workload
from .core.version import __version__

__all__ = ["Shape", "SparseResult", "Workload", "__version__", "attention", "list_methods", "select"]
