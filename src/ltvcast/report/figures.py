"""The report's charts: inline SVG strings, and figures for a notebook (matplotlib, no pyplot
state, no display).

Each ``*_chart`` function takes plain tables or arrays and returns one ``<svg>`` element that
scales to its container (fixed width and height are replaced by a ``viewBox``). Text stays
text (system fonts of the page), and element ids are salted per chart so several charts share
one page. The charts a notebook wants too draw onto a given ``Axes`` (``draw_*``) and come as
a ``Figure`` in the report's style (``*_figure``), from which their SVG is made.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter
from numpy.typing import ArrayLike

from ltvcast.evaluation.metrics import decile_table, gain_curve, normalized_gini

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
SECOND = "#f59e0b"
POSITIVE = "#059669"
NEGATIVE = "#dc2626"
#: Line colours of compared models (the chosen one is drawn in ACCENT).
MODEL_COLOURS = ("#f59e0b", "#10b981", "#8b5cf6", "#ec4899", "#14b8a6", "#64748b", "#a16207")

_STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 10,
    "axes.edgecolor": GRID,
    "axes.labelcolor": INK,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 9,
}
#: Figure sizes in inches for a full-width (~940 px) and a half-width (~455 px) chart, so text
#: shows at about the same size (~14 px) in both.
_FULL = (9.4, 3.7)
_HALF = (4.6, 3.6)


def _rc(name: str) -> Any:
    """The chart style, with ids salted by the chart's name (typed loosely for rc_context)."""
    return {**_STYLE, "svg.hashsalt": name}


@contextmanager
def _styled(name: str, size: tuple[float, float] = _FULL) -> Iterator[Figure]:
    """An empty figure; what is drawn on it within the block takes the chart style."""
    with mpl.rc_context(_rc(name)):
        yield Figure(figsize=size, layout="constrained")


@contextmanager
def _figure(name: str, size: tuple[float, float] = _FULL) -> Iterator[tuple[Figure, Axes]]:
    with _styled(name, size) as fig:
        yield fig, fig.add_subplot()


def _svg(fig: Figure, name: str) -> str:
    with mpl.rc_context(_rc(name)):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    # ids must be unique on the page: prefix every id and every reference to one
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r'(href="#|url\(#)([^")]+)', rf"\g<1>{name}-\2", text)
    head_end = text.index(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    return f'{head} class="chart" data-chart="{name}" role="img"{text[head_end:]}'


def _money(value: float, _pos: object = None) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.0f}k" if abs(value) >= 1e4 else f"{value / 1e3:.1f}k"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def draw_gain(
    ax: Axes,
    actual: ArrayLike,
    predicted: Mapping[str, ArrayLike],
    chosen: str | None = None,
) -> None:
    """Cumulative share of actual revenue held by the top customers ranked by each model.

    ``predicted`` maps a model name to its forecasts (aligned with ``actual``); each curve is
    labelled with its normalized Gini, ``chosen``'s is drawn in the accent colour, and the
    dashed curve ranks customers by ``actual`` itself.
    """
    ax.plot([0, 1], [0, 1], color=MUTED, lw=1, ls=":", label="random order")
    ax.plot(
        *gain_curve(actual, actual), color=INK, lw=1.2, ls="--", label="perfect (ranked by actual)"
    )
    colours = iter(MODEL_COLOURS)
    for name, values in predicted.items():
        is_chosen = name == chosen
        ax.plot(
            *gain_curve(actual, values),
            color=ACCENT if is_chosen else next(colours, MUTED),
            lw=2.6 if is_chosen else 1.4,
            label=f"{name} (Gini {normalized_gini(actual, values):.2f})",
            zorder=3,
        )
    ax.axvline(0.2, color=GRID, lw=1, zorder=0)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.set_xlabel("customers, ranked by forecast (highest first)")
    ax.set_ylabel("share of actual revenue")
    ax.legend(loc="lower right")


def gain_figure(
    actual: ArrayLike, predicted: Mapping[str, ArrayLike], chosen: str | None = None
) -> Figure:
    """:func:`draw_gain` on a figure of its own (the gains, or Lorenz, curve)."""
    with _figure("gain") as (fig, ax):
        draw_gain(ax, actual, predicted, chosen)
        return fig


def gain_chart(
    actual: ArrayLike, predicted: Mapping[str, ArrayLike], chosen: str | None = None
) -> str:
    """:func:`gain_figure` as inline SVG."""
    return _svg(gain_figure(actual, predicted, chosen), "gain")


def draw_deciles(ax: Axes, table: pd.DataFrame) -> None:
    """Mean predicted and mean actual value per prediction decile (``decile_table``)."""
    x = table["decile"].to_numpy()
    ax.bar(x - 0.2, table["mean_predicted"], 0.4, color=ACCENT, label="mean predicted")
    ax.bar(x + 0.2, table["mean_actual"], 0.4, color=SECOND, label="mean actual")
    ax.set_xticks(range(1, 11))
    ax.set_xlabel("decile of forecast (1 = lowest, 10 = highest)")
    ax.set_ylabel("value per customer")
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left")


def decile_figure(actual: ArrayLike, predicted: ArrayLike) -> Figure:
    """Decile calibration of ``predicted`` against ``actual``: :func:`draw_deciles` of their
    :func:`~ltvcast.evaluation.metrics.decile_table` on a figure of its own."""
    with _figure("deciles", _HALF) as (fig, ax):
        draw_deciles(ax, decile_table(actual, predicted))
        return fig


def decile_chart(actual: ArrayLike, predicted: ArrayLike) -> str:
    """:func:`decile_figure` as inline SVG."""
    return _svg(decile_figure(actual, predicted), "deciles")


def scatter_chart(actual: np.ndarray, predicted: np.ndarray, max_points: int = 4000) -> str:
    """Predicted vs actual value per customer on symmetric-log axes, with the diagonal.

    At most ``max_points`` customers are drawn (an evenly spaced, deterministic subset).
    """
    n = len(actual)
    keep = np.linspace(0, n - 1, min(n, max_points)).astype(np.int64) if n else np.arange(0)
    a, p = np.asarray(actual)[keep], np.asarray(predicted)[keep]
    with _figure("scatter", _HALF) as (fig, ax):
        top = float(max(np.max(a, initial=1.0), np.max(p, initial=1.0))) * 1.3
        ax.plot([0, top], [0, top], color=INK, lw=1, ls="--", label="perfect forecast", zorder=2)
        ax.scatter(p, a, s=7, color=ACCENT, alpha=0.28, lw=0, label="customer", zorder=3)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_yscale("symlog", linthresh=1.0)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(_money))
        ax.set(xlim=(-0.15, top), ylim=(-0.15, top))  # room for the dots at zero
        ax.set_xlabel("predicted value")
        ax.set_ylabel("actual value in the horizon")
        ax.legend(loc="upper left")
        return _svg(fig, "scatter")


def distribution_chart(predicted: np.ndarray) -> str:
    """Histogram of forecast values on log-spaced bins, with median and mean marked."""
    values = np.asarray(predicted, dtype=np.float64)
    positive = values[values > 0.01]
    with _figure("distribution") as (fig, ax):
        if positive.size:
            low, high = float(positive.min()), float(positive.max())
            bins = np.geomspace(low, high * 1.0001 if high > low else low * 2, 40)
            ax.hist(
                positive, bins=bins.tolist(), color=ACCENT, alpha=0.85, edgecolor="white", lw=0.4
            )
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(_money))
            for stat, label, style in (
                (float(np.median(values)), "median", "--"),
                (float(values.mean()), "mean", "-"),
            ):
                if stat > 0.01:
                    ax.axvline(stat, color=SECOND, lw=1.4, ls=style, label=f"{label} {stat:,.2f}")
            ax.legend(loc="upper right")
        ax.set_xlabel("predicted value in the horizon (log scale)")
        ax.set_ylabel("customers")
        zero = values.size - positive.size
        if zero:
            ax.set_title(
                f"{zero:,} customers ({zero / values.size:.0%}) forecast below 0.01 are not shown",
                loc="left",
                color=MUTED,
            )
        return _svg(fig, "distribution")


def segment_chart(summary: pd.DataFrame) -> str:
    """Share of customers vs share of predicted revenue per segment (``segment_summary``)."""
    rows = summary.iloc[::-1]
    y = np.arange(len(rows))
    with _figure("segments", (9.4, 3.2)) as (fig, ax):
        ax.barh(y + 0.2, rows["share"], 0.4, color="#cbd5e1", label="share of customers")
        ax.barh(y - 0.2, rows["revenue_share"], 0.4, color=ACCENT, label="share of revenue")
        for yy, share in zip(y - 0.2, rows["revenue_share"], strict=True):
            ax.text(share + 0.01, yy, f"{share:.0%}", va="center", fontsize=8.5, color=INK)
        ax.set_yticks(y, [str(s).replace("_", " ") for s in rows["segment"]])
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        top = float(max(rows["share"].max(), rows["revenue_share"].max(), 0.1))
        ax.set_xlim(0, min(1.0, top * 1.18 + 0.02))
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right")
        return _svg(fig, "segments")


def importance_chart(importance: pd.DataFrame, top: int = 12) -> str:
    """Mean absolute contribution of the ``top`` drivers; colour shows the average sign."""
    rows = importance.head(top).iloc[::-1]
    y = np.arange(len(rows))
    colours = np.where(rows["mean"].to_numpy() >= 0, POSITIVE, NEGATIVE)
    with _figure("importance", (9.4, max(2.6, 0.3 * len(rows) + 0.9))) as (fig, ax):
        ax.barh(y, rows["mean_abs"], 0.65, color=colours)
        ax.set_yticks(y, rows["feature"].astype(str).tolist())
        ax.tick_params(axis="y", labelsize=8.5, labelcolor=INK)
        ax.xaxis.set_major_formatter(FuncFormatter(_money))
        ax.set_xlabel("mean |contribution| to predicted value")
        ax.grid(axis="y", visible=False)
        for label, colour in (("raises forecasts on average", POSITIVE), ("lowers", NEGATIVE)):
            ax.barh([np.nan], [np.nan], color=colour, label=label)
        ax.legend(loc="lower right")
        return _svg(fig, "importance")
