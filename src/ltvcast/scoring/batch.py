"""Batch training and scoring: pick a model by name, fit with a fallback, write predictions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.features.windows import Horizon
from ltvcast.models import get_forecaster_class
from ltvcast.models.base import Forecaster

#: The model used when the requested one cannot train on a history this short.
FALLBACK_MODEL = "btyd"


def forecaster_class(name: str) -> type[Forecaster]:
    """The class behind a CLI model name, ``auto`` included."""
    if name == "auto":
        from ltvcast.evaluation.selection import AutoForecaster

        return AutoForecaster
    return get_forecaster_class(name)


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
        return forecaster_class(name)().fit(data, as_of, horizon)
    except InsufficientDataError as err:
        if name == FALLBACK_MODEL:
            raise
        if on_fallback is not None:
            on_fallback(f"{name} cannot train here ({err}); using {FALLBACK_MODEL} instead")
        return forecaster_class(FALLBACK_MODEL)().fit(data, as_of, horizon)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV or Parquet, chosen by the file suffix."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".parquet":
        frame.to_parquet(target, index=False)
    elif target.suffix in (".csv", ".gz"):
        frame.to_csv(target, index=False, float_format="%.6g")
    else:
        raise ConfigError(f"{target}: output must end in .csv, .csv.gz or .parquet")
    return target
