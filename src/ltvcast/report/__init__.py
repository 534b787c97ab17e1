"""L5 edge: the self-contained HTML report (inline SVG charts, no network)."""

from __future__ import annotations

from ltvcast.report.render import DataSummary, build_report, render_report, write_report

__all__ = ["DataSummary", "build_report", "render_report", "write_report"]
