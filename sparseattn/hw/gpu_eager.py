"""Eager PyTorch attention on a GPU: the score matrix materialised between several kernels per layer.

SOFA measured its A100 baseline as PyTorch attention timed end to end with ``torch.cuda.synchronize``
(SOFA section VI). That is Hugging Face's ``eager_attention_forward`` -- per layer and
head group, one kernel each for:

=====================  ============================================  ===============================================
kernel                 what it does                                  traffic per score element (m = matmul bytes)
=====================  ============================================  ===============================================
``qk_bmm``             ``matmul(Q, K^T)`` (cuBLAS batched GEMM)      writes the scores: m (plus Q, K)
``scale``              ``* scaling``                                 reads m, writes m
``mask``               ``+ attention_mask`` (causal or padding)      reads m, writes m (plus the mask once)
``softmax``            ``softmax(dtype=float32)``                    reads m, writes 4
``cast``               ``.to(query.dtype)`` (none when m = 4)        reads 4, writes m
``pv_bmm``             ``matmul(P, V)``                              reads m (plus V; writes O)
``transpose``          ``transpose(1, 2).contiguous()``              reads and writes O
``repeat_kv`` (x2)     GQA only: K and V expanded to every head      reads and writes K / V once per query head
=====================  ============================================  ===============================================

Each kernel is a roofline (GEMMs at ``eager.gemm_efficiency`` of the matmul dtype's peak times their thread-block
wave fill on ``eager.gemm_tile``-square output tiles; elementwise kernels at ``eager.memory_efficiency`` of HBM
bandwidth) with a floor of ``eager.launch_us`` (PyTorch eager dispatch plus ``cudaLaunchKernel``: the GPU waits
for the host when a kernel is shorter). Defaults (``configs/a100.yaml``) are **stated assumptions, unmeasured**:
autocast matmuls in fp16 with the fp32 softmax the code asks for, an 8 us floor per kernel, cuBLAS at 70% of peak,
elementwise kernels at 80% of bandwidth; ``benchmarks/measure_gpu_attention.py`` measures them and
:mod:`~sparseattn.hw.gpu_fit` fits launch and efficiency terms to the measurements.
"""

from __future__ import annotations

import math

from ..core.shape import Shape
from .gpu_power import Kernel, waves_fill
from .schema import GpuArch

DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4}
ELEMENTWISE_BLOCK = 1024  # elements per thread block of an elementwise kernel (256 threads x 4)


def _gemm(gpu: GpuArch, name: str, batch: int, m: int, n: int, k: int, nbytes: float) -> Kernel:
    """A batched GEMM ``[batch] (m x k) @ (k x n)`` moving ``nbytes``."""
    e = gpu.eager
    tile = e.gemm_tile
    fill = waves_fill(batch * math.ceil(m / tile) * math.ceil(n / tile), gpu.sms)
    flops = 2.0 * batch * m * n * k
    compute = flops / (gpu.peak_tflops[e.matmul_dtype] * 1e12 * e.gemm_efficiency * fill)
    memory = nbytes / (gpu.hbm_gbps * 1e9 * e.memory_efficiency)
    return Kernel(name, max(compute, memory), fill, e.launch_us * 1e-6, flops, nbytes)


def _elementwise(gpu: GpuArch, name: str, elements: float, nbytes: float) -> Kernel:
    e = gpu.eager
    fill = waves_fill(math.ceil(elements / ELEMENTWISE_BLOCK), gpu.sms)
    busy = nbytes / (gpu.hbm_gbps * 1e9 * e.memory_efficiency * fill)
    return Kernel(name, busy, fill, e.launch_us * 1e-6, 0.0, nbytes)


def layer_kernels(gpu: GpuArch, shape: Shape) -> list[Kernel]:
    """The kernels of one layer of eager attention of ``shape`` (its batch, heads and lengths)."""
    m = DTYPE_BYTES[gpu.eager.matmul_dtype]
    b, h, hkv, sq, sk, d = shape.batch, shape.heads, shape.kv_heads, shape.q_len, shape.k_len, shape.head_dim
    scores = float(b * h * sq * sk)
    q_o, k_v = float(b * h * sq * d), float(b * h * sk * d)
    mask = float(b * sq * sk) if shape.causal else float(b * sk)
    kernels = []
    if h != hkv:  # repeat_kv: K and V expanded to every query head
        kernels += [_elementwise(gpu, "repeat_kv", k_v, m * (b * hkv * sk * d + k_v)) for _ in range(2)]
    kernels += [
        _gemm(gpu, "qk_bmm", b * h, sq, sk, d, m * (q_o + k_v + scores)),
        _elementwise(gpu, "scale", scores, 2 * m * scores),
        _elementwise(gpu, "mask", scores, 2 * m * scores + m * mask),
        _elementwise(gpu, "softmax", scores, (m + 4) * scores),
    ]
    if m != 4:
        kernels.append(_elementwise(gpu, "cast", scores, (4 + m) * scores))
    kernels += [
        _gemm(gpu, "pv_bmm", b * h, sq, d, sk, m * (scores + k_v + q_o)),
        _elementwise(gpu, "transpose", q_o, 2 * m * q_o),
    ]
    return kernels


def eager_kernels(gpu: GpuArch, shape: Shape) -> list[Kernel]:
    """Every layer's kernels (layers run one after another)."""
    return layer_kernels(gpu, shape.replace(layers=1)) * shape.layers


def score_bytes_per_element(gpu: GpuArch) -> float:
    """HBM bytes moved per score element by one layer's kernels (24 with fp16 matmuls, 24 with fp32)."""
    m = DTYPE_BYTES[gpu.eager.matmul_dtype]
    return m + 2 * m + 2 * m + (m + 4) + ((4 + m) if m != 4 else 0) + m
