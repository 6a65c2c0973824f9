"""``sparseattn simulate``: one architecture on one model's attention."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ._app import app, console, fail


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
    from ..hw import GpuArch, Tiling, load_arch, load_model_shape, load_trace, simulate, with_density
    from ..hw.normalise import iso

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
        fail(str(err))
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
