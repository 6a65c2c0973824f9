"""``sparseattn simulate``: one architecture on one model's attention, under its default mapping or another."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ..core.files import check_writable, write_atomic
from ..core.invariants import check_size
from ._app import app, console, fail
from .options import flag

MIN_SEQ = 16  # the traces' base tile


@app.command("simulate")
def simulate_cmd(
    arch: str = typer.Option(..., help="architecture name (see sparseattn/hw/configs) or a YAML path"),
    shape: str = typer.Option("llama2-7b", help="model shape name (see sparseattn/hw/shapes) or a YAML path"),
    seq: int = typer.Option(4096, help="sequence length (prefill: queries = keys)"),
    batch: int = typer.Option(1, help="batch size"),
    trace: str = typer.Option(None, help="trace name or JSON path (default: the architecture's own method)"),
    iso_pade: bool = flag(False, "iso", help="normalise to PADE's Table III setting first"),
    density: float = typer.Option(None, help="rescale the trace's kept-pair work to this density"),
    mapping: Path = typer.Option(None, help="mapping YAML (default: the architecture's own mapping block)"),
    q_tile: int = typer.Option(None, help="formal query tile (overrides the mapping's formal.q)"),
    k_tile: int = typer.Option(None, help="formal key tile (overrides the mapping's formal.k)"),
    technology: Path = typer.Option(None, help="technology YAML (default: the bundled configs/technology.yaml)"),
    json_out: Path = typer.Option(None, "--json", help="write the full result as JSON here"),
    csv_out: Path = typer.Option(None, "--csv", help="write the breakdowns as CSV here"),
) -> None:
    """Simulate one architecture on one model's attention: latency, energy, area, DRAM traffic."""
    from ..hw import (
        load_arch,
        load_mapping,
        load_model_shape,
        load_technology,
        load_trace,
        simulate,
        trace_for,
        with_density,
    )
    from ..hw.normalise import iso
    from ..hw.registry import capabilities

    try:
        check_writable(json_out, "--json")
        check_writable(csv_out, "--csv")
        if seq < MIN_SEQ:
            raise SparseAttnError(f"--seq {seq}: simulate a prefill of at least {MIN_SEQ} tokens (one base tile); "
                                  "below that the fixed DRAM latency is the whole run and power means nothing")
        check_size(seq, batch, "--seq")
        if batch < 1:
            raise SparseAttnError(f"--batch {batch}: need at least 1 sequence")
        a = load_arch(arch)
        given = {"--iso": iso_pade, "--density": density is not None, "--trace": trace is not None,
                 "--mapping": mapping is not None, "--q-tile": q_tile is not None, "--k-tile": k_tile is not None,
                 "--technology": technology is not None}
        _check_options(a, [k for k, v in given.items() if v])
        tech = load_technology(technology) if technology is not None else None
        if iso_pade:
            a = iso(a)
        target = load_model_shape(shape).shape(seq, batch)
        tr = load_trace(trace) if trace else trace_for(a, target.causal)
        if density is not None:
            tr = with_density(tr, density)
        m = load_mapping(mapping) if mapping is not None else None
        if q_tile is not None or k_tile is not None:
            m = (m or capabilities(a).mapping(a)).with_formal(q_tile, k_tile)
        start = time.perf_counter()
        result = simulate(a, tr, target, m, tech)
        result.notes.append(f"simulated in {time.perf_counter() - start:.3f} s")
    except (SparseAttnError, ValueError) as err:
        fail(str(err))
        return
    _print_sim(result, a)
    if json_out is not None:
        write_atomic(json_out, json.dumps(result.to_json(), indent=2))
    if csv_out is not None:
        write_atomic(csv_out, result.to_csv())


# what each option needs of the architecture's kind (sparseattn.hw.registry.Capabilities), and why it lacks it
NEEDS = {"--iso": ("normalisable", "it cannot be normalised to another node, clock or SRAM"),
         "--density": ("runs_trace", "it runs dense attention of the shape, whatever the trace"),
         "--trace": ("runs_trace", "it runs dense attention of the shape, whatever the trace"),
         "--mapping": ("mapping", "it takes no mapping (no tiles)"),
         "--q-tile": ("mapping", "it takes no mapping (no tiles)"),
         "--k-tile": ("mapping", "it takes no mapping (no tiles)"),
         "--technology": ("uses_technology", "its energy is its board power and its area its die, not a technology "
                          "table's")}


def _check_options(arch: Any, given: list[str]) -> None:
    """Refuse options the architecture's kind has no use for (a GPU's roofline has no trace, tiles or iso
    setting), naming each and why."""
    from ..hw.registry import arch_kind, capabilities

    caps = capabilities(arch)
    lacking = [o for o in given if getattr(caps, NEEDS[o][0]) in (None, False)]
    if lacking:
        why = "; ".join(dict.fromkeys(NEEDS[o][1] for o in lacking))
        raise SparseAttnError(f"{', '.join(lacking)} do not apply to {arch_kind(arch).describe(arch)}: {why}")


def _print_sim(result: Any, arch: Any) -> None:
    w = result.shape
    title = (f"{result.arch} ({result.normalised}) running {result.method}: {w['layers']} layers x {w['heads']} heads "
             f"({w['kv_heads']} KV), {w['q_len']} tokens, density {result.density:.3f}")
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
        small("energy by component", list(result.energy_by("component").items()), "mJ", 1e-9),
        small("energy by kind", list(result.energy_by("kind").items()), "mJ", 1e-9),
        small("area", list(result.area_by("component").items()), "mm2", 1.0),
        small("DRAM", list(result.dram_bytes.items()), "MB", 1e-6),
        small("utilisation", list(result.utilisation.items()), "busy", 1.0),
    ]))
    for note in result.notes:
        console.print(f"[dim]{note}[/]")
