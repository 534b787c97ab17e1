"""Backtests: train models up to a cutoff, score the horizon after it.

Every model sees ``data.until(cutoff)`` only; the labels are each customer's spend and
purchase days in ``(cutoff, cutoff + horizon]`` (:func:`~ltvcast.data.purchases.horizon_labels`)
for the customers seen up to the cutoff; rows after ``cutoff + horizon`` are dropped first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.evaluation.metrics import METRICS, evaluate
from ltvcast.exceptions import ConfigError, InsufficientDataError, LTVError
from ltvcast.models.base import Forecaster
from ltvcast.timeframe import Horizon

#: Near-tie tolerance of :meth:`BacktestResult.best`: within this relative distance of the
#: best score, the model with the lower MAE wins.
NEAR_TIE = 0.01


@dataclass
class ModelResult:
    """One model's backtest: metrics, timings, predictions, or why it was skipped."""

    name: str
    metrics: dict[str, float]
    fit_seconds: float
    predict_seconds: float
    predictions: pd.DataFrame | None
    error: str | None = None
    #: What the model said about its own fit (``auto``'s choice and why), if anything.
    note: str | None = None


@dataclass
class BacktestResult:
    """Every model's result at one cutoff; ``actuals`` is indexed by ``customer_id``."""

    cutoff: pd.Timestamp
    horizon: Horizon
    n_customers: int
    actuals: pd.DataFrame
    results: list[ModelResult]

    def table(self) -> pd.DataFrame:
        """Rows = models, columns = metrics (``METRICS`` order), ``fit_s``, ``predict_s`` and,
        when any model was skipped, ``error`` (missing for the models that ran)."""
        names = [name for name, _, _ in METRICS]
        rows = [
            {
                **{name: r.metrics.get(name, np.nan) for name in names},
                "fit_s": r.fit_seconds,
                "predict_s": r.predict_seconds,
                "error": r.error,
            }
            for r in self.results
        ]
        table = pd.DataFrame(
            rows,
            index=pd.Index([r.name for r in self.results], name="model"),
            columns=[*names, "fit_s", "predict_s", "error"],
        )
        if all(r.error is None for r in self.results):
            table = table.drop(columns="error")
        return table

    def ranking(self, metric: str = "normalized_gini", tolerance: float = NEAR_TIE) -> list[str]:
        """Scored models from best to worst by ``metric``; skipped models are left out.

        Models within ``tolerance`` (relative) of the best score count as tied with it and
        are ordered by MAE, lower first; the rest follow by ``metric``.
        """
        direction = {name: better for name, _, better in METRICS}
        if metric not in direction:
            raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(direction)}")
        table = self.table()
        scores = table[metric].astype(np.float64)
        # A sort key where lower is better.
        if direction[metric] is None:
            key = scores.abs()
        else:
            key = -scores if direction[metric] else scores
        key = key[np.isfinite(key)]
        if key.empty:
            return []
        best = key.min()
        tied = key.index[key <= best + tolerance * abs(best)]
        head = table.loc[tied, "mae"].astype(np.float64).sort_values(kind="stable")
        rest = key.drop(index=tied).sort_values(kind="stable")
        return [str(name) for name in (*head.index, *rest.index)]

    def best(self, metric: str = "normalized_gini") -> str:
        """Name of the best model by ``metric`` (see :meth:`ranking` for near-ties).

        Raises
        ------
        InsufficientDataError
            When no model could be scored on ``metric``.
        """
        ranking = self.ranking(metric)
        if not ranking:
            skipped = "; ".join(f"{r.name}: {r.error}" for r in self.results if r.error)
            raise InsufficientDataError(
                f"no model has a {metric} score in the backtest at {self.cutoff:%Y-%m-%d}"
                + (f" ({skipped})" if skipped else "")
            )
        return ranking[0]


def default_cutoff(data: CustomerData, horizon: Horizon) -> pd.Timestamp:
    """The latest cutoff whose whole horizon lies in the data: last timestamp - horizon."""
    return horizon.start(data.last_timestamp())


def data_end(data: CustomerData) -> pd.Timestamp:
    """End of the last day with data: a day that has rows is taken as fully recorded."""
    return day_end(data.last_timestamp())


def day_end(last: pd.Timestamp) -> pd.Timestamp:
    """The end of the day of ``last`` (the data's last time): see :func:`data_end`."""
    return pd.Timestamp(last.floor("D") + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1))


def label_window_end(
    complete: pd.Timestamp, cutoff: pd.Timestamp, horizon: Horizon
) -> pd.Timestamp:
    """The end of the label window after ``cutoff``, checked against ``complete`` (the time
    up to which the data is complete, :func:`data_end`).

    Raises
    ------
    InsufficientDataError
        When the window ends after ``complete``.
    """
    label_end = horizon.end(cutoff)
    if label_end > complete:
        raise InsufficientDataError(
            f"the data ends at {complete:%Y-%m-%d %H:%M}; a {horizon} backtest at cutoff "
            f"{cutoff:%Y-%m-%d %H:%M} needs data to {label_end:%Y-%m-%d %H:%M}"
        )
    return label_end


def check_customers(customers: int, cutoff: pd.Timestamp) -> None:
    """Refuse a backtest with no customer seen up to ``cutoff`` (InsufficientDataError)."""
    if not customers:
        raise InsufficientDataError(
            f"no customer has a transaction or event up to the cutoff {cutoff:%Y-%m-%d %H:%M}"
        )


def _unique_names(models: Sequence[Forecaster]) -> list[str]:
    names = [m.name or type(m).__name__ for m in models]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


def _run_model(
    name: str,
    model: Forecaster,
    train: CustomerData,
    cutoff: pd.Timestamp,
    horizon: Horizon,
    actuals: pd.DataFrame,
) -> ModelResult:
    forecaster = model.clone()
    started = time.perf_counter()
    try:
        forecaster.fit(train, cutoff, horizon)
    except InsufficientDataError as err:
        return ModelResult(name, {}, time.perf_counter() - started, np.nan, None, str(err))
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predictions = forecaster.predict(train, cutoff)
    predict_seconds = time.perf_counter() - started
    return scored_result(
        name,
        predictions,
        actuals,
        cutoff,
        (fit_seconds, predict_seconds),
        note=forecaster.selection_reason,
    )


def scored_result(
    name: str,
    predictions: pd.DataFrame,
    actuals: pd.DataFrame,
    cutoff: pd.Timestamp,
    seconds: tuple[float, float],
    *,
    note: str | None = None,
) -> ModelResult:
    """Model ``name``'s result: its ``predictions`` (``customer_id``, ``predicted_value``,
    ``p_active``) scored against ``actuals`` (:func:`horizon_labels` of the customers seen
    up to ``cutoff``), with its ``(fit, predict)`` seconds.

    Raises
    ------
    LTVError
        When a customer of ``actuals`` has no prediction.
    """
    aligned = predictions.set_index(CUSTOMER_ID).reindex(actuals.index)
    missing = aligned["predicted_value"].isna()
    if missing.any():
        examples = ", ".join(map(str, actuals.index[missing.to_numpy()][:5]))
        raise LTVError(
            f"model {name!r} gave no prediction for {int(missing.sum())} of {len(actuals)} "
            f"customers seen up to {cutoff} (e.g. {examples})"
        )
    metrics = evaluate(
        actuals["value"].to_numpy(),
        aligned["predicted_value"].to_numpy(),
        actual_purchases=actuals["purchases"].to_numpy(),
        p_active=aligned["p_active"].to_numpy(),
    )
    return ModelResult(name, metrics, *seconds, predictions, note=note)


def backtest(
    data: CustomerData,
    cutoff: pd.Timestamp,
    horizon: Horizon,
    models: Sequence[Forecaster],
    *,
    progress: Callable[[str], None] | None = None,
    end: pd.Timestamp | None = None,
) -> BacktestResult:
    """Train each model on data up to ``cutoff`` and score it on ``(cutoff, cutoff + horizon]``.

    Parameters
    ----------
    data
        Canonical data; rows after ``cutoff + horizon`` are ignored.
    cutoff
        Training as-of time (inclusive).
    horizon
        Forecast horizon scored after ``cutoff``.
    models
        Forecasters, each cloned (:meth:`~ltvcast.models.base.Forecaster.clone`) into a fresh
        instance before it is fitted; name them with :func:`ltvcast.models.create`.
    progress
        Called with a short line as each model starts and when one is skipped.
    end
        Time up to which the data is complete; default :func:`data_end`.

    Returns
    -------
    BacktestResult
        A model that raises :class:`InsufficientDataError` is recorded with its ``error`` and
        no metrics.

    Raises
    ------
    InsufficientDataError
        When ``cutoff + horizon`` is past the end of the data, or no customer is seen up to
        ``cutoff``.
    """
    label_end = label_window_end(data_end(data) if end is None else end, cutoff, horizon)
    data = data.until(label_end)
    train = data.until(cutoff)
    customers = train.customers()
    check_customers(len(customers), cutoff)
    actuals = horizon_labels(data.transactions, customers, cutoff, label_end)
    results = []
    for name, model in zip(_unique_names(models), models, strict=True):
        if progress is not None:
            progress(f"backtesting {name}")
        result = _run_model(name, model, train, cutoff, horizon, actuals)
        if result.error is not None and progress is not None:
            progress(f"{name} skipped: {result.error}")
        results.append(result)
    return BacktestResult(cutoff, horizon, len(customers), actuals, results)
