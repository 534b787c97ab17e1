"""BTYD diagnostic figures: what is drawn is the table's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.dates import date2num
from matplotlib.figure import Figure

from ltvcast.evaluation.diagnostics import p_alive_matrix
from ltvcast.models.bgnbd import BetaGeoModel
from ltvcast.report.diagnostics import (
    conditional_expectations_chart,
    conditional_expectations_figure,
    frequency_recency_figure,
    tracking_chart,
    tracking_figure,
)


@pytest.fixture()
def tracking() -> pd.DataFrame:
    """Five periods, the last two held out and the last one three days long."""
    actual = np.array([0.0, 4.0, 6.0, 5.0, 2.0])
    expected = np.array([1.0, 3.5, 5.0, 5.5, 2.5])
    return pd.DataFrame(
        {
            "period_end": pd.to_datetime(
                ["2024-01-07", "2024-01-14", "2024-01-21", "2024-01-28", "2024-01-31"]
            ),
            "days": [7, 7, 7, 7, 3],
            "holdout": [False, False, False, True, True],
            "actual": actual,
            "expected": expected,
            "actual_cumulative": actual.cumsum(),
            "expected_cumulative": expected.cumsum(),
        }
    )


def test_tracking_figure(tracking: pd.DataFrame) -> None:
    fig = tracking_figure(tracking)
    assert isinstance(fig, Figure) and fig.canvas.manager is None
    weekly, cumulative = fig.axes
    per_week = 7.0 / tracking["days"].to_numpy()
    for ax, actual, expected in (
        (weekly, tracking["actual"] * per_week, tracking["expected"] * per_week),
        (cumulative, tracking["actual_cumulative"], tracking["expected_cumulative"]),
    ):
        lines = {line.get_label(): line for line in ax.get_lines()}
        np.testing.assert_allclose(lines["actual"].get_ydata(), actual)
        np.testing.assert_allclose(lines["model"].get_ydata(), expected)
        assert date2num(lines["actual"].get_xdata()[0]) == date2num(pd.Timestamp("2024-01-07"))
        boundary = lines["end of calibration"].get_xdata()[0]
        assert date2num(boundary) == date2num(pd.Timestamp("2024-01-21"))
    svg = tracking_chart(tracking)
    assert svg.startswith("<svg") and 'data-chart="tracking"' in svg


def test_tracking_without_holdout_draws_no_boundary(tracking: pd.DataFrame) -> None:
    fig = tracking_figure(tracking.loc[~tracking["holdout"]])
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["actual", "model"]


def test_conditional_expectations_figure() -> None:
    table = pd.DataFrame(
        {
            "frequency": ["0", "1", "2+"],
            "customers": [1411, 439, 507],
            "actual": [0.24, 0.70, 2.9],
            "expected": [0.23, 0.52, 2.7],
        }
    )
    fig = conditional_expectations_figure(table)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["actual"].get_ydata(), table["actual"])
    np.testing.assert_allclose(lines["model"].get_ydata(), table["expected"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\n1,411", "1\n439", "2+\n507"]
    assert 'data-chart="conditional"' in conditional_expectations_chart(table)


def test_frequency_recency_figure() -> None:
    model = BetaGeoModel().set_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    matrix = p_alive_matrix(model, 20.0, max_frequency=6, recency_step=2.0)
    fig = frequency_recency_figure(matrix)
    heatmap, colour_bar = fig.axes
    mesh = next(c for c in heatmap.collections if isinstance(c, QuadMesh))
    drawn = mesh.get_array()
    assert drawn is not None and drawn.shape == matrix.shape
    np.testing.assert_array_equal(np.ma.getmaskarray(drawn), matrix.isna().to_numpy())
    np.testing.assert_allclose(drawn.compressed(), matrix.stack().dropna().to_numpy())
    assert colour_bar.get_ylabel() == "P(alive)"
    # cells are centred on the grid: recency 0 spans -1..1, frequency 6 spans 5.5..6.5
    assert heatmap.get_xlim() == (-1.0, 21.0) and heatmap.get_ylim() == (-0.5, 6.5)
