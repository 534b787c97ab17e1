"""Blends for ``auto``: a convex combination of the candidates' forecasts, fitted out of sample.

The weights minimise the mean absolute error of the blended value over the inner backtest's
customers, under ``w >= 0`` and ``sum(w) = 1`` (a linear program: least absolute deviations
on the simplex). Summing to one keeps the blend on the members' own scale, so totals stay as
calibrated as the members' (a free scale would lower MAE by shrinking every forecast towards
the median customer's zero). :func:`out_of_fold` refits the weights with each fold of
customers held out, so the blend is judged on customers its weights never saw.

:func:`combine` mixes every prediction column with the same weights: ``predicted_value`` and
``predicted_purchases`` are the blend's expectations; ``p_active`` is the weighted mean of
the members' (every forecaster gives one, by the contract); each value quantile is the
weighted mean of the members' quantiles: the quantile of the weighted forecast when the
members' errors move together (comonotone), otherwise typically wider than needed, a
conservative interval. Quantiles are kept only when every member gives them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ltvcast.data.schemas import CUSTOMER_ID, PREDICTION_COLUMNS, QUANTILE_COLUMNS
from ltvcast.evaluation.backtest import NEAR_TIE, BacktestResult
from ltvcast.evaluation.metrics import METRICS, evaluate
from ltvcast.exceptions import ConfigError, LTVError
from ltvcast.models.base import RFMScorer

FloatArray = NDArray[np.float64]
#: Weights below this share are dropped and the rest refitted (a member that moves the
#: forecast by under 1% is not worth training and scoring).
MIN_WEIGHT = 0.01
#: Folds of customers for :func:`out_of_fold`.
FOLDS = 5
#: How much lower (relative) a blend's out-of-fold MAE must be than the single best's.
BLEND_MARGIN = 0.005


def simplex_weights(forecasts: FloatArray, actual: FloatArray) -> FloatArray:
    """Non-negative weights summing to one that minimise ``mean |forecasts @ w - actual|``.

    Parameters
    ----------
    forecasts
        ``(customers, members)`` forecast values.
    actual
        ``(customers,)`` observed values.

    Returns
    -------
    ndarray
        ``(members,)`` weights; those under :data:`MIN_WEIGHT` are set to 0 and the others
        refitted.
    """
    forecasts = np.asarray(forecasts, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if forecasts.ndim != 2 or forecasts.shape[0] != actual.size or not actual.size:
        raise ConfigError(
            f"blend weights need a (customers, members) array and one actual per customer; "
            f"got {forecasts.shape} and {actual.shape}"
        )
    keep = np.arange(forecasts.shape[1])
    while True:
        weights = _lad_on_simplex(forecasts[:, keep], actual)
        small = weights < MIN_WEIGHT
        if not small.any():
            break
        keep = keep[~small]
    out = np.zeros(forecasts.shape[1])
    out[keep] = weights
    return out


def _lad_on_simplex(forecasts: FloatArray, actual: FloatArray) -> FloatArray:
    """The linear program ``min sum(up + down)`` s.t. ``F w - up + down = y``, ``sum(w) = 1``,
    all variables ``>= 0`` (solved by HiGHS)."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, hstack, identity, vstack

    n, k = forecasts.shape
    if k == 1:
        return np.ones(1)
    eye = identity(n, format="csr")
    rows = hstack([csr_matrix(forecasts), -eye, eye])
    total = csr_matrix(np.r_[np.ones(k), np.zeros(2 * n)])
    solution = linprog(
        np.r_[np.zeros(k), np.ones(2 * n)],
        A_eq=vstack([rows, total]).tocsr(),
        b_eq=np.r_[actual, 1.0],
        bounds=(0, None),
        method="highs",
    )
    if solution.status != 0:
        raise LTVError(f"blend weights: the linear program failed ({solution.message})")
    weights = np.clip(solution.x[:k], 0.0, None)
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def fold_of(n: int, folds: int = FOLDS, random_state: int = 0) -> NDArray[np.int64]:
    """Each of ``n`` customers' fold, ``0 .. folds - 1``, at random (``random_state``).

    Raises
    ------
    ConfigError
        With fewer customers than twice the folds.
    """
    if n < 2 * folds:
        raise ConfigError(f"out-of-fold blending needs at least {2 * folds} customers; got {n}")
    return np.random.default_rng(random_state).permutation(n) % folds


def out_of_fold(forecasts: FloatArray, actual: FloatArray, fold: NDArray[np.int64]) -> FloatArray:
    """Each customer's blended value with the weights fitted on the other folds' customers."""
    forecasts = np.asarray(forecasts, dtype=np.float64)
    blended = np.empty(forecasts.shape[0])
    for held in np.unique(fold):
        out = fold == held
        blended[out] = forecasts[out] @ simplex_weights(forecasts[~out], actual[~out])
    return blended


def combine(frames: Mapping[str, pd.DataFrame], weights: Mapping[str, float]) -> pd.DataFrame:
    """The weighted mean of the members' prediction frames (module docstring).

    Parameters
    ----------
    frames
        Each member's prediction frame (``customer_id`` and the prediction columns, as
        :meth:`~ltvcast.models.base.Forecaster.predict` returns, or without ``customer_id``
        in the rows' order, as :meth:`~ltvcast.models.base.RFMScorer.predict_rfm` does).
    weights
        Each member's weight, by the same names.

    Returns
    -------
    DataFrame
        The first member's ``customer_id`` (when it has one), the prediction columns and the
        quantile columns when every member has them.
    """
    names = list(weights)
    first = frames[names[0]]
    ids = first[CUSTOMER_ID] if CUSTOMER_ID in first.columns else None
    for name in names[1:]:
        other = frames[name]
        same = len(other) == len(first) and (
            ids is None or np.array_equal(other[CUSTOMER_ID].to_numpy(), ids.to_numpy())
        )
        if not same:
            raise LTVError(f"blend: {name} forecasts other customers than {names[0]}")
    columns = [c for c in PREDICTION_COLUMNS if c != CUSTOMER_ID]
    if all(set(QUANTILE_COLUMNS) <= set(frames[n].columns) for n in names):
        columns += list(QUANTILE_COLUMNS)
    stacked = np.stack([frames[n][columns].to_numpy(np.float64) for n in names])
    mixed = np.tensordot(np.array([weights[n] for n in names]), stacked, axes=1)
    out = pd.DataFrame(mixed, columns=columns)
    if ids is not None:
        out.insert(0, CUSTOMER_ID, ids.to_numpy())
    return out


def combine_explanations(
    frames: Mapping[str, pd.DataFrame], weights: Mapping[str, float]
) -> pd.DataFrame:
    """The weighted sum of the members' contribution tables (drivers missing from a member
    count 0 there), so each row still sums to the blend's ``predicted_value``; drivers in
    the members' order."""
    scaled = [frames[name].mul(weight) for name, weight in weights.items()]
    total = scaled[0]
    for frame in scaled[1:]:
        total = total.add(frame, fill_value=0.0)
    drivers = dict.fromkeys(c for f in frames.values() for c in f.columns if c != "base_value")
    columns = [*drivers, "base_value"]
    return total.reindex(index=frames[next(iter(weights))].index, columns=columns).fillna(0.0)


def blend_weights(
    result: BacktestResult,
    single: str,
    metric: str = "normalized_gini",
    margin: float = BLEND_MARGIN,
    random_state: int = 0,
) -> tuple[dict[str, float], str]:
    """The blend of the scored candidates that replaces ``single``, and the verdict in words.

    The weights (:func:`~ltvcast.evaluation.blend.simplex_weights`) are fitted on every
    scored candidate's inner forecasts; they are returned (members with weight > 0, largest
    first) only when the out-of-fold blend's MAE is below ``single``'s by ``margin`` and its
    ``metric`` is no worse beyond :data:`~ltvcast.evaluation.backtest.NEAR_TIE`; otherwise
    ``{}``, and the verdict says why.
    """
    names = result.ranking(metric)
    if len(names) < 2:
        return {}, ""
    runs = {r.name: r for r in result.results}
    actual = result.actuals["value"].to_numpy(np.float64)
    forecasts = np.column_stack(
        [
            runs[n]
            .predictions.set_index(CUSTOMER_ID)["predicted_value"]  # type: ignore[union-attr]
            .reindex(result.actuals.index)
            .to_numpy(np.float64)
            for n in names
        ]
    )
    if len(actual) < 2 * FOLDS:
        return {}, f"no blend: {len(actual)} customers are too few to check one out of fold"
    weights = simplex_weights(forecasts, actual)
    kept = {names[i]: float(weights[i]) for i in np.argsort(-weights) if weights[i] > 0}
    fold = fold_of(len(actual), FOLDS, random_state)
    blend_mae, blend_score = _fold_means(actual, out_of_fold(forecasts, actual, fold), fold, metric)
    own_mae, own_score = _fold_means(actual, forecasts[:, names.index(single)], fold, metric)
    mix = " + ".join(f"{n} {w:.2f}" for n, w in kept.items())
    label = {name: text for name, text, _ in METRICS}[metric]
    evidence = (
        f"out of fold on the inner backtest's customers (mean of {FOLDS} folds) it scored MAE "
        f"{blend_mae:.3g} vs {own_mae:.3g} and {label} {blend_score:.3g} vs {own_score:.3g} "
        f"for {single} alone"
    )
    if len(kept) < 2:
        return {}, f"no blend: the best weights put everything on {next(iter(kept))}"
    pays = blend_mae <= (1 - margin) * own_mae and _no_worse(blend_score, own_score, metric)
    if not pays:
        return {}, f"no blend: the best blend ({mix}) does not pay: {evidence}"
    return kept, f"blended {mix}: {evidence}"


def _fold_means(
    actual: np.ndarray, predicted: np.ndarray, fold: np.ndarray, metric: str
) -> tuple[float, float]:
    """MAE and ``metric`` of ``predicted``, each the mean over the folds."""
    scores = [evaluate(actual[fold == f], predicted[fold == f]) for f in np.unique(fold)]
    return (
        float(np.nanmean([s["mae"] for s in scores])),
        float(np.nanmean([s[metric] for s in scores])),
    )


def _no_worse(score: float, reference: float, metric: str) -> bool:
    """``score`` is at least as good as ``reference`` on ``metric`` or within
    :data:`NEAR_TIE` of it (``False`` for ``nan``)."""
    better = {name: b for name, _, b in METRICS}[metric]
    slack = NEAR_TIE * abs(reference)
    if better is None:
        return bool(abs(score) <= abs(reference) + slack)
    return bool(score >= reference - slack if better else score <= reference + slack)


class BlendScorer:
    """The online fast path of a blend: the weighted mean (:func:`combine`) of its members'
    :meth:`~ltvcast.models.base.RFMScorer.predict_rfm`."""

    def __init__(self, scorers: Mapping[str, RFMScorer], weights: Mapping[str, float]) -> None:
        self.scorers = scorers
        self.weights = weights

    def predict_rfm(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """Prediction columns (no ``customer_id``) for the rows of ``rfm``, in its order."""
        frames = {name: scorer.predict_rfm(rfm) for name, scorer in self.scorers.items()}
        return combine(frames, self.weights)
