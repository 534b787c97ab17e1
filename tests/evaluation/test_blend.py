"""Blend weights (least absolute deviations on the simplex), out-of-fold blends, and the
weighted mean of prediction frames and explanations."""

from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.evaluation.blend import (
    MIN_WEIGHT,
    BlendScorer,
    combine,
    combine_explanations,
    fold_of,
    out_of_fold,
    simplex_weights,
)
from ltvcast.exceptions import ConfigError, LTVError


def _forecasts(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Three noisy, heavy-tailed forecasts of one zero-inflated spend."""
    rng = np.random.default_rng(seed)
    actual = rng.lognormal(3.0, 1.0, n) * (rng.random(n) < 0.4)
    noise = rng.lognormal(0.0, 0.6, (n, 3))
    return actual[:, None] * noise * [0.7, 1.0, 1.6] + [5.0, 0.0, 2.0], actual


def test_weights_are_the_mae_optimum_on_the_simplex() -> None:
    forecasts, actual = _forecasts()
    weights = simplex_weights(forecasts, actual)
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    assert ((weights == 0) | (weights >= MIN_WEIGHT)).all()
    # An independent reference: a 1%-step grid over the simplex does no better.
    best = min(
        np.abs(forecasts @ np.array([a, b, 1 - a - b]) - actual).mean()
        for a, b in product(np.linspace(0, 1, 101), repeat=2)
        if a + b <= 1 + 1e-12
    )
    assert np.abs(forecasts @ weights - actual).mean() <= best + 1e-9


def test_an_exact_mixture_is_recovered_and_a_useless_member_dropped() -> None:
    rng = np.random.default_rng(1)
    low, high = rng.gamma(2.0, 10.0, 300), rng.gamma(2.0, 10.0, 300)
    actual = 0.3 * low + 0.7 * high
    useless = rng.gamma(2.0, 10.0, 300)
    weights = simplex_weights(np.column_stack([low, useless, high]), actual)
    np.testing.assert_allclose(weights, [0.3, 0.0, 0.7], atol=1e-6)
    with pytest.raises(ConfigError, match="one actual per customer"):
        simplex_weights(np.ones((3, 2)), np.ones(4))


def test_out_of_fold_never_sees_the_customer_it_scores() -> None:
    forecasts, actual = _forecasts(seed=2)
    fold = fold_of(len(actual), 5, random_state=0)
    assert sorted(np.bincount(fold)) == [80] * 5
    blended = out_of_fold(forecasts, actual, fold)
    changed = actual.copy()
    changed[fold == 3] *= 50.0  # the held-out fold's labels cannot move its own forecasts
    again = out_of_fold(forecasts, changed, fold)
    np.testing.assert_array_equal(again[fold == 3], blended[fold == 3])
    assert not np.allclose(again[fold != 3], blended[fold != 3])
    with pytest.raises(ConfigError, match="at least 10 customers"):
        fold_of(9, 5)


def _frame(scale: float, quantiles: bool) -> pd.DataFrame:
    value = scale * np.array([1.0, 2.0, 4.0])
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "predicted_value": value,
            "predicted_purchases": value / 2,
            "p_active": np.array([0.2, 0.5, 0.9]) ** scale,
        }
    )
    return frame.assign(value_p10=value / 2, value_p90=value * 2) if quantiles else frame


def test_combine_is_the_weighted_mean_of_every_column() -> None:
    frames = {"x": _frame(1.0, True), "y": _frame(3.0, True)}
    mixed = combine(frames, {"x": 0.25, "y": 0.75})
    assert list(mixed["customer_id"]) == ["a", "b", "c"]
    for column in ("predicted_value", "predicted_purchases", "p_active", "value_p10"):
        np.testing.assert_allclose(
            mixed[column], 0.25 * frames["x"][column] + 0.75 * frames["y"][column]
        )
    assert (mixed["value_p10"] <= mixed["predicted_value"]).all()
    assert (mixed["predicted_value"] <= mixed["value_p90"]).all()
    assert ((mixed["p_active"] >= 0) & (mixed["p_active"] <= 1)).all()
    # Quantiles only when every member has them.
    partial = combine({"x": _frame(1.0, True), "y": _frame(3.0, False)}, {"x": 0.5, "y": 0.5})
    assert "value_p10" not in partial.columns
    other = _frame(1.0, False).assign(customer_id=["a", "b", "z"])
    with pytest.raises(LTVError, match="y forecasts other customers than x"):
        combine({"x": _frame(1.0, False), "y": other}, {"x": 0.5, "y": 0.5})


def test_explanations_sum_to_the_blended_value() -> None:
    index = pd.Index(["a", "b"], name="customer_id")
    one = pd.DataFrame({"recency": [1.0, -2.0], "base_value": [10.0, 10.0]}, index=index)
    two = pd.DataFrame({"frequency": [4.0, 0.0], "base_value": [6.0, 6.0]}, index=index)
    mixed = combine_explanations({"one": one, "two": two}, {"one": 0.5, "two": 0.5})
    assert list(mixed.columns) == ["recency", "frequency", "base_value"]
    np.testing.assert_allclose(mixed.sum(axis=1), 0.5 * one.sum(axis=1) + 0.5 * two.sum(axis=1))
    assert mixed.loc["a", "recency"] == 0.5 and mixed.loc["b", "frequency"] == 0.0


@pytest.mark.realdata
def test_blend_scorer_matches_the_blended_predictions(data_dir: Path) -> None:
    from ltvcast.data.datasets import load_cdnow_sample
    from ltvcast.features.rfm import rfm_summary
    from ltvcast.models import create
    from ltvcast.timeframe import Horizon

    data, _ = load_cdnow_sample(data_dir)
    as_of = pd.Timestamp("1997-09-30 23:59:59")
    members = {n: create(n).fit(data, as_of, Horizon(13, "w")) for n in ("btyd", "pnbd")}
    weights = {"btyd": 0.4, "pnbd": 0.6}
    scorers = {n: m.rfm_scorer for n, m in members.items()}
    assert all(s is not None for s in scorers.values())
    rfm = rfm_summary(data.transactions, as_of)
    fast = BlendScorer(scorers, weights).predict_rfm(rfm)  # type: ignore[arg-type]
    full = combine({n: m.predict(data, as_of) for n, m in members.items()}, weights)
    full = full.set_index("customer_id").loc[rfm.index]
    np.testing.assert_allclose(fast["predicted_value"], full["predicted_value"], rtol=1e-9)
    np.testing.assert_allclose(fast["p_active"], full["p_active"], rtol=1e-9)
