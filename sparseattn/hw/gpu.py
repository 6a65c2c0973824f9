"""GPUs running dense attention (A100 / H100): a FlashAttention-class kernel or eager PyTorch attention.

**FlashAttention** (``kernel: flash``; FA2 on the A100, FA3 in TensorRT-LLM on the H100), one kernel per layer:

``busy = max(FLOPs / (peak x compute_efficiency x fill), bytes / (HBM bandwidth x memory_efficiency))``

* FLOPs ``4 x valid pairs x head_dim`` (Q.K^T and P.V, multiply + add; causal kernels skip the masked half);
  bytes: Q, K, V read and O written once, 2 bytes per element (the score matrix never leaves the chip);
* ``fill`` -- thread-block waves (:func:`~sparseattn.hw.gpu_power.waves_fill`): a prefill grid has
  ``batch x heads x ceil(q_len / 128)`` blocks (FA2/FA3 forward); a decode step (a few query rows) packs a KV
  group's query heads into one block and splits the keys to fill the SMs (Flash-Decoding:
  ``batch x kv_heads x splits``, ``splits = min(ceil(k_len / 128), ceil(SMs / (batch x kv_heads)))``). BERT-Base
  at 512 tokens and batch 1 has 48 blocks for 108 SMs: it cannot reach more than 44% of peak;
* each kernel takes at least ``launch_overhead_us`` of wall time;
* ``compute_efficiency`` is the attained fraction of the dense BF16 peak of a full wave. For the H100 it is
  **fitted** (:func:`~sparseattn.hw.gpu_fit.fit_flash_efficiency`) to torch SDPA measurements (bf16, batch 1,
  32 heads, head dim 128, non-causal; :data:`H100_SDPA_MS`, re-measured by ``benchmarks/measure_gpu_attention.py
  --suite roofline``).

**Eager PyTorch** (``kernel: eager``; SOFA's A100 baseline): :mod:`~sparseattn.hw.gpu_eager`.

**Energy** from the kernel timeline, as board power (nvidia-smi), dynamic power (board - idle, SOFA) or the board
limit: :mod:`~sparseattn.hw.gpu_power`.

**The one GPU rule.** A GPU runs dense attention of the shape, whatever trace it is handed (the papers measured
dense kernels): the ``gpu`` kind's registry entry (:mod:`~sparseattn.hw.registry`) says so -- its method is
``dense`` and its simulator reads only the shape -- so no caller special-cases a GPU.
"""

from __future__ import annotations

import math
from typing import Any

from ..core.shape import Shape
from ..core.workload import Workload
from .config import ConfigError
from .gpu_power import Kernel, energy_joules, wall_seconds, waves_fill
from .registry import ArchKind, Capabilities, register_kind
from .result import AreaItem, EnergyItem, SimResult
from .schema import GpuArch

# Dense attention on one H100 (torch SDPA, bf16, B=1, 32 heads, d=128, non-causal): tokens -> milliseconds.
H100_SDPA_MS = {4096: 0.413, 16384: 6.97, 65536: 116.0, 131072: 458.0}
DECODE_ROWS = 16  # a call with at most this many query rows per KV group runs as a decode kernel


def attention_flops(shape: Shape) -> float:
    return 4.0 * shape.valid_pairs * shape.head_dim


def attention_bytes(shape: Shape, bytes_per_element: int = 2) -> float:
    q_o = 2 * shape.layers * shape.batch * shape.heads * shape.q_len * shape.head_dim
    k_v = 2 * shape.layers * shape.batch * shape.kv_heads * shape.k_len * shape.head_dim
    return float((q_o + k_v) * bytes_per_element)


def flash_blocks(gpu: GpuArch, shape: Shape) -> float:
    """Thread blocks of one layer's FlashAttention grid (see the module docstring)."""
    if shape.q_len * shape.group_size <= DECODE_ROWS:
        groups = shape.batch * shape.kv_heads
        splits = max(1, min(math.ceil(shape.k_len / 128), math.ceil(gpu.sms / groups)))
        return float(groups * splits)
    return float(shape.batch * shape.heads * math.ceil(shape.q_len / gpu.flash_block_q))


def roofline_seconds(gpu: GpuArch, shape: Shape, dtype: str = "bf16") -> dict[str, float]:
    """Compute time (at the grid's wave fill), memory time, fill and wall time of the FlashAttention kernels of
    every layer of ``shape``, seconds."""
    if dtype not in gpu.peak_tflops:
        raise ValueError(f"{gpu.name} has no {dtype!r} peak; known: {sorted(gpu.peak_tflops)}")
    fill = waves_fill(flash_blocks(gpu, shape), gpu.sms)
    compute = attention_flops(shape) / (gpu.peak_tflops[dtype] * 1e12 * gpu.compute_efficiency * fill)
    memory = attention_bytes(shape) / (gpu.hbm_gbps * 1e9 * gpu.memory_efficiency)
    launch = gpu.launch_overhead_us * 1e-6
    per_layer = max(compute, memory) / shape.layers
    return {"compute": compute, "memory": memory, "fill": fill,
            "time": shape.layers * max(per_layer, launch), "busy": max(compute, memory)}


def flash_kernels(gpu: GpuArch, shape: Shape, dtype: str = "bf16") -> list[Kernel]:
    """One FlashAttention kernel per layer."""
    t = roofline_seconds(gpu, shape, dtype)
    per = Kernel("flash_attention", t["busy"] / shape.layers, t["fill"], gpu.launch_overhead_us * 1e-6,
                 attention_flops(shape) / shape.layers, attention_bytes(shape) / shape.layers)
    return [per] * shape.layers


def gpu_kernels(gpu: GpuArch, shape: Shape, dtype: str = "bf16") -> list[Kernel]:
    """The kernel timeline of dense attention of ``shape`` on ``gpu`` (its ``kernel`` implementation; ``dtype``:
    the FlashAttention kernel's, eager attention takes ``eager.matmul_dtype``)."""
    if gpu.kernel == "eager":
        from .gpu_eager import eager_kernels

        return eager_kernels(gpu, shape)
    return flash_kernels(gpu, shape, dtype)


def simulate_gpu(gpu: GpuArch, shape: Shape, dtype: str = "bf16") -> SimResult:
    """Dense attention of ``shape`` on ``gpu``: latency from the kernel timeline, energy as ``gpu.energy`` says."""
    kernels = gpu_kernels(gpu, shape, dtype)
    wall = wall_seconds(kernels)
    e = energy_joules(gpu, kernels)
    busy = sum(k.busy_s for k in kernels)
    clock_hz = gpu.clock_mhz * 1e6
    launch_bound = sum(k.launch_s > k.busy_s for k in kernels) / len(kernels)
    return SimResult(
        arch=gpu.name, kind=gpu.kind, method="dense", shape=shape.to_dict(), density=1.0, normalised="published",
        clock_mhz=gpu.clock_mhz, cycles=wall * clock_hz, latency_s=wall, dense_ops=attention_flops(shape),
        energy=[EnergyItem("board", "board", f"power:{gpu.energy}", e["charged"] * 1e12)],
        area=[AreaItem("die", "die", gpu.die_area_mm2, "published")],
        dram_bytes={"qkvo": sum(k.bytes for k in kernels)},
        utilisation={"busy": busy / wall, "sm_activity": sum(k.activity * k.busy_s for k in kernels) / wall},
        stage_cycles={k: sum(x.busy_s for x in kernels if x.name == k) * clock_hz
                      for k in dict.fromkeys(x.name for x in kernels)},
        compute_bound_fraction=0.0, fixed_cycles=0.0,
        notes=[f"{gpu.kernel} attention: {len(kernels)} kernels, busy {busy * 1e3:.4g} ms of {wall * 1e3:.4g} ms "
               f"({launch_bound:.0%} of kernels launch-bound); energy '{gpu.energy}': idle {e['idle']:.4g} J + "
               f"dynamic {e['dynamic']:.4g} J (board limit {gpu.board_power_w:g} W, idle {gpu.idle_power_w:g} W)"],
    )


def _simulate_kind(gpu: GpuArch, trace: Workload, shape: Shape | None = None, mapping: Any = None,
                   tech: Any = None) -> SimResult:
    """The ``gpu`` kind: dense attention of ``shape`` (default: the trace's) whatever the trace."""
    if mapping is not None:
        raise ConfigError(f"{gpu.name!r} is a GPU: it takes no mapping (its model runs dense attention)")
    result = simulate_gpu(gpu, shape or trace.shape)
    method = trace.meta.get("method")
    if method not in (None, "dense"):
        result.notes.append(f"a GPU runs dense attention of the shape; the {method!r} trace's sparsity is not used")
    return result


# a GPU runs dense attention of the shape (no trace, no mapping, no buffers to fit, no iso setting); its area is
# its published die, and it has no on-chip SRAM model
CAPABILITIES = Capabilities(method=lambda gpu: "dense", runs_trace=False, mapping=None, check_fit=None,
                            area_mm2=lambda gpu, tech: gpu.die_area_mm2, sram_kb=None, normalisable=False,
                            uses_technology=False)

register_kind(ArchKind("gpu", GpuArch, _simulate_kind, CAPABILITIES, noun="GPU"))
