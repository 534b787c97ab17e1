"""Fitting models: by name with the short-history fallback, in a backtest, and as a whole
scoring model (forecaster, segment cuts, training summary)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ltvcast.data.clean import CleaningReport
from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import BacktestResult, ModelResult, backtest
from ltvcast.exceptions import InsufficientDataError
from ltvcast.models.base import Forecaster
from ltvcast.models.registry import create, forecaster_class
from ltvcast.pipeline.model import ScoringModel
from ltvcast.pipeline.records import TrainingSummary
from ltvcast.strategy.segments import SegmentRules
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon

#: The model used when the requested one cannot train on a history this short.
FALLBACK_MODEL = "btyd"


def fit_forecaster(
    name: str,
    data: CustomerData,
    as_of: pd.Timestamp,
    horizon: Horizon,
    *,
    on_fallback: Callable[[str], None] | None = None,
    random_state: int | None = None,
    model_params: Mapping[str, Any] | None = None,
) -> Forecaster:
    """Fit the model called ``name`` (with hyperparameters ``model_params``, e.g.
    ``{"covariates": ("age", "channel")}``); fall back to BTYD when the history is too short.

    ``on_fallback`` receives the reason (the model's own message) when the fallback is taken;
    the fallback keeps the ``model_params`` it has.
    """
    params = dict(model_params or {})
    accepted = inspect.signature(forecaster_class(FALLBACK_MODEL)).parameters
    kept = {k: v for k, v in params.items() if k in accepted}

    def fit(model: str) -> Forecaster:
        if model == name:
            return create(model, random_state=random_state, **params).fit(data, as_of, horizon)
        return create(model, **kept).fit(data, as_of, horizon)

    label = FALLBACK_MODEL + "".join(f", {k}={v!r}" for k, v in kept.items())
    return with_fallback(name, fit, on_fallback, label)


def with_fallback(
    name: str,
    fit: Callable[[str], Forecaster],
    on_fallback: Callable[[str], None] | None = None,
    label: str = FALLBACK_MODEL,
) -> Forecaster:
    """``fit(name)``, or ``fit(FALLBACK_MODEL)`` when that raises
    :class:`~ltvcast.exceptions.InsufficientDataError` (the rule of :func:`fit_forecaster`
    for any way of fitting, such as :mod:`ltvcast.engine`'s partitioned one); ``label``
    names the fallback in the note."""
    try:
        return fit(name)
    except InsufficientDataError as err:
        if name == FALLBACK_MODEL:
            raise
        if on_fallback is not None:
            on_fallback(f"{name} cannot train here ({err}); using {label} instead")
        return fit(FALLBACK_MODEL)


def backtest_models(
    data: CustomerData,
    cutoff: pd.Timestamp,
    horizon: Horizon,
    models: Sequence[str | Forecaster],
    *,
    end: pd.Timestamp | None = None,
    model_params: Mapping[str, Any] | None = None,
) -> BacktestResult:
    """:func:`~ltvcast.evaluation.backtest.backtest` of models given by name or instance;
    ``model_params`` are given to every model named.

    A name whose model cannot be imported (a missing optional dependency) is reported as a
    skipped model, in its place, like a model that cannot train on the history.
    """
    built: list[Forecaster] = []
    failed: dict[int, ModelResult] = {}
    for position, model in enumerate(models):
        if isinstance(model, Forecaster):
            built.append(model)
            continue
        try:
            built.append(create(model, **(model_params or {})))
        except ImportError as err:
            failed[position] = ModelResult(
                model, {}, np.nan, np.nan, None, f"cannot import {model!r} ({err})"
            )
    result = backtest(data, cutoff, horizon, built, end=end)
    ran = iter(result.results)
    result.results = [failed[i] if i in failed else next(ran) for i in range(len(models))]
    return result


class Forecasted(NamedTuple):
    """What :func:`forecast` returns: the trained model and its predictions."""

    scoring: ScoringModel
    predictions: pd.DataFrame


def train_model(
    data: CustomerData,
    *,
    horizon: str | Horizon,
    model: str = "auto",
    as_of: str | pd.Timestamp | None = None,
    cleaning: CleaningReport | None = None,
    random_state: int | None = None,
    on_note: Callable[[str], None] | None = None,
    model_params: Mapping[str, Any] | None = None,
) -> ScoringModel:
    """Fit ``model`` on ``data`` up to ``as_of`` (default: its last timestamp), with the
    BTYD fallback for histories too short for it, and the segment cuts on its forecasts.

    ``model_params`` are the model's hyperparameters (:func:`fit_forecaster`), e.g.
    ``{"covariates": ("age", "channel")}`` for profile covariates of ``btyd`` or ``pnbd``.

    ``on_note`` receives what a user should know as it happens (a fallback taken).
    """
    return _train(data, horizon, model, as_of, cleaning, random_state, on_note, model_params)[0]


def forecast(
    data: CustomerData,
    *,
    horizon: str | Horizon,
    model: str = "auto",
    as_of: str | pd.Timestamp | None = None,
    cleaning: CleaningReport | None = None,
    random_state: int | None = None,
    on_note: Callable[[str], None] | None = None,
    model_params: Mapping[str, Any] | None = None,
    horizons: str | Sequence[str | Horizon] | None = None,
    discount_rate: float | None = None,
    intervals: bool = False,
) -> Forecasted:
    """Train as :func:`train_model` does and score everyone at ``as_of`` at once, with the
    extra columns of :meth:`ScoringModel.predict` (``horizons``, ``discount_rate``,
    ``intervals``); the forecasts the segment cuts were fitted on are the predictions, not
    computed twice."""
    scoring, base = _train(
        data, horizon, model, as_of, cleaning, random_state, on_note, model_params
    )
    predictions = scoring.predict(
        data,
        parse_as_of(as_of, data.last_timestamp()),
        horizons=horizons,
        discount_rate=discount_rate,
        intervals=intervals,
        base=base,
    )
    return Forecasted(scoring, predictions)


def _train(
    data: CustomerData,
    horizon: str | Horizon,
    model: str,
    as_of: str | pd.Timestamp | None,
    cleaning: CleaningReport | None,
    random_state: int | None,
    on_note: Callable[[str], None] | None,
    model_params: Mapping[str, Any] | None,
) -> tuple[ScoringModel, pd.DataFrame]:
    """The scoring model of :func:`train_model` and the forecasts its cuts were fitted on."""
    span = parse_horizon(horizon)
    when = parse_as_of(as_of, data.last_timestamp())
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if on_note is not None:
            on_note(text)

    forecaster = fit_forecaster(
        model,
        data,
        when,
        span,
        on_fallback=note,
        random_state=random_state,
        model_params=model_params,
    )
    predictions = forecaster.predict(data, when)
    if not len(predictions):
        raise InsufficientDataError(
            f"no customer has a transaction or event up to {when:%Y-%m-%d %H:%M}; "
            "nothing to fit segment cuts on"
        )
    rules = SegmentRules().fit(predictions)
    summary = TrainingSummary.of(data, when, cleaning, forecaster.selection_reason, notes)
    return ScoringModel(forecaster, rules, summary), predictions
