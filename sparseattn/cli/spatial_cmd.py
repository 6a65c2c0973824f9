"""``sparseattn spatial``: Spatial-STAR and its baselines on mesh architectures, swept over sequence lengths and
model shapes (with strong and weak scaling), written as JSON + CSV + figures into an output directory."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from ..core.errors import SparseAttnError
from ..core.files import check_out_dir, write_atomic
from ..core.invariants import check_size
from ._app import app, console, fail
from .options import flag

DEFAULT_MESHES = ["spatial-star-4x4", "spatial-star-8x8"]
DEFAULT_SHAPES = ["llama2-7b", "llama3-8b"]


@app.command("spatial")
def spatial_cmd(
    arch: list[str] = typer.Option(DEFAULT_MESHES, help="mesh config name or YAML path (repeat for several)"),
    shape: list[str] = typer.Option(DEFAULT_SHAPES, help="model shape (repeat for several)"),
    seq: list[int] = typer.Option(None, help="sequence lengths (default 32k .. 1M, repeat for several)"),
    design: list[str] = typer.Option(None, help="spatial-star, dense-flash, stage-isolated (default all)"),
    decode: bool = flag(False, "decode", help="one token against a seq-token KV cache, not a prefill"),
    scaling: bool = flag(True, "scaling", help="also strong / weak scaling over the 2x2, 4x4, 8x8 meshes"),
    out: Path = typer.Option(None, help="output directory (default runs/spatial-<timestamp>)"),
) -> None:
    """Sweep Spatial-STAR and its baselines: throughput, latency, utilisation, NoC, energy, area."""
    from ..hw.spatial import sweep
    from ..report import spatial_figures as figures

    designs = design or list(sweep.DESIGNS)
    seqs = seq or list(sweep.SEQS)
    out = out or Path("runs") / datetime.now().strftime("spatial-%Y%m%d-%H%M%S")
    phase = "decode" if decode else "prefill"
    try:
        bad = sorted(set(designs) - set(sweep.DESIGNS))
        if bad:
            raise SparseAttnError(f"--design {', '.join(bad)}: unknown; choose from {', '.join(sweep.DESIGNS)}")
        if any(n < 16 for n in seqs):
            raise SparseAttnError(f"--seq must be at least 16 tokens (one base tile), got {min(seqs)}")
        for n in seqs:
            check_size(n)
        check_out_dir(out)
        points = sweep.sweep_points(arch, shape, seqs, designs, phase)
        if scaling:
            points += sweep.scaling_points(shape[0], max(seqs), [d for d in designs if d != "dense-flash"])
        start = time.perf_counter()
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("simulating", total=len(points))

            def step(p: sweep.Point) -> None:
                bar.update(task, advance=1, description=f"{p.arch} {p.shape} {p.seq} {p.design} ({p.study})")

            rows, results = sweep.run(points, step)
        out.mkdir(parents=True, exist_ok=True)
    except (SparseAttnError, ValueError, OSError) as err:
        fail(str(err))
        return
    ratios = sweep.ratios(rows)
    _write(out, rows, ratios)
    written = _figures(out, rows, results, figures)
    _print(rows, ratios)
    for warning in dict.fromkeys(f"{r['arch']} {r['shape']} {r['seq']}: {r['warnings']}" for r in rows
                                 if r.get("warnings")):
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"wrote {out}/spatial.json, spatial.csv, {', '.join(p.name for p in written)} "
                  f"({len(points)} simulations in {time.perf_counter() - start:.1f} s)")


def _write(out: Path, rows: list[dict], ratios: list[dict]) -> None:
    write_atomic(out / "spatial.json", json.dumps({"rows": rows, "ratios": ratios}, indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=sorted({k for r in rows for k in r}))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out / "spatial.csv", buf.getvalue())


def _figures(out: Path, rows: list[dict], results: dict, figures) -> list[Path]:
    written = [figures.throughput(rows, out / "spatial_throughput.png")]
    sweep_points = [p for p in results if p.study == "sweep"]
    if sweep_points:
        biggest = max(sweep_points, key=lambda p: (results[p].mesh["cores"], p.seq))
        ours = {p.design: results[p] for p in sweep_points
                if (p.arch, p.shape, p.seq) == (biggest.arch, biggest.shape, biggest.seq)}
        if "spatial-star" in ours:
            written.append(figures.utilisation(ours["spatial-star"], out / "spatial_utilisation.png"))
        written.append(figures.energy(ours, out / "spatial_energy.png"))
    if any(r["study"] != "sweep" for r in rows):
        written.append(figures.scaling(rows, out / "spatial_scaling.png"))
    return written


def _print(rows: list[dict], ratios: list[dict]) -> None:
    table = Table(title="Spatial-STAR throughput over the baselines (paper: 20.1x over 'the baseline design')")
    for col in ("arch", "shape", "seq", "phase", "baseline", "ours / baseline"):
        table.add_column(col)
    for r in ratios:
        if r["study"] == "sweep":
            table.add_row(r["arch"], r["shape"], str(r["seq"]), r["phase"], r["baseline"], f"{r['ratio']:.2f}x")
    console.print(table)
