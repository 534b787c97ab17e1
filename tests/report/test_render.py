"""The HTML report: self-contained, every chart drawn, numbers that match their sources, and a
real render in headless Chromium (screenshot + per-chart bounding boxes)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltvcast.evaluation.diagnostics import conditional_expectations
from ltvcast.features.rfm import rfm_summary
from ltvcast.pipeline import train_model
from ltvcast.pipeline.recommend import most_recommended, recommend
from ltvcast.report import build_report, render_report, write_report
from ltvcast.report.recommendations import HIGH_VALUE_SEGMENTS
from ltvcast.strategy.actions import action_mix
from ltvcast.timeframe import Horizon

#: Every chart of a full report of a BTYD model, by its data-chart name.
CHARTS = {
    "gain",
    "deciles",
    "scatter",
    "tracking",
    "conditional",
    "distribution",
    "segments",
    "importance",
}
DIAGNOSTICS = {"tracking", "conditional"}
_SVG = re.compile(r"<svg\b[^>]*data-chart=\"(\w+)\"[^>]*>(.*?)</svg>", re.DOTALL)
_CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def _charts(html: str) -> dict[str, str]:
    return {name: body for name, body in _SVG.findall(html)}


@pytest.fixture(scope="module")
def html(pipeline: Any) -> str:
    p = pipeline
    return build_report(p.scoring, p.data, p.cleaning, p.result, p.as_of)


def test_report_is_self_contained(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    lowered = html.lower()
    for forbidden in ("<script", "<link", "<img", "<iframe", "@import", " src="):
        assert forbidden not in lowered, forbidden
    assert set(re.findall(r"url\((.)", html)) == {"#"}  # only in-page references
    # the only URLs are XML namespaces inside the inline SVGs
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


def test_every_chart_is_present_and_drawn(html: str) -> None:
    charts = _charts(html)
    assert set(charts) == CHARTS
    for name, body in charts.items():
        marks = len(re.findall(r"<(path|use|rect)\b", body))
        assert marks >= 10, f"chart {name!r} has only {marks} drawn marks"
        assert "<text" in body, f"chart {name!r} has no text (axes, labels)"
    # ids are unique across charts (they share one page)
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', html):
        assert ref in ids, f"dangling reference #{ref}"


def test_numbers_match_their_sources(html: str, pipeline: Any) -> None:
    p = pipeline
    assert f"{len(p.predictions):,}</div>" in html  # customers scored
    total = p.predictions["predicted_value"].sum()
    assert f"{total:,.0f}</div>" in html  # predicted revenue KPI
    for model in ("baseline", "btyd"):
        assert f"<th>{model}" in html
    gini = p.result.table().loc["btyd", "normalized_gini"]
    assert f"{gini:.3f}" in html and f"btyd (Gini {gini:.2f})" in html
    assert f"{p.cleaning.count('transactions', 'duplicates'):,}" in html
    assert "high value at risk" in html and "Rescue now" in html
    # BTYD drivers appear in the importance chart
    assert re.search(r"recency|frequency", _charts(html)["importance"])


def test_model_diagnostics_follow_the_backtest_refit(html: str, pipeline: Any) -> None:
    p = pipeline
    cutoff, horizon = p.result.cutoff, p.result.horizon
    section = html[html.index('id="diagnostics"') : html.index('id="forecast"')]
    assert "Model diagnostics" in section and f"<b>{cutoff:%Y-%m-%d}</b>" in section
    assert set(_charts(section)) == DIAGNOSTICS
    refit = p.forecaster.clone().fit(p.data, cutoff, horizon)
    table = conditional_expectations(refit, p.data, cutoff, horizon.end(cutoff))
    assert table["customers"].sum() == len(rfm_summary(p.data.transactions, cutoff))
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", _charts(html)["conditional"])
    for group, customers in zip(table["frequency"], table["customers"], strict=True):
        assert group in labels and f"{customers:,}" in labels, (group, customers)


def test_recommendations_match_their_sources(html: str, pipeline: Any) -> None:
    p = pipeline
    section = html[html.index('id="recommendations"') : html.index('id="drivers"')]
    table = recommend(p.scoring, p.data, p.as_of)
    scored = p.scoring.score(p.data, p.as_of)
    mix = action_mix(table, scored.set_index("customer_id")["segment"])
    assert f"{mix['expected_value'].sum():,.0f} in all" in section
    for row in mix.itertuples():
        assert (
            f'<td class="text">{str(row.action).replace("_", " ")}</td><td>{row.customers:,}</td>'
            in section
        )
    high = scored.loc[scored["segment"].isin(HIGH_VALUE_SEGMENTS), "customer_id"]
    first = most_recommended(table, pd.Index(high), top=1)["item_id"].iloc[0]
    assert "Items most recommended to high-value customers" in section
    assert f'<td class="text">{first}</td>' in section


@pytest.mark.parametrize("name", ["baseline", "gbdt"])
def test_no_model_diagnostics_without_a_btyd_model(pipeline: Any, name: str) -> None:
    p = pipeline
    scoring = train_model(p.data, model=name, horizon=Horizon(60, "d"), as_of=p.as_of)
    assert scoring.chosen_name == name
    html = build_report(scoring, p.data, p.cleaning, p.result, p.as_of)
    assert "Model diagnostics" not in html and 'id="diagnostics"' not in html
    assert not DIAGNOSTICS & set(_charts(html))
    assert {"gain", "distribution"} <= set(_charts(html))


def test_minimal_report_without_backtest_or_drivers(pipeline: Any, tmp_path: Path) -> None:
    p = pipeline
    html = render_report(
        predictions=p.predictions, as_of=p.as_of, horizon=Horizon(60, "d"), model_name="btyd"
    )
    assert set(_charts(html)) == {"distribution"}
    assert "The data" not in html and "backtest" not in html.lower()
    path = write_report(tmp_path / "sub" / "r.html", p.scoring, p.data, None, None, p.as_of)
    assert set(_charts(path.read_text(encoding="utf-8"))) == {
        "distribution",
        "segments",
        "importance",
    }


def _run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    assert _CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [_CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(_CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_renders_in_headless_chromium(html: str, tmp_path: Path) -> None:
    from matplotlib.image import imread

    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "report.png"
    run = _run_chromium(
        [f"--screenshot={shot}", "--window-size=1280,6000", page.as_uri()], tmp_path / "p1"
    )
    assert shot.is_file(), run.stderr[-2000:]
    pixels = imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (6000, 1280)
    background = np.median(pixels.reshape(-1, 3), axis=0)
    ink = np.abs(pixels - background).sum(axis=2) > 0.1
    assert ink.mean() > 0.15, f"page looks blank: {ink.mean():.1%} non-background pixels"
    accent = (pixels[..., 2] > 0.8) & (pixels[..., 0] < 0.3)  # the charts' blue
    assert accent.mean() > 0.005, "no chart colour on the page"
    # the browser laid out every chart with a real size: measure each <svg> in the live DOM
    probe = page.with_name("probe.html")
    script = (
        "<script>document.body.setAttribute('data-boxes', Array.from("
        "document.querySelectorAll('svg.chart')).map(s => { const b = s.getBoundingClientRect();"
        " return s.dataset.chart + ':' + Math.round(b.width) + 'x' + Math.round(b.height) +"
        " ':' + s.querySelectorAll('path,use,rect').length; }).join(' '));</script>"
    )
    probe.write_text(html.replace("</body>", script + "</body>"), encoding="utf-8")
    run = _run_chromium(["--dump-dom", probe.as_uri()], tmp_path / "p2")
    match = re.search(r'data-boxes="([^"]*)"', run.stdout)
    assert match, run.stderr[-2000:]
    boxes = {
        name: (int(w), int(h), int(n))
        for name, w, h, n in re.findall(r"(\w+):(\d+)x(\d+):(\d+)", match.group(1))
    }
    assert set(boxes) == CHARTS
    for name, (width, height, marks) in boxes.items():
        assert width >= 400 and height >= 140 and marks >= 10, (name, boxes[name])
