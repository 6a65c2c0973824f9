"""Upgrade trace files to the current format in place (format 2 -> 3: ``meta``'s method records become typed records).

    python scripts/upgrade_traces.py FILE... [--check]

Each file is read with the explicit upgrade (:func:`~sparseattn.core.trace_file.upgrade_v2`; the module docstring of
:mod:`sparseattn.core.trace_file` says what is carried over) and written back atomically; counts, profile, extra
reads and samples are unchanged, and the script verifies that before writing. Files already at the current format
are left alone. ``--check`` writes nothing and exits 1 when a file needs the upgrade. Bad input: one line, exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sparseattn.core.errors import SparseAttnError
from sparseattn.core.trace_file import FORMAT_VERSION
from sparseattn.core.workload import Workload

UNCHANGED = ("shape", "ops", "profile", "extra_reads", "read_basis", "samples")


def upgrade(path: Path, check: bool) -> bool:
    """Upgrade one file; ``True`` when it needed it."""
    data = json.loads(path.read_text())
    if data.get("format_version") == FORMAT_VERSION:
        return False
    if check:
        return True
    new = Workload.from_json(data, str(path), upgrade=True).to_json()
    changed = [k for k in UNCHANGED
               if json.dumps(new.get(k), sort_keys=True) != json.dumps(data.get(k), sort_keys=True)]
    if changed:
        raise SparseAttnError(f"{path}: the upgrade would change {', '.join(changed)}; not written")
    Workload.from_json(new, str(path)).save(path)
    print(f"{path}: {new['meta']['upgraded']}")
    return True


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"]
    if not paths:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        needed = [upgrade(p, check) for p in paths]
    except (SparseAttnError, OSError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if check and any(needed) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
