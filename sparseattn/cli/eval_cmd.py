"""``sparseattn eval``: perplexity with a method in the model's attention layers."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ..core.files import check_writable, write_atomic
from ..core.invariants import check_rows
from ..methods.registry import parse_params
from ._app import app, console, fail
from .options import flag, parse_layers, parse_method_options


@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def eval_cmd(
    ctx: typer.Context,
    method: str = typer.Option("dense", help="method name (see `sparseattn methods`)"),
    text: str = typer.Option("moby-dick", help="bundled text (moby-dick, sotu), a UTF-8 file, or a string of text"),
    tokens: int = typer.Option(None, help="window length in tokens, special tokens included (decoder default 1024, "
                               "encoder 256)"),
    model: str = typer.Option("smollm2-135m", help="bundled model (smollm2-135m, minilm-l6), a .gguf file, a Hugging "
                              "Face directory or a cached model id"),
    layers: str = typer.Option(None, help="comma-separated layer indices to patch (default: all)"),
    compare: bool = flag(True, "compare", help="also measure dense attention for the relative change (decoders)"),
    device: str = typer.Option("cpu", help="cpu, or cuda (GPU kernels such as star_gpu; long windows)"),
    json_out: Path = typer.Option(None, "--json", help="write the result as JSON here"),
) -> None:
    """A method's accuracy cost: perplexity of a decoder on a text, or an encoder's embedding cosine and retrieval
    agreement on passages of the texts, with METHOD in its attention layers.

    Method parameters follow as options, e.g. `sparseattn eval --method topk --ratio 0.2`.
    """
    from ..eval.corpora import load_text, text_label
    from ..models.loader import check_text_fits, load_model, load_tokenizer

    try:
        check_writable(json_out, "--json")
        params = parse_method_options(list(ctx.args))
        parse_params(method, params)
        layer_list = parse_layers(layers)
        if device not in ("cpu", "cuda"):
            raise SparseAttnError(f"--device must be cpu or cuda, got {device!r}")
        if tokens is not None and tokens < 2:
            raise SparseAttnError(f"--tokens {tokens}: a window needs at least 2 tokens")
        content = load_text(text)
        _, kind, _ = load_tokenizer(model)
        tokens = tokens if tokens is not None else (1024 if kind == "decoder" else 256)
        if kind == "decoder":
            check_text_fits(model, content, tokens)
        with console.status(f"loading {model} ..."):
            lm = load_model(model, device=device)
        rows = (_decoder(lm, content, text_label(text), tokens, method, params, layer_list, compare) if kind ==
                "decoder" else _encoder(lm, text, tokens, method, params, layer_list))
    except SparseAttnError as err:
        fail(str(err))
        return
    if json_out is not None:
        write_atomic(json_out, json.dumps(rows, indent=1))


def _decoder(lm, content: str, label: str, tokens: int, method: str, params: dict, layers, compare: bool) -> list:
    from ..eval.perplexity import perplexity

    results = []
    runs = [("dense", {})] if compare and method != "dense" else []
    for name, p in [*runs, (method, params)]:
        with console.status(f"{name}: forward pass over {tokens} tokens of {label} ..."):
            r = perplexity(lm, content, tokens, name, layers, **p)
            r.text = label
            results.append(r)
    check_rows([r.to_dict() for r in results], "eval")  # finite, density in [0, 1], before anything is printed
    table = Table(title=f"{lm.name} on {label}, {tokens} tokens")
    for col in ("method", "parameters", "perplexity", "vs dense", "density", "seconds"):
        table.add_column(col)
    base = results[0].ppl if results[0].method == "dense" else None
    for r in results:
        rel = "-" if base is None or r is results[0] else f"{100 * (r.ppl / base - 1):+.2f}%"
        ps = ", ".join(f"{k}={v}" for k, v in r.params.items()) or "-"
        table.add_row(r.method, ps, f"{r.ppl:.3f}", rel, f"{r.density:.3f}", f"{r.seconds:.1f}")
    console.print(table)
    return [r.to_dict() for r in results]


def _encoder(lm, text: str, tokens: int, method: str, params: dict, layers) -> list:
    from ..eval.corpora import text_names
    from ..eval.embedding import embedding_fidelity

    texts = None if text in text_names() else [text]  # a bundled name: every bundled text, as the benchmark
    with console.status(f"{method}: embedding passages of {tokens} tokens ..."):
        r = embedding_fidelity(lm, method, tokens, layers, texts=texts, per_text=24 if texts is None else 8,
                               **params)
    check_rows([r.to_dict()], "eval")
    table = Table(title=f"{lm.name}: embeddings of {r.n_passages} passages of {tokens} tokens")
    for col in ("method", "parameters", "cosine to dense", "worst passage", "retrieval agreement", "density"):
        table.add_column(col)
    ps = ", ".join(f"{k}={v}" for k, v in r.params.items()) or "-"
    table.add_row(r.method, ps, f"{r.cosine:.4f}", f"{r.cosine_min:.4f}", f"{r.retrieval_agreement:.3f}",
                  f"{r.density:.3f}")
    console.print(table)
    return [r.to_dict()]
