"""Regenerate the README's demo figures: the report screenshot and the segment table.

Usage: ``python bench/docs.py [DEMO_DIR]`` after ``ltvcast demo --out DEMO_DIR``
(default ``out/demo``). Needs Chromium for the screenshot (``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ltvcast.strategy.segments import segment_summary

from protocols import REPO, replace_readme_block

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def screenshot(html: Path, png: Path, height: int = 2300) -> None:
    """Render ``html`` in headless Chromium to ``png`` (1280 px wide)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size=1280,{height}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def segment_markdown(segments_csv: Path) -> str:
    """The demo's segment summary as a markdown table."""
    table = pd.read_csv(segments_csv, dtype={"customer_id": str})
    summary = segment_summary(table, table.set_index("customer_id")["segment"])
    lines = [
        "| segment | customers | share | predicted revenue | revenue share | action |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in summary.itertuples():
        lines.append(
            f"| {row.segment} | {row.customers:,} | {row.share:.1%} | "
            f"{row.predicted_revenue:,.0f} | {row.revenue_share:.1%} | {row.action} |"
        )
    return "\n".join(lines)


def main() -> None:
    demo = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "out" / "demo"
    (REPO / "docs").mkdir(exist_ok=True)
    screenshot(demo / "report.html", REPO / "docs" / "report.png")
    replace_readme_block("segments", segment_markdown(demo / "segments.csv"))
    print("wrote docs/report.png and the README's segment table")


if __name__ == "__main__":
    main()
