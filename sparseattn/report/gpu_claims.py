"""The accelerators against GPUs as the papers measured them (issue 12, section 2).

* **SOFA / STAR vs A100**: eager PyTorch attention (the score matrix materialised between seven kernels per layer,
  fp16 matmuls with the fp32 softmax the code asks for, a launch floor per kernel; :mod:`sparseattn.hw.gpu_eager`),
  timed end to end, energy from **dynamic** power (board - idle, SOFA section VI), batch 1, on SOFA's models at their
  stated lengths. The accelerator's energy is its device energy (core + DRAM).
* **PADE vs H100**: TensorRT-LLM with FlashAttention-3 (FA3 forward at 740/989 = 75% of the BF16 peak), batch 8 (the
  low end of PADE's 8-128), a prefill of the benchmark length then 128 decode steps (TensorRT-LLM's standard
  2048-in / 128-out benchmark shape; memory-bound decode), energy as nvidia-smi reads it (board power: idle +
  dynamic). ViT-L/16 has no decode. The decode steps are simulated at the mean context (``S + 64``): a step's work is
  linear in its context.

Every GPU term that is an assumption (precision, launch floor, cuBLAS and FlashAttention efficiency, idle and busy
power, batch) is a bracketed choice in ``hw/published/claims.yaml`` (:mod:`~sparseattn.report.brackets`) until
``benchmarks/measure_gpu_attention.py`` runs on a GPU and :mod:`sparseattn.hw.gpu_fit` fits it. This module holds the
workload sets and the GPU / accelerator ratios the claims are made of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..hw.shapes import load_model_shape
from .claim import Design, decode_shape, sim, sim_shape

SOFA_SET = (("bert-base", 512), ("bert-large", 512), ("gpt2", 1024), ("bloom-1.7b", 2048), ("llama2-7b", 4096))
PADE_SET = (
    ("llama2-7b", 2048), ("llama3-8b", 2048), ("opt-1.3b", 2048), ("bloom-1.7b", 2048), ("qwen-7b", 2048),
    ("vit-l16", 577),
)
A100_EAGER = Design("a100", overrides=(("kernel", "eager"), ("energy", "dynamic")))
H100_TRTLLM = Design("h100", overrides=(("compute_efficiency", 0.75),))  # FA3: 740 of 989 TFLOP/s (arXiv 2407.08608)
DECODE_STEPS, PADE_BATCH = 128, 8


@dataclass(frozen=True)
class Run:
    """How a claim's workloads run: batch, decode steps after the prefill."""

    batch: int = 1
    decode_steps: int = 0


def _cost(design: Design, model: str, seq: int, run: Run, density: float | None = None) -> tuple[float, float]:
    """Seconds and joules of a prefill of ``seq`` tokens plus the run's decode steps (causal models only)."""
    pre = sim(design, model, seq, density, run.batch)
    t, e = pre.latency_s, pre.energy_j
    if run.decode_steps and load_model_shape(model).causal:
        step = sim_shape(design, decode_shape(model, seq + run.decode_steps // 2, run.batch), density)
        t, e = t + run.decode_steps * step.latency_s, e + run.decode_steps * step.energy_j
    return t, e


def _on_chip(design: Design, model: str, seq: int, run: Run) -> float:
    pre = sim(design, model, seq, None, run.batch)
    e = pre.on_chip_energy_j()
    if run.decode_steps and load_model_shape(model).causal:
        e += run.decode_steps * sim_shape(design, decode_shape(model, seq + run.decode_steps // 2, run.batch)
                                          ).on_chip_energy_j()
    return e


def ratios(acc: Design, gpu: Design, workloads: Sequence[tuple[str, int]], metric: str, run: Run,
           density: float | None = None) -> dict[str, float]:
    """GPU / accelerator time (``speed``) or energy (``energy``; ``energy_core``: accelerator without DRAM)."""
    out = {}
    for model, seq in workloads:
        t_a, e_a = _cost(acc, model, seq, run, density)
        t_g, e_g = _cost(gpu, model, seq, run)
        if metric == "speed":
            out[f"{model}@{seq}"] = t_g / t_a
        elif metric == "energy":
            out[f"{model}@{seq}"] = e_g / e_a
        else:
            out[f"{model}@{seq}"] = e_g / _on_chip(acc, model, seq, run)
    return out
