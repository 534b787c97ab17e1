"""Gain and decile charts: one drawing on an Axes behind both the Figure and the SVG."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from ltvcast.evaluation.metrics import decile_table, gain_curve, normalized_gini
from ltvcast.report.figures import (
    ACCENT,
    decile_chart,
    decile_figure,
    draw_gain,
    gain_chart,
    gain_figure,
)


@pytest.fixture(scope="module")
def values() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    actual = rng.gamma(0.5, 40.0, 500) * (rng.uniform(size=500) < 0.6)
    return actual, {
        "noisy": actual * rng.lognormal(0, 1.0, 500),
        "close": actual * rng.lognormal(0, 0.2, 500) + 1,
    }


def test_gain_figure_draws_each_model_and_the_references(
    values: tuple[np.ndarray, dict[str, np.ndarray]],
) -> None:
    actual, predicted = values
    fig = gain_figure(actual, predicted, chosen="close")
    assert isinstance(fig, Figure) and fig.canvas.manager is None  # no pyplot state
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    ginis = {name: normalized_gini(actual, p) for name, p in predicted.items()}
    assert set(lines) >= {
        "random order",
        "perfect (ranked by actual)",
        *(f"{name} (Gini {g:.2f})" for name, g in ginis.items()),
    }
    chosen = lines[f"close (Gini {ginis['close']:.2f})"]
    assert to_hex(chosen.get_color()) == ACCENT and chosen.get_linewidth() == 2.6
    x, y = gain_curve(actual, predicted["close"])
    np.testing.assert_allclose(chosen.get_xdata(), x)
    np.testing.assert_allclose(chosen.get_ydata(), y)
    np.testing.assert_allclose(
        lines["perfect (ranked by actual)"].get_ydata(), gain_curve(actual, actual)[1]
    )


def test_gain_draws_onto_a_given_axes_and_the_chart_is_the_same_drawing(
    values: tuple[np.ndarray, dict[str, np.ndarray]],
) -> None:
    actual, predicted = values
    fig = Figure()
    left, right = fig.subplots(1, 2)
    draw_gain(right, actual, predicted)
    assert not left.get_lines() and len(right.get_lines()) == 2 + len(predicted) + 1
    svg = gain_chart(actual, predicted, "noisy")
    assert svg.startswith("<svg") and 'data-chart="gain"' in svg
    for line in right.get_lines():
        if not line.get_label().startswith("_"):  # the 20% guide has no legend entry
            assert f">{line.get_label()}<" in svg


def test_decile_figure_bars_are_the_decile_table(
    values: tuple[np.ndarray, dict[str, np.ndarray]],
) -> None:
    actual, predicted = values
    table = decile_table(actual, predicted["noisy"])
    fig = decile_figure(actual, predicted["noisy"])
    bars = fig.axes[0].containers
    assert [b.get_label() for b in bars] == ["mean predicted", "mean actual"]
    np.testing.assert_allclose([r.get_height() for r in bars[0]], table["mean_predicted"])
    np.testing.assert_allclose([r.get_height() for r in bars[1]], table["mean_actual"])
    assert 'data-chart="deciles"' in decile_chart(actual, predicted["noisy"])
