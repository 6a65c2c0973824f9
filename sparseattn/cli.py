"""Command line: ``sparseattn methods | eval | run | simulate | reproduce``."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .api import methods as list_methods
from .core.errors import SparseAttnError
from .methods.registry import parse_params

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Dynamic sparse attention: methods, accuracy, sweeps."
)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code=2)


@app.command("methods")
def methods_cmd() -> None:
    """List the registered methods and their parameters."""
    table = Table(title="sparseattn methods")
    for col in ("method", "parameter", "type", "default", "range", "meaning"):
        table.add_column(col)
    for name, info in list_methods().items():
        table.add_row(f"[bold]{name}[/]", "", "", "", "", info.summary)
        for p in info.parameters:
            table.add_row("", p.name, p.type, repr(p.default), p.constraints, p.description)
    console.print(table)


def _coerce(value: str) -> Any:
    if value.startswith("["):  # per-layer lists, e.g. --Tc "[2, 4, 8]"
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise SparseAttnError(f"cannot parse the list {value!r}; write it as JSON, e.g. [2, 4, 8]") from None
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def parse_method_options(args: list[str]) -> dict[str, Any]:
    """``['--ratio', '0.2', '--block-size=64']`` -> ``{'ratio': 0.2, 'block_size': 64}``."""
    params: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise SparseAttnError(f"unexpected argument {arg!r}; method parameters are given as --name value")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise SparseAttnError(f"parameter --{name} needs a value")
            value = args[i + 1]
            i += 1
        params[name.replace("-", "_")] = _coerce(value)
        i += 1
    return params


def _parse_layers(layers: str | None) -> list[int] | None:
    if layers is None:
        return None
    try:
        return [int(x) for x in layers.split(",") if x.strip()]
    except ValueError:
        raise SparseAttnError(f"--layers must be comma-separated integers, got {layers!r}") from None


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
    from .eval.perplexity import perplexity
    from .models.loader import load_model

    try:
        params = parse_method_options(list(ctx.args))
        parse_params(method, params)
        layer_list = _parse_layers(layers)
        with console.status(f"loading {model} ..."):
            lm = load_model(model)
        results = []
        runs = [("dense", {})] if compare and method != "dense" else []
        for name, p in [*runs, (method, params)]:
            with console.status(f"{name}: forward pass over {tokens} tokens of {text} ..."):
                results.append(perplexity(lm, text, tokens, name, layer_list, **p))
    except SparseAttnError as err:
        _fail(str(err))
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
        json_out.write_text(json.dumps([r.to_dict() for r in results], indent=1))


@app.command("run")
def run_cmd(
    out: Path = typer.Option(None, help="output directory (default runs/<timestamp>); an existing one resumes"),
    texts: str = typer.Option("moby-dick,sotu", help="comma-separated bundled texts"),
    tokens: int = typer.Option(1024, help="window length in tokens, BOS included"),
    densities: str = typer.Option("0.5,0.3,0.2,0.1,0.05", help="comma-separated target densities"),
    methods: str = typer.Option("topk,threshold,block_topk", help="comma-separated oracles"),
) -> None:
    """The main job: dense vs the oracles over a sweep of densities; table, results.json and a plot."""
    from pydantic import ValidationError

    from .eval.sweep import SweepConfig, planned, run_sweep, with_relative_increase
    from .models.loader import load_model
    from .report import perplexity_rows_markdown, plot_perplexity_vs_density

    try:
        config = SweepConfig(
            texts=[t.strip() for t in texts.split(",") if t.strip()],
            n_tokens=tokens,
            densities=[float(d) for d in densities.split(",") if d.strip()],
            methods=[m.strip() for m in methods.split(",") if m.strip()],
        )
    except (ValidationError, ValueError) as err:
        _fail(f"invalid sweep configuration: {err}")
        return
    out = out or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    start = time.perf_counter()
    try:
        with console.status(f"loading {config.model} ..."):
            lm = load_model(config.model)
        total = len(planned(config))
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("sweep", total=total)

            def on_row(row: dict[str, Any], done: int, total: int) -> None:
                progress.update(task, completed=done, description=f"{row['text']} {row['method']} ppl {row['ppl']:.2f}")

            rows = run_sweep(config, out, lm, on_row)
            progress.update(task, completed=total)
    except SparseAttnError as err:
        _fail(str(err))
        return
    rows = with_relative_increase(rows)
    table_md = perplexity_rows_markdown(rows)
    (out / "results.md").write_text(table_md + "\n")
    png = plot_perplexity_vs_density(
        rows, out / "perplexity_vs_density.png", f"{config.model}, {config.n_tokens} tokens"
    )
    table = Table(title=f"{config.model}: perplexity vs density, {config.n_tokens} tokens, every layer sparse")
    for col in ("text", "method", "target", "parameters", "perplexity", "vs dense", "density"):
        table.add_column(col)
    for r in rows:
        rel = "-" if r["method"] == "dense" else f"{100 * r['rel_increase']:+.2f}%"
        target = "-" if r["target_density"] is None else f"{r['target_density']:.2f}"
        ps = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
        table.add_row(r["text"], r["method"], target, ps, f"{r['ppl']:.2f}", rel, f"{r['density']:.3f}")
    console.print(table)
    console.print(
        f"wrote {out / 'results.json'}, {out / 'results.md'} and {png} in {time.perf_counter() - start:.0f} s"
    )


@app.command("simulate")
def simulate_cmd(
    arch: str = typer.Option(..., help="architecture name (see sparseattn/hw/configs) or a YAML path"),
    workload: str = typer.Option("llama2-7b", help="model shape name (see sparseattn/hw/workloads) or a YAML path"),
    seq: int = typer.Option(4096, help="sequence length (prefill: queries = keys)"),
    batch: int = typer.Option(1, help="batch size"),
    trace: str = typer.Option(None, help="trace name or JSON path (default: the architecture's own method)"),
    iso_pade: bool = typer.Option(False, "--iso", help="normalise to PADE's Table III setting first"),
    density: float = typer.Option(None, help="rescale the trace's kept-pair work to this density"),
    q_tile: int = typer.Option(None, help="query tile (default: the architecture's)"),
    k_tile: int = typer.Option(None, help="key tile (default: the architecture's)"),
    json_out: Path = typer.Option(None, "--json", help="write the full result as JSON here"),
    csv_out: Path = typer.Option(None, "--csv", help="write the breakdowns as CSV here"),
) -> None:
    """Simulate one architecture on one model's attention: latency, energy, area, DRAM traffic."""
    from .hw import GpuArch, Tiling, load_arch, load_model_shape, load_trace, simulate, with_density
    from .hw.normalise import iso

    try:
        a = load_arch(arch)
        shape = load_model_shape(workload).shape(seq, batch)
        if isinstance(a, GpuArch):
            result = simulate(a, load_trace("dense"), shape)
        else:
            if iso_pade:
                a = iso(a)
            name = trace or (a.method if shape.causal else f"{a.method}-bidir")
            tr = load_trace(name)
            if density is not None:
                tr = with_density(tr, density)
            tiling = None
            if q_tile or k_tile:
                tiling = Tiling(q_tile or a.dataflow.q_tile, k_tile or a.dataflow.k_tile)
            start = time.perf_counter()
            result = simulate(a, tr, shape, tiling)
            result.notes.append(f"simulated in {time.perf_counter() - start:.3f} s")
    except (SparseAttnError, ValueError) as err:
        _fail(str(err))
        return
    _print_sim(result, a)
    if json_out is not None:
        result.save_json(json_out)
    if csv_out is not None:
        csv_out.write_text(result.to_csv())


def _print_sim(result: Any, arch: Any) -> None:
    w = result.workload
    title = (f"{result.arch} ({result.normalised}) running {result.method}: {w['layers']} layers x {w['heads']} heads "
             f"({w['kv_heads']} KV), {w['q_len']} tokens, density {w['density']:.3f}")
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("simulated", justify="right")
    table.add_column("published", justify="right")
    pub = getattr(arch, "published", None)
    s = result.summary()
    rows = [
        ("latency (ms)", f"{s['latency_ms']:.4g}", "-"),
        ("energy (mJ)", f"{s['energy_mj']:.4g}", "-"),
        ("average power (W)", f"{s['power_w']:.3g}", f"{pub.power_mw / 1e3:.3g}" if pub and pub.power_mw else "-"),
        ("area (mm2)", f"{s['area_mm2']:.3g}", f"{pub.area_mm2:.3g}" if pub and pub.area_mm2 else "-"),
        ("effective GOPS (dense-equivalent)", f"{s['effective_gops']:.4g}",
         f"{pub.gops:g}" if pub and pub.gops else "-"),
        ("GOPS/W", f"{s['gops_per_w']:.4g}", f"{pub.gops_per_w:g}" if pub and pub.gops_per_w else "-"),
        ("DRAM (MB)", f"{s['dram_mb']:.4g}", "-"),
    ]
    for r in rows:
        table.add_row(*r)
    console.print(table)
    from rich.columns import Columns

    def small(title: str, items: list[tuple[str, float]], unit: str, scale: float) -> Table:
        t = Table(title=title)
        t.add_column("part")
        t.add_column(unit, justify="right")
        for name, v in sorted(items, key=lambda kv: -kv[1]):
            t.add_row(name, f"{v * scale:.3g}")
        return t

    console.print(Columns([
        small("energy", list(result.energy_by_component().items()), "mJ", 1e-9),
        small("area", list(result.area_mm2.items()), "mm2", 1.0),
        small("DRAM", list(result.dram_bytes.items()), "MB", 1e-6),
        small("utilisation", list(result.utilisation.items()), "busy", 1.0),
    ]))
    for note in result.notes:
        console.print(f"[dim]{note}[/]")


@app.command("reproduce")
def reproduce_cmd(
    paper: str = typer.Option("all", help="sofa, star, pade or all"),
    out: Path = typer.Option(None, help="output directory (default runs/reproduce-<timestamp>)"),
) -> None:
    """Every headline claim of the SOFA, STAR and PADE abstracts: paper vs ours, ratio, assumptions, levers."""
    from .report.reproduce import PAPERS, claims_markdown, reproduce

    papers = list(PAPERS) if paper == "all" else [paper]
    out = out or Path("runs") / datetime.now().strftime("reproduce-%Y%m%d-%H%M%S")
    start = time.perf_counter()
    try:
        with console.status("simulating ...") as status:
            claims = reproduce(papers, out, progress=lambda p: status.update(f"simulating {p.upper()} claims ..."))
    except (SparseAttnError, ValueError) as err:
        _fail(str(err))
        return
    table = Table(title="headline claims: paper vs ours")
    for col in ("paper", "claim", "paper value", "ours", "ours / paper", "within 25%"):
        table.add_column(col)
    for c in claims:
        table.add_row(c.paper.upper(), c.text, f"{c.paper_value:g}x", f"{c.ours:.3g}x", f"{c.ratio:.3g}",
                      "[green]yes[/]" if c.within else "[red]no[/]")
    console.print(table)
    console.print(claims_markdown(claims), markup=False, highlight=False)
    console.print(f"wrote {out}/reproduce.json, reproduce.md, claims.png, energy_breakdown.png "
                  f"in {time.perf_counter() - start:.1f} s")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
