"""``sparseattn eval``: perplexity with a method in the model's attention layers."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ..core.files import check_writable, write_atomic
from ..methods.registry import parse_params
from ._app import app, console, fail
from .options import parse_layers, parse_method_options


@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def eval_cmd(
    ctx: typer.Context,
    method: str = typer.Option("dense", help="method name (see `sparseattn methods`)"),
    text: str = typer.Option("moby-dick", help="bundled text: moby-dick or sotu"),
    tokens: int = typer.Option(1024, help="window length in tokens, BOS included"),
    model: str = typer.Option("smollm2-135m", help="bundled model"),
    layers: str = typer.Option(None, help="comma-separated layer indices to patch (default: all)"),
    compare: bool = typer.Option(True, help="also measure dense attention for the relative change"),
    json_out: Path = typer.Option(None, "--json", help="write the result as JSON here"),
) -> None:
    """Perplexity of the bundled model on a bundled text with METHOD in its attention layers.

    Method parameters follow as options, e.g. `sparseattn eval --method topk --ratio 0.2`.
    """
    from ..eval.perplexity import perplexity
    from ..models.loader import load_model

    try:
        check_writable(json_out, "--json")
        params = parse_method_options(list(ctx.args))
        parse_params(method, params)
        layer_list = parse_layers(layers)
        with console.status(f"loading {model} ..."):
            lm = load_model(model)
        results = []
        runs = [("dense", {})] if compare and method != "dense" else []
        for name, p in [*runs, (method, params)]:
            with console.status(f"{name}: forward pass over {tokens} tokens of {text} ..."):
                results.append(perplexity(lm, text, tokens, name, layer_list, **p))
    except SparseAttnError as err:
        fail(str(err))
        return
    table = Table(title=f"{model} on {text}, {tokens} tokens")
    for col in ("method", "parameters", "perplexity", "vs dense", "density", "seconds"):
        table.add_column(col)
    base = results[0].ppl if results[0].method == "dense" else None
    for r in results:
        rel = "-" if base is None or r is results[0] else f"{100 * (r.ppl / base - 1):+.2f}%"
        ps = ", ".join(f"{k}={v}" for k, v in r.params.items()) or "-"
        table.add_row(r.method, ps, f"{r.ppl:.3f}", rel, f"{r.density:.3f}", f"{r.seconds:.1f}")
    console.print(table)
    if json_out is not None:
        write_atomic(json_out, json.dumps([r.to_dict() for r in results], indent=1))
