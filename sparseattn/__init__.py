"""sparseattn: dynamic sparse attention algorithm-hardware co-design.

>>> import torch, sparseattn
>>> q, k, v = (torch.randn(1, 4, 128, 64) for _ in range(3))
>>> r = sparseattn.attention(q, k, v, method="topk", causal=True, ratio=0.25)
>>> round(r.density, 2)
0.26
"""

from .api import attention, methods
from .core import Shape, SparseResult, Workload

__version__ = "0.1.0"
__all__ = ["Shape", "SparseResult", "Workload", "__version__", "attention", "methods"]
