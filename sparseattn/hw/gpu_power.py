"""GPU energy from kernel timelines: board power as nvidia-smi reads it, dynamic power, or the board limit.

A GPU run is a sequence of kernels (:class:`Kernel`): each is busy for ``busy_s`` (its roofline time) on a fraction
``activity`` of the SMs, and takes ``max(busy_s, launch_s)`` of wall time -- a kernel shorter than its launch floor
leaves the GPU waiting for the host (PyTorch eager dispatch, ``cudaLaunchKernel``).

Power model (assumptions until measured with ``benchmarks/measure_gpu_attention.py``):

* idle: the board draws ``idle_power_w`` whatever it does;
* busy: a kernel occupying every SM draws ``busy_power_w`` (measured) or, until measured, the board limit
  ``board_power_w``; one occupying a fraction of them draws ``idle + (busy - idle) x activity`` -- dynamic power in
  proportion to the SMs it keeps busy (``power_scaling: occupancy``; ``busy``: the full busy power whatever the
  occupancy);
* waiting for a launch: idle power.

Three ways to charge it (``GpuArch.energy``):

* ``board`` -- what ``nvidia-smi --query-gpu=power.draw`` integrates: idle x wall time + dynamic energy (PADE
  section VI reads nvidia-smi);
* ``dynamic`` -- board minus idle, SOFA's measurement ("dynamic power = nvidia-smi total - idle", section VI);
* ``tdp`` -- the board limit for the whole run (a variant: the upper bound of what a busy board can draw).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .schema import GpuArch


@dataclass(frozen=True)
class Kernel:
    """One kernel launch: busy time, the fraction of SMs it keeps busy, its launch floor, and what it is."""

    name: str
    busy_s: float
    activity: float
    launch_s: float = 0.0
    flops: float = 0.0
    bytes: float = 0.0

    @property
    def wall_s(self) -> float:
        return max(self.busy_s, self.launch_s)


def wall_seconds(kernels: Sequence[Kernel]) -> float:
    """Wall time of kernels run one after another."""
    return sum(k.wall_s for k in kernels)


def dynamic_joules(gpu: GpuArch, kernels: Sequence[Kernel]) -> float:
    """Energy above idle: ``(busy power - idle) x activity x busy time`` summed over the kernels (activity taken
    as 1 with ``gpu.power_scaling = busy``)."""
    scaled = gpu.power_scaling == "occupancy"
    return sum((gpu.busy_w - gpu.idle_power_w) * (k.activity if scaled else 1.0) * k.busy_s for k in kernels)


def energy_joules(gpu: GpuArch, kernels: Sequence[Kernel]) -> dict[str, float]:
    """Idle, dynamic and charged energy of a kernel timeline under ``gpu.energy`` (see the module docstring)."""
    wall = wall_seconds(kernels)
    dynamic = dynamic_joules(gpu, kernels)
    idle = gpu.idle_power_w * wall
    charged = {"board": idle + dynamic, "dynamic": dynamic, "tdp": gpu.board_power_w * wall}[gpu.energy]
    return {"idle": idle, "dynamic": dynamic, "charged": charged, "wall_s": wall}


def waves_fill(blocks: float, sms: int) -> float:
    """Fraction of SM-slots a grid of ``blocks`` thread blocks keeps busy over its waves,
    ``blocks / (ceil(blocks / sms) x sms)`` (one resident block per SM: the wave-quantisation model)."""
    if blocks <= 0:
        return 1.0
    waves = math.ceil(blocks / sms - 1e-9)
    return blocks / (waves * sms)
