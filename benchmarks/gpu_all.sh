#!/usr/bin/env bash
# `make gpu`: every GPU measurement, on a bare GPU machine with this repository copied (benchmarks/gpu_all.py says
# what runs and how the results come back). Uses the machine's own Python and CUDA build of torch (no download);
# the few wheels its image lacks travel under .gpu/ (`make gpu-prep` here first). Pass --dry-run to run the same
# pipeline on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${GPU_PYTHON:-python3}
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "gpu_all.sh: $PY has no torch; set GPU_PYTHON to the Python that holds the machine's CUDA build" >&2
  exit 2
fi
exec "$PY" benchmarks/gpu_all.py run "$@"
