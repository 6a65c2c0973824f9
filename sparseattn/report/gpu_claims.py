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

Every GPU term that is an assumption (launch floor, cuBLAS efficiency, idle and busy power) is unmeasured until
``benchmarks/measure_gpu_attention.py`` runs on a GPU and :mod:`sparseattn.hw.gpu_fit` fits it; where a claim stays
out of reach, the claim's derivation says what GPU throughput or power the paper's number implies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..hw.shapes import load_model_shape
from ..hw.traces import trace_for
from .claim import Claim, Design, Lever, build, decode_shape, geomean, sim, sim_shape, solve

SOFA_SET = (("bert-base", 512), ("bert-large", 512), ("gpt2", 1024), ("bloom-1.7b", 2048), ("llama2-7b", 4096))
PADE_SET = (
    ("llama2-7b", 2048), ("llama3-8b", 2048), ("opt-1.3b", 2048), ("bloom-1.7b", 2048), ("qwen-7b", 2048),
    ("vit-l16", 577),
)
A100_EAGER = Design("a100", overrides=(("kernel", "eager"), ("energy", "dynamic")))
H100_TRTLLM = Design("h100", overrides=(("compute_efficiency", 0.75),))  # FA3: 740 of 989 TFLOP/s (arXiv 2407.08608)
DECODE_STEPS, PADE_BATCH = 128, 8
PAPER_DENSITY = {"sofa": 0.074, "star": 0.074, "pade": 0.25}


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


def _ratio(acc, gpu, workloads, metric, run, density=None) -> float:
    return geomean(list(ratios(acc, gpu, workloads, metric, run, density).values()))


def _implied(acc: Design, gpu: Design, workloads, metric: str, run: Run, value: float) -> list[str]:
    """What the paper's ratio implies of the GPU, per the geometric mean of the set."""
    t_a = geomean([_cost(acc, m, s, run)[0] for m, s in workloads])
    t_g = geomean([_cost(gpu, m, s, run)[0] for m, s in workloads])
    e_a = geomean([_cost(acc, m, s, run)[1] for m, s in workloads])
    e_g = geomean([_cost(gpu, m, s, run)[1] for m, s in workloads])
    arch = build(gpu)
    if metric == "speed":
        dtype = arch.eager.matmul_dtype if arch.kernel == "eager" else "bf16"
        ops = geomean([sim(gpu, m, s, None, run.batch).dense_ops for m, s in workloads])
        return [f"the paper's {value}x implies the GPU took {value * t_a * 1e3:.4g} ms (geomean) where ours takes "
                f"{t_g * 1e3:.4g} ms: prefill attention at {ops / (value * t_a) / 1e12:.3g} TFLOP/s, "
                f"{ops / (value * t_a) / (arch.peak_tflops[dtype] * 1e12):.2%} of its {dtype} peak (ours "
                f"{ops / t_g / 1e12:.3g} TFLOP/s)" if not run.decode_steps else
                f"the paper's {value}x implies the GPU took {value * t_a * 1e3:.4g} ms (geomean) where ours takes "
                f"{t_g * 1e3:.4g} ms"]
    return [f"the paper's {value}x implies the GPU spent {value * e_a:.4g} J (geomean) where ours spends "
            f"{e_g:.4g} J: an average {value * e_a / t_g:.4g} W over our GPU time ({arch.energy} power; ours "
            f"{e_g / t_g:.4g} W)"]


def _assumptions(acc: Design, gpu: Design, workloads, run: Run) -> list[str]:
    arch, trace = build(gpu), trace_for(build(acc), True)
    kernel = (f"eager PyTorch attention ({arch.eager.matmul_dtype} matmuls, fp32 softmax, {arch.eager.launch_us:g} us "
              f"launch floor, cuBLAS at {arch.eager.gemm_efficiency:.0%} of peak, elementwise at "
              f"{arch.eager.memory_efficiency:.0%} of HBM bandwidth)" if arch.kernel == "eager" else
              f"FlashAttention at {arch.compute_efficiency:.0%} of the bf16 peak, thread-block waves over "
              f"{arch.sms} SMs, {arch.launch_overhead_us:g} us per launch")
    power = {"dynamic": "dynamic power (board - idle)", "board": "board power (nvidia-smi: idle + dynamic)",
             "tdp": "the board limit for the whole run"}[arch.energy]
    steps = f", then {run.decode_steps} decode steps" if run.decode_steps else ", prefill only"
    return [f"benchmark set {', '.join(f'{m}@{s}' for m, s in workloads)} (geometric mean), batch {run.batch}{steps}",
            f"{gpu.name}: {kernel}; energy: {power}, idle {arch.idle_power_w:g} W, busy {arch.board_power_w:g} W "
            "(assumptions, unmeasured: no GPU was measured for this run)",
            f"{acc.name} as published; trace {trace.meta.get('params')} captured on SmolLM2 (density "
            f"{trace.density:.3f}), scaled to each model; device energy (core + DRAM)"]


def _gpu_claim(paper: str, metric: str, value: float, acc: Design, gpu: Design, workloads, run: Run,
               variants: dict[str, tuple[Design, Run]], method: str) -> Claim:
    per = ratios(acc, gpu, workloads, metric, run)
    c = Claim(paper, f"{paper}_{metric}_vs_{gpu.name}",
              f"{'speed-up' if metric == 'speed' else 'energy efficiency'} vs {gpu.name.upper()}", value,
              geomean(list(per.values())), _assumptions(acc, gpu, workloads, run), per, method=method)
    for name, (g, r) in variants.items():
        c.variants[name] = _ratio(acc, g, workloads, metric, r)
    density = PAPER_DENSITY[paper]
    c.variants[f"{acc.name} at the paper's density {density}"] = _ratio(acc, gpu, workloads, metric, run, density)
    if metric == "energy":
        c.variants[f"{acc.name} on-chip energy only (DRAM excluded)"] = _ratio(acc, gpu, workloads, "energy_core",
                                                                               run)
    if not c.within:
        c.derivation += _implied(acc, gpu, workloads, metric, run, value)
        c.levers += _levers(acc, gpu, workloads, metric, run, value)
    return c


def _levers(acc: Design, gpu: Design, workloads, metric: str, run: Run, value: float) -> list[Lever]:
    arch = build(gpu)

    def with_gpu(path: str, x: float) -> float:
        g = Design(gpu.name, gpu.mode, (*gpu.overrides, (path, x)))
        return _ratio(acc, g, workloads, metric, run)

    if metric == "speed":
        path, cur, span, meaning = (("eager.gemm_efficiency", arch.eager.gemm_efficiency, (1e-4, 1.0),
                                     "the fraction of peak cuBLAS would have to attain") if arch.kernel == "eager"
                                    else ("compute_efficiency", arch.compute_efficiency, (1e-5, 1.0),
                                          "the fraction of its peak the GPU would have to attain"))
    else:
        path, cur, span, meaning = ("board_power_w", arch.board_power_w, (arch.idle_power_w + 1, 1e5),
                                    "the GPU's busy board power")
    return [Lever(f"{gpu.name}.{path}", cur, solve(lambda x: with_gpu(path, x), value, *span), span, meaning)]


def a100_claims(paper: str) -> list[Claim]:
    """SOFA 9.5x / 71.5x and STAR 9.2x / 71.2x speed-up and energy efficiency over the A100."""
    acc = Design(paper)
    method = ("SOFA section VI: PyTorch attention on an A100 timed with torch.cuda.synchronize, dynamic power = "
              "nvidia-smi total - idle")
    run = Run()
    variants = {
        "A100 FlashAttention-2 roofline (dynamic power)": (Design("a100", overrides=(("energy", "dynamic"),)), run),
        "A100 eager attention with fp32 matmuls (no autocast; CUDA cores)": (
            Design("a100", overrides=(("kernel", "eager"), ("energy", "dynamic"), ("eager.matmul_dtype", "fp32"))),
            run),
        "A100 eager attention, board power (idle included)": (Design("a100", overrides=(("kernel", "eager"),)), run),
        "A100 eager attention, batch 8": (A100_EAGER, Run(batch=8)),
        "A100 FlashAttention roofline, charged its board limit for the whole run": (
            Design("a100", overrides=(("energy", "tdp"),)), run),
    }
    speed, energy = (9.2, 71.2) if paper == "star" else (9.5, 71.5)
    return [_gpu_claim(paper, "speed", speed, acc, A100_EAGER, SOFA_SET, run, variants, method),
            _gpu_claim(paper, "energy", energy, acc, A100_EAGER, SOFA_SET, run, variants, method)]


def h100_claims() -> list[Claim]:
    """PADE 7.43x speed-up and 31.1x energy efficiency over the H100."""
    acc = Design("pade")
    method = ("PADE section VI: H100 with TensorRT-LLM + FlashAttention-3, batch 8-128, prefill and decode, power "
              "from nvidia-smi")
    run = Run(PADE_BATCH, DECODE_STEPS)
    variants = {
        "batch 128": (H100_TRTLLM, Run(128, DECODE_STEPS)),
        "prefill only, batch 1": (H100_TRTLLM, Run()),
        "H100 at the efficiency fitted to our SDPA measurements (0.65)": (Design("h100"), run),
        "H100 dynamic power only (board - idle)": (
            Design("h100", overrides=(("compute_efficiency", 0.75), ("energy", "dynamic"))), run),
        "H100 charged its board limit for the whole run": (
            Design("h100", overrides=(("compute_efficiency", 0.75), ("energy", "tdp"))), run),
    }
    return [_gpu_claim("pade", "speed", 7.43, acc, H100_TRTLLM, PADE_SET, run, variants, method),
            _gpu_claim("pade", "energy", 31.1, acc, H100_TRTLLM, PADE_SET, run, variants, method)]
