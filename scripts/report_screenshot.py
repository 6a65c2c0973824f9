"""Regenerate ``docs/report.png`` (the README's picture of the report) from a current ``report.html``.

    python scripts/report_screenshot.py                      # the latest run under runs/
    python scripts/report_screenshot.py runs/20261205-0900/report.html --out docs/report.png

The report is re-rendered from its ``results.json`` first (so the picture shows what the current code writes, not
what an older version wrote), then photographed by headless Chromium (Debian: ``apt-get install chromium``) at a
1280-pixel-wide window: the first screen and a little more, the part the README shows.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 1800


def browser() -> str:
    """The headless browser's executable, or a one-line reason there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    sys.exit("error: no Chromium found (Debian: apt-get install chromium); docs/report.png is not regenerated")


def latest_report(root: Path) -> Path:
    runs = sorted(p for p in root.glob("*/results.json")) if root.is_dir() else []
    if not runs:
        sys.exit(f"error: no run under {root}/ (run `make run` first, or pass a report.html)")
    return runs[-1].parent / "report.html"


def rerender(report: Path) -> Path:
    """Write the report again from its run's results with the current code; returns its path."""
    sys.path.insert(0, str(ROOT))
    from sparseattn.job.runner import write_report
    from sparseattn.job.store import ResultStore

    return write_report(ResultStore.read(report.parent))


def screenshot(report: Path, png: Path, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Headless Chromium's picture of ``report`` at ``width`` x ``height`` pixels."""
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        cmd = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={width},{height}", f"--screenshot={shot}", report.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if done.returncode != 0 or not shot.is_file():
            sys.exit(f"error: chromium failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        png.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, png)
    return png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", nargs="?", type=Path, help="report.html (default: the latest run under runs/)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    ap.add_argument("--no-rerender", action="store_true", help="photograph the report as it is")
    args = ap.parse_args()
    report = args.report or latest_report(ROOT / "runs")
    if not report.is_file():
        sys.exit(f"error: {report} does not exist")
    if not args.no_rerender:
        report = rerender(report)
    print(screenshot(report, args.out))


if __name__ == "__main__":
    main()
