"""Batch training and scoring: pick a model by name, fit with a fallback, write predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import BacktestResult, ModelResult, backtest
from ltvcast.exceptions import InsufficientDataError
from ltvcast.models.base import Forecaster
from ltvcast.models.registry import create
from ltvcast.timeframe import Horizon

#: The model used when the requested one cannot train on a history this short.
FALLBACK_MODEL = "btyd"


def fit_forecaster(
    name: str,
    data: CustomerData,
    as_of: pd.Timestamp,
    horizon: Horizon,
    *,
    on_fallback: Callable[[str], None] | None = None,
) -> Forecaster:
    """Fit the model called ``name``; fall back to BTYD when the history is too short.

    ``on_fallback`` receives the reason (the model's own message) when the fallback is taken.
    """
    try:
        return create(name).fit(data, as_of, horizon)
    except InsufficientDataError as err:
        if name == FALLBACK_MODEL:
            raise
        if on_fallback is not None:
            on_fallback(f"{name} cannot train here ({err}); using {FALLBACK_MODEL} instead")
        return create(FALLBACK_MODEL).fit(data, as_of, horizon)


def backtest_models(
    data: CustomerData,
    cutoff: pd.Timestamp,
    horizon: Horizon,
    models: Sequence[str | Forecaster],
    *,
    end: pd.Timestamp | None = None,
) -> BacktestResult:
    """:func:`~ltvcast.evaluation.backtest.backtest` of models given by name or instance.

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
            built.append(create(model))
        except ImportError as err:
            failed[position] = ModelResult(
                model, {}, np.nan, np.nan, None, f"cannot import {model!r} ({err})"
            )
    result = backtest(data, cutoff, horizon, built, end=end)
    ran = iter(result.results)
    result.results = [failed[i] if i in failed else next(ran) for i in range(len(models))]
    return result
