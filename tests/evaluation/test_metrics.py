"""Metrics against hand-computed cases and independent references (scikit-learn, pandas)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    roc_auc_score,
)

from ltvcast.evaluation.metrics import (
    METRICS,
    auc,
    decile_mape,
    decile_table,
    evaluate,
    gain_curve,
    mae,
    normalized_gini,
    rmse,
    spearman,
    top_k_classification,
    top_share_capture,
    total_value_error,
)
from ltvcast.exceptions import ConfigError

# Ten customers used by several hand-computed cases (total actual value 100).
ACTUAL10 = np.array([50, 0, 10, 0, 0, 20, 0, 5, 15, 0], dtype=float)
PRED10 = np.array([8, 9, 1, 2, 3, 10, 4, 5, 6, 7], dtype=float)


def _wang_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini as written in google/lifetime_value (no ties): 2 * mean cumulative share - 1."""

    def raw(score: np.ndarray) -> float:
        frame = pd.DataFrame({"a": actual, "s": score}).sort_values("s", ascending=False)
        share = frame["a"].cumsum() / frame["a"].sum()
        return 2 * share.mean() - 1

    return raw(predicted) / raw(actual)


def test_gini_five_customers_by_hand() -> None:
    # Ranked by prediction: 20, 10, 40, 30, 0 -> cumulative shares .2 .3 .7 1 1 (mean .64);
    # perfect: 40, 30, 20, 10, 0 -> .4 .7 .9 1 1 (mean .8). Gini (2*.64-1)/(2*.8-1) = .28/.6.
    actual = [10, 0, 30, 20, 40]
    predicted = [4, 1, 2, 5, 3]
    assert normalized_gini(actual, predicted) == pytest.approx(0.28 / 0.6)
    assert normalized_gini(actual, actual) == pytest.approx(1.0)


def test_gini_matches_published_formula_without_ties() -> None:
    rng = np.random.default_rng(3)
    actual = rng.gamma(0.3, 50, 400) * (rng.uniform(size=400) < 0.4)
    predicted = actual + rng.normal(0, 20, 400)
    assert normalized_gini(actual, predicted) == pytest.approx(_wang_gini(actual, predicted))


def test_gini_ties_average_every_order_and_ignore_input_order() -> None:
    # Customers 1 and 3 tie, as do 0, 2 and 4: the tie rule must equal the mean Gini over
    # every way of ordering the tied customers (each permutation then has no ties).
    actual = np.array([0.0, 10, 0, 5, 100, 7])
    predicted = np.array([1.0, 3, 1, 3, 1, 9])
    ginis = []
    for low in itertools.permutations([0, 2, 4]):
        for mid in itertools.permutations([1, 3]):
            order = np.empty(6)
            order[[5, *mid, *low]] = np.arange(6, 0, -1)
            ginis.append(_wang_gini(actual, order))
    assert normalized_gini(actual, predicted) == pytest.approx(np.mean(ginis))
    shuffle = np.array([4, 2, 0, 5, 1, 3])
    assert normalized_gini(actual[shuffle], predicted[shuffle]) == normalized_gini(
        actual, predicted
    )


def test_gini_constant_prediction_and_degenerate_actuals() -> None:
    # A constant prediction accrues value linearly: mean share (n+1)/(2n), raw Gini 1/n.
    actual = np.array([0.0, 0, 0, 10])
    # Here shares .25 .5 .75 1 (raw .25) against a perfect 1 1 1 1 (raw 1).
    assert normalized_gini(actual, np.ones(4)) == pytest.approx(0.25)
    assert np.isnan(normalized_gini(np.zeros(4), [1, 2, 3, 4]))
    assert np.isnan(normalized_gini(np.full(4, 3.0), [1, 2, 3, 4]))


def test_gain_curve_by_hand_and_perfect_curve() -> None:
    actual = [10, 0, 30, 20, 40]
    fraction, share = gain_curve(actual, [4, 1, 2, 5, 3], n_points=6)
    np.testing.assert_allclose(fraction, np.linspace(0, 1, 6))
    np.testing.assert_allclose(share, [0, 0.2, 0.3, 0.7, 1.0, 1.0])
    _, perfect = gain_curve(actual, actual, n_points=6)
    np.testing.assert_allclose(perfect, [0, 0.4, 0.7, 0.9, 1.0, 1.0])
    # Half-way between customers the curve interpolates: a fraction 0.1 holds half of 40.
    _, mid = gain_curve(actual, actual, n_points=11)
    assert mid[1] == pytest.approx(0.2)


def test_decile_mape_by_hand() -> None:
    # One customer per decile; the 10th decile has zero actual value and is left out.
    predicted = np.arange(1, 11, dtype=float)
    actual = np.array([2, 2, 2, 2, 2, 5, 5, 5, 5, 0], dtype=float)
    errors = [0.5, 0, 0.5, 1, 1.5, 0.2, 0.4, 0.6, 0.8]
    assert decile_mape(actual, predicted) == pytest.approx(np.mean(errors))
    # A uniform 20% under-forecast is a 20% MAPE in every decile.
    predicted = np.arange(1, 41, dtype=float)
    assert decile_mape(predicted * 1.25, predicted) == pytest.approx(0.2)


def test_decile_table_matches_qcut_without_ties() -> None:
    rng = np.random.default_rng(0)
    predicted = rng.normal(size=1000)
    actual = rng.gamma(1, 10, 1000)
    table = decile_table(actual, predicted)
    assert list(table.columns) == ["decile", "n", "mean_predicted", "mean_actual"]
    assert table["n"].tolist() == [100] * 10
    reference = (
        pd.DataFrame({"d": pd.qcut(predicted, 10, labels=False) + 1, "a": actual, "p": predicted})
        .groupby("d")
        .mean()
    )
    np.testing.assert_allclose(table["mean_actual"], reference["a"])
    np.testing.assert_allclose(table["mean_predicted"], reference["p"])


def test_decile_table_keeps_ties_together() -> None:
    predicted = np.r_[np.zeros(15), np.arange(1, 6)]
    table = decile_table(np.ones(20), predicted)
    assert table["n"].sum() == 20
    assert table.loc[table["mean_predicted"] == 0, "n"].item() == 15


def test_top_share_capture_by_hand() -> None:
    # Top 2 by prediction are customers 5 (20) and 1 (0): 20 of 100.
    assert top_share_capture(ACTUAL10, PRED10) == pytest.approx(0.2)
    assert top_share_capture(ACTUAL10, ACTUAL10) == pytest.approx(0.7)
    assert top_share_capture(ACTUAL10, PRED10, share=0.5) == pytest.approx(0.85)  # 20+0+50+0+15
    with pytest.raises(ConfigError, match="share"):
        top_share_capture(ACTUAL10, PRED10, share=0)


def test_top_k_classification_by_hand_and_sklearn() -> None:
    # True top 2: customers 0 (50) and 5 (20); flagged: 5 and 1 -> one hit of two.
    assert top_k_classification(ACTUAL10, PRED10) == pytest.approx((0.5, 0.5, 0.5))
    rng = np.random.default_rng(1)
    actual = rng.gamma(1, 10, 50)
    predicted = actual + rng.normal(0, 10, 50)
    flagged = predicted >= np.sort(predicted)[-10]
    truth = actual >= np.sort(actual)[-10]
    reference = precision_recall_fscore_support(truth, flagged, average="binary")[:3]
    assert top_k_classification(actual, predicted) == pytest.approx(reference)


def test_top_k_classification_few_buyers_and_ties() -> None:
    # Only one buyer: the true class has one member, two customers are flagged.
    actual = np.r_[10.0, np.zeros(9)]
    precision, recall, f1 = top_k_classification(actual, np.arange(10, 0, -1.0))
    assert (precision, recall, f1) == pytest.approx((0.5, 1.0, 2 / 3))
    # A constant prediction flags everyone at 2/10: expected precision 1/10, recall 2/10.
    assert top_k_classification(actual, np.ones(10)) == pytest.approx(
        (0.1, 0.2, 2 * 0.1 * 0.2 / 0.3)
    )
    assert np.isnan(top_k_classification(np.zeros(10), np.ones(10))[1])


def test_auc_against_sklearn() -> None:
    rng = np.random.default_rng(2)
    purchases = rng.poisson(0.7, 300)
    p_active = np.round(rng.uniform(size=300) * 0.5 + 0.5 * (purchases > 0), 1)  # many ties
    assert auc(purchases, p_active) == pytest.approx(roc_auc_score(purchases > 0, p_active))
    assert np.isnan(auc(np.zeros(5), np.linspace(0, 1, 5)))
    assert np.isnan(auc(np.ones(5), np.linspace(0, 1, 5)))


def test_error_metrics_against_references() -> None:
    rng = np.random.default_rng(4)
    actual = rng.gamma(0.5, 20, 200)
    predicted = rng.gamma(0.5, 20, 200)
    assert mae(actual, predicted) == pytest.approx(mean_absolute_error(actual, predicted))
    assert rmse(actual, predicted) == pytest.approx(np.sqrt(mean_squared_error(actual, predicted)))
    reference = pd.Series(actual).corr(pd.Series(predicted), method="spearman")
    assert spearman(actual, predicted) == pytest.approx(reference)
    assert np.isnan(spearman(actual, np.ones(200)))
    assert total_value_error([40, 60], [50, 60]) == pytest.approx(0.1)
    assert total_value_error([40, 60], [30, 60]) == pytest.approx(-0.1)
    assert np.isnan(total_value_error([0, 0], [1, 2]))


def test_evaluate_returns_every_metric_in_order() -> None:
    purchases = (ACTUAL10 > 0).astype(float)
    result = evaluate(ACTUAL10, PRED10, actual_purchases=purchases, p_active=PRED10 / 10)
    assert list(result) == [name for name, _, _ in METRICS]
    assert result["top20_capture"] == pytest.approx(0.2)
    assert result["auc"] == pytest.approx(roc_auc_score(purchases, PRED10))
    assert np.isnan(evaluate(ACTUAL10, PRED10)["auc"])


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="same length"):
        mae([1, 2], [1])
    with pytest.raises(ConfigError, match="finite; 1 customers"):
        normalized_gini([1, np.nan], [1, 2])
    with pytest.raises(ConfigError, match="at least one"):
        rmse([], [])
