"""GPU roofline for dense attention (A100 / H100), validated against H100 measurements.

``time = max(FLOPs / (peak x compute_efficiency), bytes / (HBM bandwidth x memory_efficiency)) + launch``

* FLOPs of a FlashAttention-class kernel: ``4 x valid pairs x head_dim`` (Q.K^T and P.V, multiply + add);
  causal kernels skip the masked half, so valid pairs is what they pay.
* Bytes: Q, K, V read and O written once (the kernel never writes the score matrix), 2 bytes per element.
* ``compute_efficiency`` is the attained fraction of the dense BF16 peak. For the H100 it is **fitted** to the
  measurements below (torch SDPA, bf16, batch 1, 32 heads, head dim 128, non-causal), which attain 607-665
  TFLOP/s: one factor, 0.63, puts every point within 7% (:data:`H100_SDPA_MS`, tested).
* Energy = ``board_power_w x time``: the GPU is charged its board power for the whole run (stated in the config;
  the SOFA paper subtracts idle power, PADE reads nvidia-smi).

**The one GPU rule.** A GPU runs dense attention of the shape, whatever trace it is handed (the papers measured
dense FlashAttention-class kernels): the ``gpu`` kind's registry entry (:mod:`~sparseattn.hw.registry`) says so --
its method is ``dense`` and its simulator reads only the shape -- so no caller special-cases a GPU.
"""

from __future__ import annotations

from typing import Any

from ..core.shape import Shape
from ..core.workload import Workload
from .config import ConfigError
from .registry import ArchKind, register_kind
from .result import AreaItem, EnergyItem, SimResult
from .schema import GpuArch

# Dense attention on one H100 (torch SDPA, bf16, B=1, 32 heads, d=128, non-causal): tokens -> milliseconds.
H100_SDPA_MS = {4096: 0.413, 16384: 6.97, 65536: 116.0, 131072: 458.0}


def attention_flops(shape: Shape) -> float:
    return 4.0 * shape.valid_pairs * shape.head_dim


def attention_bytes(shape: Shape, bytes_per_element: int = 2) -> float:
    q_o = 2 * shape.layers * shape.batch * shape.heads * shape.q_len * shape.head_dim
    k_v = 2 * shape.layers * shape.batch * shape.kv_heads * shape.k_len * shape.head_dim
    return float((q_o + k_v) * bytes_per_element)


def roofline_seconds(gpu: GpuArch, shape: Shape, dtype: str = "bf16") -> dict[str, float]:
    """Compute time, memory time and the roofline time (their max plus launch overhead), seconds."""
    if dtype not in gpu.peak_tflops:
        raise ValueError(f"{gpu.name} has no {dtype!r} peak; known: {sorted(gpu.peak_tflops)}")
    compute = attention_flops(shape) / (gpu.peak_tflops[dtype] * 1e12 * gpu.compute_efficiency)
    memory = attention_bytes(shape) / (gpu.hbm_gbps * 1e9 * gpu.memory_efficiency)
    launch = gpu.launch_overhead_us * 1e-6 * shape.layers
    return {"compute": compute, "memory": memory, "time": max(compute, memory) + launch}


def simulate_gpu(gpu: GpuArch, shape: Shape, dtype: str = "bf16") -> SimResult:
    """Dense attention of ``shape`` on ``gpu``."""
    t = roofline_seconds(gpu, shape, dtype)
    clock_hz = gpu.clock_mhz * 1e6
    return SimResult(
        arch=gpu.name,
        kind=gpu.kind,
        method="dense",
        shape=shape.to_dict(),
        density=1.0,
        normalised="published",
        clock_mhz=gpu.clock_mhz,
        cycles=t["time"] * clock_hz,
        latency_s=t["time"],
        dense_ops=attention_flops(shape),
        energy=[EnergyItem("board", "board", "power", gpu.board_power_w * t["time"] * 1e12)],
        area=[AreaItem("die", "die", gpu.die_area_mm2, "published")],
        dram_bytes={"qkvo": attention_bytes(shape)},
        utilisation={"tensor_cores": t["compute"] / t["time"]},
        stage_cycles={},
        compute_bound_fraction=float(t["compute"] >= t["memory"]),
        fixed_cycles=gpu.launch_overhead_us * 1e-6 * shape.layers * clock_hz,
        notes=[f"roofline: compute {t['compute'] * 1e3:.4g} ms, memory {t['memory'] * 1e3:.4g} ms, "
               f"board power {gpu.board_power_w} W, {dtype}, efficiency {gpu.compute_efficiency}"],
    )


def _simulate_kind(gpu: GpuArch, trace: Workload, shape: Shape | None = None, mapping: Any = None,
                   tech: Any = None) -> SimResult:
    """The ``gpu`` kind: dense attention of ``shape`` (default: the trace's) whatever the trace."""
    if mapping is not None:
        raise ConfigError(f"{gpu.name!r} is a GPU: it takes no mapping (its roofline runs dense attention)")
    result = simulate_gpu(gpu, shape or trace.shape)
    method = trace.meta.get("method")
    if method not in (None, "dense"):
        result.notes.append(f"a GPU runs dense attention of the shape; the {method!r} trace's sparsity is not used")
    return result


register_kind(ArchKind("gpu", GpuArch, _simulate_kind, lambda gpu: "dense"))
