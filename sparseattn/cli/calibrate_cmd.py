"""``sparseattn calibrate``: each method's density knob at a loss budget on one text, judged on another."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ..core.files import write_atomic
from ..report.calibration import budget_label, loss_label, setting_label
from ._app import app, console, fail

DEFAULT_METHODS = "topk,threshold,sofa,star,pade,sanger,dota,energon,elsa,a3,spatten,star_block"


def parse_budgets(budgets: str) -> list[float]:
    """``"1%,2%"`` or ``"0.01,0.02"`` -> ``[0.01, 0.02]``; each in (0, 1)."""
    out = []
    for item in (b.strip() for b in budgets.split(",")):
        if not item:
            continue
        try:
            value = float(item[:-1]) / 100 if item.endswith("%") else float(item)
        except ValueError:
            raise SparseAttnError(f"--budget: {item!r} is not a number (give e.g. 1%,2% or 0.01,0.02)") from None
        if not 0 < value < 1:
            raise SparseAttnError(f"--budget: {item!r} must lie strictly between 0 and 1 (100%)")
        out.append(value)
    if not out:
        raise SparseAttnError("--budget: give at least one budget, e.g. 1%,2%")
    return sorted(set(out))


@app.command("calibrate")
def calibrate_cmd(
    model: str = typer.Option("smollm2-135m", help="bundled model (smollm2-135m, minilm-l6), a .gguf file, a Hugging "
                              "Face directory or a cached model id"),
    calib_text: str = typer.Option("sotu", help="text the knob is calibrated on (bundled name, file or string)"),
    text: str = typer.Option("moby-dick", help="held-out text the calibrated setting is judged on"),
    budget: str = typer.Option("1%,2%", help="loss budgets: relative perplexity increase (decoder) or 1 - cosine "
                               "(encoder), e.g. 1%,2% (an encoder's 1%,2%: cosine 0.99, 0.98)"),
    methods: str = typer.Option(DEFAULT_METHODS, help="comma-separated methods with a density knob"),
    tokens: int = typer.Option(None, help="window length (decoder default 1024; encoder passage length 256)"),
    layers: str = typer.Option(None, help="comma-separated layers to make sparse (default: all)"),
    out: Path = typer.Option(None, help="write calibration.json and calibration.md into this directory"),
    cache: Path = typer.Option(None, help="measurement cache (default $SPARSEATTN_CACHE/calibrate); reruns resume"),
) -> None:
    """For each method, the sparsest setting of its density knob within each loss budget on --calib-text, then
    that setting's loss and density on --text (held out), and the gap between them."""
    from ..eval.calibrate import calibrate_methods, window_scorer
    from ..methods.registry import knobs_of
    from ..models.loader import check_text_fits, load_model, load_tokenizer
    from .options import parse_layers

    try:
        budgets = parse_budgets(budget)
        names = [m.strip() for m in methods.split(",") if m.strip()]
        if not names:
            raise SparseAttnError("--methods: give at least one method")
        for m in names:
            knobs_of(m)
        if out is not None and out.exists() and not out.is_dir():
            raise SparseAttnError(f"--out {str(out)!r} is a file; give a directory")
        layer_list = parse_layers(layers)
        _, kind, _ = load_tokenizer(model)
        tokens = tokens or (1024 if kind == "decoder" else 256)
        if kind == "decoder":
            from ..eval.corpora import load_text

            for t in (calib_text, text):
                check_text_fits(model, load_text(t), tokens)
        with console.status(f"loading {model} ..."):
            lm = load_model(model)
        with console.status("dense reference on both texts ..."):
            calib = window_scorer(lm, calib_text, tokens, layer_list, cache_dir=cache)
            judge = window_scorer(lm, text, tokens, layer_list, cache_dir=cache)
        if calib.base["ids"] == judge.base["ids"]:
            raise SparseAttnError("--calib-text and --text give the same tokens; judge on a different text")
        rows = calibrate_methods(lm, names, calib, judge, budgets, on_point=_Progress(names, budgets),
                                 on_method=_method_done)
    except SparseAttnError as err:
        fail(str(err))
        return
    console.print(_table(rows, lm.name, kind))
    if out is not None:
        from ..report.calibration import calibration_markdown

        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "calibration.json", json.dumps([r.to_dict() for r in rows], indent=1))
        write_atomic(out / "calibration.md", calibration_markdown([r.to_dict() for r in rows]) + "\n")
        console.print(f"wrote {out / 'calibration.json'} and {out / 'calibration.md'}")


class _Progress:
    """One line per measured point, with an estimate of the time left (expected points x mean seconds each)."""

    def __init__(self, methods: list[str], budgets: list[float]) -> None:
        from ..eval.calibrate.runner import expected_points

        self.expected = sum(expected_points(m, len(budgets)) for m in methods)
        self.done, self.start = 0, time.perf_counter()

    def __call__(self, method: str, point) -> None:
        self.done += 1
        spent = time.perf_counter() - self.start
        left = max(self.expected - self.done, 0) * spent / self.done
        where = "cached" if point.cached else f"{point.seconds:.1f} s"
        console.print(f"[{self.done}/~{self.expected}] {method} {point.params}: loss {point.loss:+.4f} density "
                      f"{point.density:.3f} ({where}; about {left / 60:.1f} min left)", soft_wrap=True)


def _method_done(method: str, rows) -> None:
    for r in rows:
        state = "on budget" if r.reached else ("NOT MEASURABLE" if not r.measurable else "UNREACHED")
        console.print(f"  {method} at {budget_label(r.budget, r.kind)}: {state} {r.params} density "
                      f"{r.calib_density:.3f} (calibration) "
                      f"/ {r.judge_density:.3f} (judged), loss {r.calib_loss:+.4f} / {r.judge_loss:+.4f}")
        if r.note:
            console.print(f"    {r.note}", soft_wrap=True)


def _table(rows, model: str, kind: str) -> Table:
    loss = "ppl change" if kind == "decoder" else "1 - cosine"
    table = Table(title=f"{model}: calibrated on {rows[0].calib_text}, judged on {rows[0].judge_text}")
    for col in ("method", "budget", "setting", "density (cal)", f"{loss} (cal)", "density (judged)",
                f"{loss} (judged)", "gap"):
        table.add_column(col)
    for r in rows:
        setting = setting_label(r.params, r.reached, r.measurable)
        table.add_row(r.method, budget_label(r.budget, kind), setting, f"{r.calib_density:.3f}",
                      loss_label(r.calib_loss, kind), f"{r.judge_density:.3f}", loss_label(r.judge_loss, kind),
                      loss_label(r.gap, kind))
    return table
