"""Small input builders shared by the tests."""

from __future__ import annotations

import torch


def random_qkv(
    b: int = 1,
    h: int = 4,
    hkv: int = 2,
    nq: int = 64,
    nk: int = 64,
    d: int = 32,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    spread: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, nq, d, generator=g) * spread
    k = torch.randn(b, hkv, nk, d, generator=g) * spread
    v = torch.randn(b, hkv, nk, d, generator=g)
    return q.to(dtype), k.to(dtype), v.to(dtype)


def as_format_2(trace_json: dict) -> dict:
    """A format-3 trace's JSON written the way format 2 wrote it: the typed records back in ``meta`` under their
    old keys (SADS's setting as the first layer's scalars, SU-FA's width in ``meta.params.formal_bits``)."""
    import copy

    old = copy.deepcopy(trace_json)
    records, scaled = old.pop("records"), old.pop("scaled_from")
    meta = old["meta"]
    for kind, fields in records.items():
        fields = {k: v for k, v in fields.items() if k != "version"}
        if kind == "bitplane_reads":
            meta["bitplane_reads"] = fields
        elif kind == "sufa_counts":
            meta.setdefault("params", {})["formal_bits"] = fields.pop("bits")
            meta["sufa"] = fields
        elif kind == "rass_loads":
            meta["rass"] = fields
        elif kind == "sads_setting":
            meta.update(k=fields["k"][0], Tc=fields["tc"][0], Bc=fields["bc"][0], r=fields["r"][0])
    if scaled is not None:
        meta["scaled_from"] = scaled
    old["format_version"] = 2
    return old
