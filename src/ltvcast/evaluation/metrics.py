"""Forecast metrics: pure functions of actual and predicted per-customer values.

Ranking metrics (gain curve, normalized Gini, top-share capture, top-k classification) need a
rule for customers with equal predictions, which are common (many models give every
one-time buyer the same value). Here a group of tied customers is treated as the average over
every order of its members: along the gain curve the group's value accrues linearly, and a
group straddling a top-share boundary is flagged in proportion to the slots left. The result
is deterministic and does not depend on the order of the input rows.

Decile tables keep tied predictions in one decile for the same reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ltvcast.exceptions import ConfigError

FloatArray = NDArray[np.float64]

#: ``(name, label, higher_is_better)`` for every key :func:`evaluate` returns, in display
#: order; ``higher_is_better`` is ``None`` for a signed error whose best value is zero.
METRICS: tuple[tuple[str, str, bool | None], ...] = (
    ("normalized_gini", "normalized Gini", True),
    ("spearman", "Spearman", True),
    ("top20_capture", "top-20% revenue capture", True),
    ("top20_precision", "top-20% precision", True),
    ("top20_recall", "top-20% recall", True),
    ("top20_f1", "top-20% F1", True),
    ("auc", "AUC of P(active)", True),
    ("mae", "MAE", False),
    ("rmse", "RMSE", False),
    ("decile_mape", "decile MAPE", False),
    ("total_value_error", "total-value error", None),
)

_TOP_SHARE = 0.2
_N_DECILES = 10


def _pair(actual: ArrayLike, predicted: ArrayLike) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(actual, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    if a.shape != p.shape:
        raise ConfigError(
            f"actual and predicted must have the same length; got {a.size} and {p.size}"
        )
    if not a.size:
        raise ConfigError("metrics need at least one customer; got empty arrays")
    bad = ~(np.isfinite(a) & np.isfinite(p))
    if bad.any():
        raise ConfigError(
            f"actual and predicted must be finite; {int(bad.sum())} customers are not "
            f"(positions {', '.join(map(str, np.flatnonzero(bad)[:5]))})"
        )
    return a, p


def mae(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute error."""
    a, p = _pair(actual, predicted)
    return float(np.mean(np.abs(p - a)))


def rmse(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Root mean squared error."""
    a, p = _pair(actual, predicted)
    return float(np.sqrt(np.mean((p - a) ** 2)))


def _tie_groups(actual: FloatArray, score: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Boundaries of the tie groups of ``score``, highest first.

    Returns ``(positions, cumulative)``: ``positions`` starts at 0 and ends at ``n``; between
    two boundaries the cumulative actual value grows linearly (the tie-averaged gain curve).
    """
    values, inverse = np.unique(-score, return_inverse=True)
    counts = np.bincount(inverse, minlength=values.size).astype(np.float64)
    sums = np.bincount(inverse, weights=actual, minlength=values.size)
    positions = np.concatenate(([0.0], np.cumsum(counts)))
    cumulative = np.concatenate(([0.0], np.cumsum(sums)))
    return positions, cumulative


def _cumulative_at(actual: FloatArray, score: FloatArray, positions: FloatArray) -> FloatArray:
    """Actual value held by the first ``positions`` customers ranked by ``score`` (descending)."""
    bounds, cumulative = _tie_groups(actual, score)
    return np.interp(positions, bounds, cumulative)


def gain_curve(
    actual: ArrayLike, predicted: ArrayLike, n_points: int = 101
) -> tuple[FloatArray, FloatArray]:
    """Cumulative share of actual value captured by the top customers ranked by prediction.

    Returns
    -------
    (fraction, share)
        ``fraction`` of customers (``n_points`` values from 0 to 1) and the ``share`` of total
        actual value they hold. ``gain_curve(actual, actual)`` is the perfect curve; the
        diagonal is a random ranking. ``share`` is all ``nan`` when actual values sum to 0.
    """
    a, p = _pair(actual, predicted)
    fraction = np.linspace(0.0, 1.0, n_points)
    total = a.sum()
    if total == 0:
        return fraction, np.full(n_points, np.nan)
    return fraction, _cumulative_at(a, p, fraction * a.size) / total


def _raw_gini(actual: FloatArray, score: FloatArray) -> float:
    positions = np.arange(1, actual.size + 1, dtype=np.float64)
    share = _cumulative_at(actual, score, positions) / actual.sum()
    return float(2.0 * share.mean() - 1.0)


def normalized_gini(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Gini of the prediction's gain curve divided by the Gini of the perfect ranking.

    Wang, Liu & Miao (2019), "A deep probabilistic model for customer lifetime value
    prediction", Section 4: ``gini = 2 * mean_i(cumulative share of the top i) - 1``, for the
    model's ranking and for the ranking by actual value. Ties are averaged (module docstring).
    ``nan`` when the actual values sum to 0 or are all equal.
    """
    a, p = _pair(actual, predicted)
    if a.sum() == 0 or np.ptp(a) == 0:
        return float("nan")
    perfect = _raw_gini(a, a)
    if perfect == 0:
        return float("nan")
    return _raw_gini(a, p) / perfect


def spearman(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Spearman rank correlation (average ranks for ties); ``nan`` when either is constant."""
    a, p = _pair(actual, predicted)
    if np.ptp(a) == 0 or np.ptp(p) == 0:
        return float("nan")
    from scipy.stats import spearmanr  # loaded on first use: a CLI run that scores needs none

    return float(spearmanr(a, p).statistic)


def _deciles(predicted: FloatArray) -> NDArray[np.int64]:
    """Decile 1 (lowest predictions) to 10 (highest); tied predictions share a decile."""
    from scipy.stats import rankdata

    ranks = rankdata(predicted, method="average")
    return (np.floor((ranks - 1.0) * _N_DECILES / predicted.size) + 1).astype(np.int64)


def decile_table(actual: ArrayLike, predicted: ArrayLike) -> pd.DataFrame:
    """Customers in prediction deciles with their mean predicted and mean actual value.

    Returns
    -------
    DataFrame
        Columns ``decile`` (1 = lowest predictions, 10 = highest), ``n``, ``mean_predicted``,
        ``mean_actual``; deciles left empty by tied predictions are omitted.
    """
    a, p = _pair(actual, predicted)
    frame = pd.DataFrame({"decile": _deciles(p), "predicted": p, "actual": a})
    table = frame.groupby("decile").agg(
        n=("actual", "size"), mean_predicted=("predicted", "mean"), mean_actual=("actual", "mean")
    )
    return table.reset_index()


def decile_mape(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute percentage error between mean predicted and mean actual per decile.

    Wang, Liu & Miao (2019), Section 4. Deciles whose mean actual value is 0 have no defined
    percentage error and are left out; ``nan`` when every decile is such.
    """
    table = decile_table(actual, predicted)
    table = table[table["mean_actual"] != 0]
    if table.empty:
        return float("nan")
    errors = (table["mean_predicted"] - table["mean_actual"]).abs() / table["mean_actual"].abs()
    return float(errors.mean())


def _check_share(share: float) -> None:
    if not 0 < share <= 1:
        raise ConfigError(f"share must be in (0, 1]; got {share}")


def top_share_capture(actual: ArrayLike, predicted: ArrayLike, share: float = _TOP_SHARE) -> float:
    """Share of total actual value held by the top ``share`` of customers by prediction.

    ``nan`` when the actual values sum to 0.
    """
    _check_share(share)
    a, p = _pair(actual, predicted)
    total = a.sum()
    if total == 0:
        return float("nan")
    return float(_cumulative_at(a, p, np.array([share * a.size]))[0] / total)


def _top_membership(score: FloatArray, k: float) -> FloatArray:
    """Membership (0 to 1) of each customer in the top ``k`` by ``score``, ties shared."""
    values, inverse = np.unique(-score, return_inverse=True)
    counts = np.bincount(inverse, minlength=values.size).astype(np.float64)
    before = np.cumsum(counts) - counts
    fraction = np.clip((k - before) / counts, 0.0, 1.0)
    return fraction[inverse]


def top_k_classification(
    actual: ArrayLike, predicted: ArrayLike, share: float = _TOP_SHARE
) -> tuple[float, float, float]:
    """Precision, recall and F1 of flagging the top ``share`` of customers by prediction.

    The true class is the top ``share`` of customers by actual value, among those with a
    positive actual value (a customer who spent nothing is never high-value). Both top sets
    hold ``share * n`` customers, tied groups at the boundary sharing the remaining slots.
    Recall and F1 are ``nan`` when no customer has a positive actual value.
    """
    _check_share(share)
    a, p = _pair(actual, predicted)
    k = share * a.size
    flagged = _top_membership(p, k)
    truth = _top_membership(a, k) * (a > 0)
    hits = float(np.sum(flagged * truth))
    precision = hits / float(flagged.sum())
    if truth.sum() == 0:
        return precision, float("nan"), float("nan")
    recall = hits / float(truth.sum())
    f1 = 0.0 if hits == 0 else 2.0 * precision * recall / (precision + recall)
    return precision, recall, f1


def auc(actual_purchases: ArrayLike, p_active: ArrayLike) -> float:
    """Area under the ROC curve of ``p_active`` for a repeat purchase (``purchases > 0``).

    Mann-Whitney form, ties counted one half. ``nan`` when only one class is present.
    """
    purchases, score = _pair(actual_purchases, p_active)
    positive = purchases > 0
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(score, method="average")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def total_value_error(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Signed relative error of the totals, ``sum(predicted) / sum(actual) - 1``.

    ``nan`` when the actual values sum to 0.
    """
    a, p = _pair(actual, predicted)
    total = a.sum()
    if total == 0:
        return float("nan")
    return float(p.sum() / total - 1.0)


def evaluate(
    actual_value: ArrayLike,
    predicted_value: ArrayLike,
    *,
    actual_purchases: ArrayLike | None = None,
    p_active: ArrayLike | None = None,
) -> dict[str, float]:
    """Every metric of :data:`METRICS`, keyed by name, in that order.

    ``auc`` needs both ``actual_purchases`` and ``p_active``; it is ``nan`` without them.
    """
    precision, recall, f1 = top_k_classification(actual_value, predicted_value)
    repeat_auc = float("nan")
    if actual_purchases is not None and p_active is not None:
        repeat_auc = auc(actual_purchases, p_active)
    return {
        "normalized_gini": normalized_gini(actual_value, predicted_value),
        "spearman": spearman(actual_value, predicted_value),
        "top20_capture": top_share_capture(actual_value, predicted_value),
        "top20_precision": precision,
        "top20_recall": recall,
        "top20_f1": f1,
        "auc": repeat_auc,
        "mae": mae(actual_value, predicted_value),
        "rmse": rmse(actual_value, predicted_value),
        "decile_mape": decile_mape(actual_value, predicted_value),
        "total_value_error": total_value_error(actual_value, predicted_value),
    }
