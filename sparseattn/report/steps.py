"""The steps of the main job (:mod:`sparseattn.report.job`): each reads the configuration, skips the units the store
already holds, measures or simulates the rest and saves each unit as soon as it is done.

Units saved per step: ``accuracy`` and ``encoder`` -- one row per method (and ``dense``); ``hardware`` -- one row
per (design, workload); ``reproduce`` -- the claims; ``spatial`` -- one row per (design, sequence length);
``kernels`` -- the GPU timings or why they were not run. Captured traces go to ``<out>/traces/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from ..core.workload import Workload, total
from ..eval.corpora import load_text, text_label, text_names
from ..eval.embedding import _embed_all, embedding_fidelity, passages
from ..eval.fidelity import attention_fidelity, capture_qkv
from ..eval.perplexity import perplexity_of_ids
from .job import Clock, ResultStore, RunConfig

Tick = Callable[..., None]  # tick(detail) starts a unit; tick(detail, unit=False) only describes it
SPATIAL_MESH = "spatial-star-8x8"


# ------------------------------------------------------------------------------------------------ accuracy
def _fidelity(captured: dict, method: str) -> dict[str, dict[str, float]]:
    """Kept softmax mass, output error and density of ``method`` on each captured layer's real Q/K/V."""
    out = {}
    for layer, c in captured.items():
        f = attention_fidelity(c.q, c.k, c.v, method, causal=c.causal, scale=c.scale, window=c.window)
        out[str(layer)] = f.to_dict()
    return out


def _save_trace(store: ResultStore, name: str, traces: list[Workload]) -> str:
    path = store.out / "traces" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    total(traces).save(path)
    return str(path.relative_to(store.out))


def _perplexity_row(lm, ids: torch.Tensor, method: str, store: ResultStore, prefix: str) -> dict[str, Any]:
    r = perplexity_of_ids(lm, ids, method, capture_traces=True)
    row = r.to_dict()
    row["trace"] = _save_trace(store, f"{prefix}{method}", r.traces)
    return row


def accuracy_step(cfg: RunConfig, store: ResultStore, lm, tick: Tick) -> None:
    """Perplexity, density, per-layer density and fidelity of every method, beside the oracle at its density."""
    with Clock(store, "accuracy"):
        ids = lm.encode(load_text(cfg.text), cfg.tokens)
        label = text_label(cfg.text)
        if store.get("accuracy", "dense") is None:
            tick("dense attention (the reference)")
            store.put("accuracy", "dense", {**_perplexity_row(lm, ids, "dense", store, "decoder-"), "text": label})
        base = store.get("accuracy", "dense")["ppl"]
        layers = [i for i in cfg.fidelity_layers if i < lm.num_layers]
        captured = None
        for method in cfg.methods:
            if store.get("accuracy", method) is not None:
                continue
            tick(f"{method}: perplexity over {cfg.tokens} tokens")
            captured = captured if captured is not None else capture_qkv(lm, cfg.text, cfg.tokens, layers)
            row = {**_perplexity_row(lm, ids, method, store, "decoder-"), "text": label}
            row["ppl_change"] = row["ppl"] / base - 1
            row["fidelity"] = _fidelity(captured, method)
            tick(f"{method}: top-k oracle at density {row['density']:.3f}", unit=False)
            oracle = perplexity_of_ids(lm, ids, "topk", ratio=min(1.0, max(row["density"], 1e-3)))
            row["oracle"] = {"ppl": oracle.ppl, "density": oracle.density, "ppl_change": oracle.ppl / base - 1}
            store.put("accuracy", method, row)


# ------------------------------------------------------------------------------------------------ encoder
def encoder_texts(cfg: RunConfig, enc) -> tuple[list[str] | None, list[str], str]:
    """The texts the encoder's passages come from: the run's own text (``--text``) when it is not a bundled one and
    holds enough tokens for the passages, else every bundled text; with their labels and, when the run's text could
    not be used, why."""
    if cfg.text in text_names():
        return None, text_names(), ""
    n = len(enc.tokenizer(load_text(cfg.text), add_special_tokens=False, verbose=False).input_ids)
    if n >= cfg.passages * cfg.encoder_tokens:
        return [cfg.text], [text_label(cfg.text)], ""
    return None, text_names(), (f"{text_label(cfg.text)} has {n:,} encoder tokens, too few for {cfg.passages} "
                                f"passages of {cfg.encoder_tokens}; the encoder used the bundled texts")


def encoder_step(cfg: RunConfig, store: ResultStore, enc, tick: Tick) -> None:
    """Embedding cosine and retrieval agreement of every method on the encoder, with its traces; the passages come
    from the run's text when it is the user's own (:func:`encoder_texts`)."""
    with Clock(store, "encoder"):
        texts, labels, why = encoder_texts(cfg, enc)
        items = passages(enc, cfg.encoder_tokens, cfg.passages, texts)
        dense = _embed_all(enc, items)
        for method in ["dense", *cfg.methods]:
            if store.get("encoder", method) is not None:
                continue
            tick(f"encoder: {method} on {len(items)} passages")
            r = embedding_fidelity(enc, method, cfg.encoder_tokens, per_text=cfg.passages, texts=texts, dense=dense,
                                   capture_traces=True)
            row = {**r.to_dict(), "texts": labels, **({"texts_note": why} if why else {})}
            row["trace"] = _save_trace(store, f"encoder-{method}", r.traces)
            store.put("encoder", method, row)


# ------------------------------------------------------------------------------------------------ hardware
def accelerators_of(method: str) -> list[str]:
    """Bundled accelerators that run ``method``'s trace."""
    from ..hw import load_arch
    from ..hw.schema import arch_names

    return [n for n in arch_names() if getattr(load_arch(n), "kind", "") == "accelerator"
            and load_arch(n).method == method]


def _sim_row(arch: str, trace: Workload, shape_name: str, seq: int, workload: str) -> dict[str, Any]:
    from ..hw import load_arch, load_model_shape, simulate
    from .reproduce import energy_categories

    shape = load_model_shape(shape_name).shape(seq)
    r = simulate(load_arch(arch), trace, shape)
    return {"arch": arch, "method": r.method, "workload": workload, "shape": shape_name, "seq": seq,
            **r.summary(), "density": r.density, "energy_parts_mj": energy_categories(r),
            "scaled_from": trace.shape.to_dict(), "notes": r.notes}


def hardware_step(cfg: RunConfig, store: ResultStore, tick: Tick) -> None:
    """Every method with an accelerator on it, and dense attention on each GPU, at the papers' shapes."""
    with Clock(store, "hardware"):
        workloads = [("decoder", "accuracy", cfg.decoder_shape, cfg.decoder_seq)]
        if cfg.encoder:
            workloads.append(("encoder", "encoder", cfg.encoder_shape, cfg.encoder_seq))
        for kind, step, shape, seq in workloads:
            dense = Workload.load(store.out / store.get(step, "dense")["trace"])
            for gpu in cfg.gpus:
                unit = f"{gpu}@{kind}"
                if store.get("hardware", unit) is None:
                    tick(f"simulate dense attention on {gpu}, {shape} at {seq}")
                    store.put("hardware", unit, _sim_row(gpu, dense, shape, seq, kind))
            for method in cfg.methods:
                row = store.get(step, method)
                for arch in accelerators_of(method):
                    unit = f"{arch}@{kind}"
                    if row is None or store.get("hardware", unit) is not None:
                        continue
                    tick(f"simulate {arch} on {method}'s {kind} trace, {shape} at {seq}")
                    store.put("hardware", unit, _sim_row(arch, Workload.load(store.out / row["trace"]), shape, seq,
                                                         kind))


# ------------------------------------------------------------------------------------------------ reproduce
def reproduce_step(cfg: RunConfig, store: ResultStore, tick: Tick) -> None:
    """The papers' headline claims (bundled traces), with JSON, markdown and figures under ``reproduce/``."""
    if not cfg.reproduce or store.get("reproduce", "claims") is not None:
        return
    from .reproduce import reproduce

    with Clock(store, "reproduce"):
        tick("the papers' headline claims: simulating every design")
        reproduce(out_dir=store.out / "reproduce")
        written = json.loads((store.out / "reproduce" / "reproduce.json").read_text())
        store.put("reproduce", "validation", written["validation"])
        store.put("reproduce", "claims", written["claims"])


# ------------------------------------------------------------------------------------------------ spatial
def spatial_step(cfg: RunConfig, store: ResultStore, tick: Tick) -> None:
    """Spatial-STAR vs its baseline over sequence lengths, when the spatial model is installed."""
    if not cfg.spatial or store.get("spatial", "rows") is not None:
        return
    from ..hw.spatial.sweep import DESIGNS, run, sweep_points

    with Clock(store, "spatial"):
        points = sweep_points([SPATIAL_MESH], [cfg.decoder_shape], cfg.spatial_seqs, DESIGNS)
        rows, _ = run(points, lambda p: tick(f"Spatial-STAR: {p.design} at {p.seq:,} tokens on {p.arch}"))
        store.put("spatial", "rows", rows)


# ------------------------------------------------------------------------------------------------ dse
def dse_step(cfg: RunConfig, store: ResultStore, tick: Tick) -> None:
    """A small Bayesian (TPE) search of STAR's cross-stage tiling on the decoder shape (the study is stored in
    ``<out>/dse/study.sqlite``, so an interrupted search resumes)."""
    if not cfg.dse_trials or store.get("dse", "summary") is not None:
        return
    from ..dse import StudyConfig, load_space, run_study, write_outputs
    from ..dse.outputs import baseline, summary

    with Clock(store, "dse"):
        tick(f"design-space search: STAR tiling, {cfg.dse_trials} TPE trials")
        out = store.out / "dse"
        out.mkdir(parents=True, exist_ok=True)
        space = load_space("star-tiling", seq=cfg.decoder_seq)
        res = run_study(space, StudyConfig(sampler="tpe", n_trials=cfg.dse_trials, seed=0, out=out, workers=1,
                                           storage=f"sqlite:///{out / 'study.sqlite'}", progress=False))
        write_outputs(space, res, out)
        data = summary(space, res, baseline(space))
        store.put("dse", "summary", {k: data[k] for k in ("space", "objectives", "parameters", "grid_size",
                                                          "trials", "feasible", "baseline", "best", "wall_s")})


# ------------------------------------------------------------------------------------------------ kernels
def kernels_step(cfg: RunConfig, store: ResultStore, tick: Tick) -> None:
    """The Triton kernel vs PyTorch SDPA on the GPU, or why it was not run."""
    if store.get("kernels", "rows") is not None:
        return
    if cfg.device != "cuda" or not torch.cuda.is_available():
        store.put("kernels", "rows", {"run": False, "reason": "no CUDA device (run with --device cuda on a GPU; "
                                      "benchmarks/bench_gpu.py has the full sweep)"})
        return
    with Clock(store, "kernels"):
        rows = []
        for n in (4096, 16384):
            tick(f"GPU: star_gpu vs SDPA at {n} tokens")
            rows.append(_gpu_timing(n))
        store.put("kernels", "rows", rows)


def _gpu_timing(n: int) -> dict[str, Any]:
    """One causal bf16 layer of 32 heads, head dim 128: star_gpu (prediction + selection + attention) vs SDPA."""
    import sparseattn

    from ..kernels._runtime import cuda_ms

    q, k, v = (torch.randn(1, 32, n, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    sdpa = cuda_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
    ours = cuda_ms(lambda: sparseattn.attention(q, k, v, "star_gpu", causal=True))
    return {"tokens": n, "sdpa_ms": sdpa, "star_gpu_ms": ours, "speedup": sdpa / ours}


