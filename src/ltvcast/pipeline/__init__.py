"""The application layer: every composition the CLI, the service and the report need, once.

A notebook user drives ltvcast from here::

    from ltvcast import load_customer_data, load_scoring_model, train_model

    data, cleaning = load_customer_data("transactions.csv", "events.csv")
    model = train_model(data, horizon="90d", cleaning=cleaning)
    scores = model.score(data)                  # forecasts, segment, tenure and past spend
    drivers = model.explain(data, ["C042"])     # each customer's top drivers
    model.save("model/")
    same = load_scoring_model("model/")

:func:`train_model` fits a model (with the fallback for short histories) and the segment cuts
(:func:`forecast` also scores everyone at once, as ``ltvcast forecast`` does),
and remembers the training window, the data's event types and profile columns, the cleaning
report and, for ``auto``, why it chose its model. :class:`ScoringModel` owns the whole model
artifact: :mod:`ltvcast.scoring.artifacts` stores the forecaster, this module the manifest
keys around it (:data:`MANIFEST_KEYS`).
"""

from __future__ import annotations

from ltvcast.pipeline.model import (
    MIN_CUSTOMERS_FOR_CUTS,
    UNSEGMENTED,
    ScoringModel,
    label_segments,
    load_scoring_model,
)
from ltvcast.pipeline.records import (
    FORECAST_COLUMNS,
    MANIFEST_KEYS,
    CustomerForecast,
    TrainingSummary,
)
from ltvcast.pipeline.training import (
    FALLBACK_MODEL,
    Forecasted,
    backtest_models,
    fit_forecaster,
    forecast,
    train_model,
    with_fallback,
)

__all__ = [
    "FALLBACK_MODEL",
    "FORECAST_COLUMNS",
    "MANIFEST_KEYS",
    "MIN_CUSTOMERS_FOR_CUTS",
    "UNSEGMENTED",
    "CustomerForecast",
    "Forecasted",
    "ScoringModel",
    "TrainingSummary",
    "backtest_models",
    "fit_forecaster",
    "forecast",
    "label_segments",
    "load_scoring_model",
    "train_model",
    "with_fallback",
]
