"""BTYD model diagnostics as figures: the tracking plot, conditional expectations and the
frequency x recency heatmaps of the tables of :mod:`ltvcast.evaluation.diagnostics`.

``*_figure`` returns a matplotlib ``Figure`` in the report's style (no pyplot state: a
notebook shows it as a cell's value, ``fig.savefig`` writes it), ``draw_*`` draws one panel
onto a given ``Axes``, and ``*_chart`` is the inline SVG of the HTML report.
"""

from __future__ import annotations

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ltvcast.models.bgnbd import FloatArray
from ltvcast.report.figures import _FULL, ACCENT, MUTED, SECOND, _figure, _styled, _svg

#: Size in inches of a frequency x recency heatmap.
_MATRIX = (6.0, 4.6)


def draw_tracking(ax: Axes, table: pd.DataFrame, *, cumulative: bool = False) -> None:
    """Actual and expected repeat purchases per week (or, ``cumulative``, up to each period's
    end) of a :func:`~ltvcast.evaluation.diagnostics.tracking_table`; a dotted line marks
    the end of the calibration."""
    weeks = table["period_end"].to_numpy()
    if cumulative:
        actual, expected = table["actual_cumulative"], table["expected_cumulative"]
    else:  # per 7 days, so that a short first or last period does not dip
        per_week = 7.0 / table["days"]
        actual, expected = table["actual"] * per_week, table["expected"] * per_week
    ax.plot(weeks, actual, color=SECOND, lw=1.8, label="actual")
    ax.plot(weeks, expected, color=ACCENT, lw=1.8, ls="--", label="model")
    calibration = table.loc[~table["holdout"], "period_end"]
    if len(calibration) and table["holdout"].any():
        ax.axvline(calibration.iloc[-1], color=MUTED, lw=1, ls=":", label="end of calibration")
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("repeat purchases " + ("to date" if cumulative else "per week"))
    ax.legend(loc="upper left")


def tracking_figure(table: pd.DataFrame) -> Figure:
    """The tracking plot: weekly (left) and cumulative (right) :func:`draw_tracking`."""
    with _styled("tracking", _FULL) as fig:
        weekly, cumulative = fig.subplots(1, 2)
        draw_tracking(weekly, table)
        draw_tracking(cumulative, table, cumulative=True)
        return fig


def tracking_chart(table: pd.DataFrame) -> str:
    """:func:`tracking_figure` as inline SVG."""
    return _svg(tracking_figure(table), "tracking")


def draw_conditional_expectations(ax: Axes, table: pd.DataFrame) -> None:
    """Mean actual and expected holdout purchases per calibration frequency of a
    :func:`~ltvcast.evaluation.diagnostics.conditional_expectations` table (each group's
    customers under its label)."""
    x = np.arange(len(table))
    ax.plot(x, table["actual"], color=SECOND, lw=1.8, marker="o", label="actual")
    ax.plot(x, table["expected"], color=ACCENT, lw=1.8, ls="--", marker="o", label="model")
    labels = [f"{f}\n{n:,}" for f, n in zip(table["frequency"], table["customers"], strict=True)]
    ax.set_xticks(x, labels)
    ax.set_xlabel("repeat purchases in the calibration (customers below)")
    ax.set_ylabel("mean purchases in the holdout")
    ax.set_ylim(bottom=0)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left")


def conditional_expectations_figure(table: pd.DataFrame) -> Figure:
    """:func:`draw_conditional_expectations` on a figure of its own."""
    with _figure("conditional") as (fig, ax):
        draw_conditional_expectations(ax, table)
        return fig


def conditional_expectations_chart(table: pd.DataFrame) -> str:
    """:func:`conditional_expectations_figure` as inline SVG."""
    return _svg(conditional_expectations_figure(table), "conditional")


def draw_frequency_recency(ax: Axes, matrix: pd.DataFrame, label: str) -> None:
    """A heatmap of a :func:`~ltvcast.evaluation.diagnostics.p_alive_matrix` (or
    ``expected_purchases_matrix``), its colour bar titled ``label``; impossible cells are
    left blank."""
    mesh = ax.pcolormesh(
        _edges(matrix.columns.to_numpy(dtype=np.float64)),
        _edges(matrix.index.to_numpy(dtype=np.float64)),
        np.ma.masked_invalid(matrix.to_numpy(dtype=np.float64)),
        cmap="Blues",
        shading="flat",
    )
    ax.figure.colorbar(mesh, ax=ax, label=label)
    ax.set_xlabel("recency (time of the last repeat purchase)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(False)


def frequency_recency_figure(matrix: pd.DataFrame, label: str = "P(alive)") -> Figure:
    """:func:`draw_frequency_recency` on a figure of its own."""
    with _figure("matrix", _MATRIX) as (fig, ax):
        draw_frequency_recency(ax, matrix, label)
        return fig


def _edges(centres: FloatArray) -> FloatArray:
    """Cell edges around grid ``centres`` (half-way between them; +-0.5 for a single one)."""
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = (centres[1:] + centres[:-1]) / 2
    return np.r_[2 * centres[0] - middle[0], middle, 2 * centres[-1] - middle[-1]]
