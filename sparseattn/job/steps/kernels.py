"""The kernels step: with ``device="cuda"`` on a GPU, the Triton kernel (``star_gpu``) against PyTorch SDPA at two
lengths; elsewhere, recorded as not run and why. One unit, ``rows``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...report.render import kernels_section
from ...report.rows import KernelRow, NotRun, RunView
from ..config import RunConfig
from ..step import Context, Done, Step
from ..store import ResultStore

LENGTHS = (4096, 16384)
NO_GPU = "no CUDA device (run with --device cuda on a GPU; benchmarks/bench_gpu.py has the full sweep)"


def gpu_timing(n: int) -> KernelRow:
    """One causal bf16 layer of 32 heads, head dim 128: star_gpu (prediction + selection + attention) vs SDPA."""
    import torch

    from ...kernels._runtime import cuda_ms
    from ...methods.entry import attention

    q, k, v = (torch.randn(1, 32, n, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    sdpa = cuda_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
    ours = cuda_ms(lambda: attention(q, k, v, "star_gpu", causal=True))
    return KernelRow(tokens=n, sdpa_ms=sdpa, star_gpu_ms=ours, speedup=sdpa / ours)


class Kernels(Step):
    """Time the Triton kernel against SDPA on the GPU, or record why it was not run."""

    name: ClassVar[str] = "kernels"
    title: ClassVar[str] = "GPU kernels"
    unit_name: ClassVar[str] = "length"
    tables: ClassVar[dict[str, Any]] = {"kernels": list[KernelRow] | NotRun}

    def enabled(self, cfg: RunConfig) -> bool:
        return True

    def units(self, cfg: RunConfig) -> list[str]:
        return ["rows"]

    def progress_units(self, cfg: RunConfig, store: ResultStore) -> int:
        """One per length timed, on a CUDA run (elsewhere the step only records why it did not run)."""
        return len(LENGTHS) * int(cfg.device == "cuda") * super().progress_units(cfg, store)

    def unit_s(self, cfg: RunConfig) -> float:
        return 5.0

    def run(self, ctx: Context) -> Iterator[Done]:
        import torch

        if ctx.done("kernels", "rows"):
            return
        if ctx.cfg.device != "cuda" or not torch.cuda.is_available():
            yield Done("rows", NotRun(run=False, reason=NO_GPU))
            return
        rows = []
        for n in LENGTHS:
            ctx.tick(f"GPU: star_gpu vs SDPA at {n} tokens")
            rows.append(gpu_timing(n))
        yield Done("rows", rows)

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        return kernels_section(view)
