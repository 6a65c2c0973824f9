"""Regenerate the SmolLM2 traces bundled with the hardware models (``sparseattn/hw/traces/*.json``).

    python scripts/make_traces.py [method ...]

Runs every accelerator's method on six layers of SmolLM2-135M (Moby-Dick, 1024 tokens; see
:mod:`sparseattn.eval.hwtraces`) and writes ``<method>.json`` and ``<method>-bidir.json``. About 3 minutes on 2
cores for all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sparseattn.eval.hwtraces import capture_hw_traces

TRACE_DIR = Path(__file__).resolve().parents[1] / "sparseattn" / "hw" / "traces"

if __name__ == "__main__":
    torch.set_num_threads(2)
    capture_hw_traces(TRACE_DIR, sys.argv[1:] or None)
