"""The hardware step: each method's captured traces simulated on its own accelerator and, for reference, dense
attention on the GPU models, at the papers' workload shapes (decoder traces on Llama2-7B, encoder traces on
BERT-Large; the shape each trace was captured at is kept). Units: ``<design>@<workload>``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...core.workload import Workload
from ...report.render import hardware_section
from ...report.rows import HardwareRow, RunView
from .. import progress
from ..config import RunConfig
from ..step import Context, Done, Step


def accelerators_of(method: str) -> list[str]:
    """Bundled accelerators that run ``method``'s trace."""
    from ...hw import load_arch
    from ...hw.schema import arch_names

    return [n for n in arch_names() if getattr(load_arch(n), "kind", "") == "accelerator"
            and load_arch(n).method == method]


def sim_fields(arch: str, trace: Workload, shape_name: str, seq: int, workload: str) -> dict[str, Any]:
    """``arch`` simulated on ``trace`` carried to ``shape_name`` at ``seq`` tokens: the fields of a
    :class:`~sparseattn.report.rows.HardwareRow`."""
    from ...hw import load_arch, load_model_shape, simulate
    from ...report.reproduce import energy_categories

    shape = load_model_shape(shape_name).shape(seq)
    r = simulate(load_arch(arch), trace, shape)
    return {"arch": arch, "method": r.method, "workload": workload, "shape": shape_name, "seq": seq,
            **r.summary(), "density": r.density, "energy_parts_mj": energy_categories(r),
            "scaled_from": trace.shape.to_dict(), "notes": r.notes}


def workloads(cfg: RunConfig) -> list[tuple[str, str, str, int]]:
    """(workload, the step whose traces it reads, model shape, sequence length) of every workload simulated."""
    out = [("decoder", "accuracy", cfg.decoder_shape, cfg.decoder_seq)]
    if cfg.encoder:
        out.append(("encoder", "encoder", cfg.encoder_shape, cfg.encoder_seq))
    return out


class Hardware(Step):
    """Every method with an accelerator on it, and dense attention on each GPU, at the papers' shapes."""

    name: ClassVar[str] = "hardware"
    title: ClassVar[str] = "Accelerators vs GPUs"
    unit_name: ClassVar[str] = "simulation"
    tables: ClassVar[dict[str, Any]] = {"hardware": HardwareRow}

    def enabled(self, cfg: RunConfig) -> bool:
        return True

    def units(self, cfg: RunConfig) -> list[str]:
        designs = [*cfg.gpus, *(a for m in cfg.methods for a in accelerators_of(m))]
        return [f"{a}@{kind}" for kind, *_ in workloads(cfg) for a in designs]

    def unit_s(self, cfg: RunConfig) -> float:
        return progress.HARDWARE_UNIT_S

    def run(self, ctx: Context) -> Iterator[Done]:
        for kind, step, shape, seq in workloads(ctx.cfg):
            dense = Workload.load(ctx.out / ctx.store.get(step, "dense").trace)
            for gpu in ctx.cfg.gpus:
                if not ctx.done("hardware", f"{gpu}@{kind}"):
                    ctx.tick(f"simulate dense attention on {gpu}, {shape} at {seq}")
                    yield Done(f"{gpu}@{kind}", HardwareRow.model_validate(sim_fields(gpu, dense, shape, seq, kind)))
            for method in ctx.cfg.methods:
                row = ctx.store.get(step, method)
                for arch in accelerators_of(method):
                    if row is None or ctx.done("hardware", f"{arch}@{kind}"):
                        continue
                    ctx.tick(f"simulate {arch} on {method}'s {kind} trace, {shape} at {seq}")
                    trace = Workload.load(ctx.out / row.trace)
                    yield Done(f"{arch}@{kind}", HardwareRow.model_validate(sim_fields(arch, trace, shape, seq, kind)))

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        return hardware_section(view, figs)
