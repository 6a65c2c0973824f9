"""The accuracy step: the decoder (SmolLM2 by default) on a text window with every method in every layer at its
default setting -- perplexity, density (overall and per layer), attention fidelity on a few layers (kept softmax mass,
output error), each method beside the top-k oracle at its own density. Each method's trace of every layer is saved
under ``<out>/traces/`` for the hardware step. Units: ``dense`` and every method."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...core.workload import Workload, total
from ...report.render import accuracy_section
from ...report.rows import AccuracyRow, FidelityRow, OracleRow, RunView
from .. import progress
from ..config import RunConfig
from ..step import Context, Done, Step


def save_trace(out: Path, name: str, traces: list[Workload]) -> str:
    """Save one measurement's per-layer traces as one trace file; its path relative to ``out``."""
    path = out / "traces" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    total(traces).save(path)
    return str(path.relative_to(out))


def _fidelity(captured: dict, method: str) -> dict[int, FidelityRow]:
    """Kept softmax mass, output error and density of ``method`` on each captured layer's real Q/K/V."""
    from ...eval.fidelity import attention_fidelity

    out = {}
    for layer, c in captured.items():
        f = attention_fidelity(c.q, c.k, c.v, method, causal=c.causal, scale=c.scale, window=c.window)
        out[layer] = FidelityRow(**f.to_dict())
    return out


def _measured(ctx: Context, lm, ids, method: str) -> dict[str, Any]:
    """The perplexity of ``method`` in every layer, with its saved trace and the text's label."""
    from ...eval.corpora import text_label
    from ...eval.perplexity import perplexity_of_ids

    r = perplexity_of_ids(lm, ids, method, capture_traces=True)
    return {**r.to_dict(), "trace": save_trace(ctx.out, f"decoder-{method}", r.traces),
            "text": text_label(ctx.cfg.text)}


def _method_row(ctx: Context, lm, ids, method: str, base: float, captured: dict) -> AccuracyRow:
    """A sparse method's row: perplexity and its change, fidelity, and the top-k oracle at its density."""
    from ...eval.perplexity import perplexity_of_ids

    row = _measured(ctx, lm, ids, method)
    row.update(ppl_change=row["ppl"] / base - 1, fidelity=_fidelity(captured, method))
    ctx.tick(f"{method}: top-k oracle at density {row['density']:.3f}", unit=False)
    oracle = perplexity_of_ids(lm, ids, "topk", ratio=min(1.0, max(row["density"], 1e-3)))
    row["oracle"] = OracleRow(ppl=oracle.ppl, density=oracle.density, ppl_change=oracle.ppl / base - 1)
    return AccuracyRow.model_validate(row)


class Accuracy(Step):
    """Perplexity, density, per-layer density and fidelity of every method, beside the oracle at its density."""

    name: ClassVar[str] = "accuracy"
    title: ClassVar[str] = "Accuracy on the decoder"
    unit_name: ClassVar[str] = "method"
    tables: ClassVar[dict[str, Any]] = {"accuracy": AccuracyRow}

    def enabled(self, cfg: RunConfig) -> bool:
        return True

    def units(self, cfg: RunConfig) -> list[str]:
        return ["dense", *cfg.methods]

    def unit_s(self, cfg: RunConfig) -> float:
        return progress.DECODER_UNIT_S_PER_1K_TOKENS * cfg.tokens / 1024

    def fixed_s(self, cfg: RunConfig) -> float:
        return progress.LOAD_MODEL_S

    def start(self, cfg: RunConfig) -> str:
        return f"loading {cfg.model}"

    def run(self, ctx: Context) -> Iterator[Done]:
        from ...eval.corpora import load_text
        from ...eval.fidelity import capture_qkv

        cfg, lm = ctx.cfg, ctx.model(ctx.cfg.model)
        ids = lm.encode(load_text(cfg.text), cfg.tokens)
        if not ctx.done("accuracy", "dense"):
            ctx.tick("dense attention (the reference)")
            yield Done("dense", AccuracyRow.model_validate(_measured(ctx, lm, ids, "dense")))
        base = ctx.store.get("accuracy", "dense").ppl
        layers = [i for i in cfg.fidelity_layers if i < lm.num_layers]
        captured = None
        for method in cfg.methods:
            if ctx.done("accuracy", method):
                continue
            ctx.tick(f"{method}: perplexity over {cfg.tokens} tokens")
            captured = captured if captured is not None else capture_qkv(lm, cfg.text, cfg.tokens, layers)
            yield Done(method, _method_row(ctx, lm, ids, method, base, captured))

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        return accuracy_section(view, figs)
