"""ltvcast: dynamic customer lifetime value forecasting.

The curated public API; heavy dependencies (torch, LightGBM, FastAPI) load only when a model
or the service that needs them is used.
"""

from __future__ import annotations

from ltvcast._version import __version__
from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.schemas import CustomerData
from ltvcast.data.store import Store
from ltvcast.data.validate import load_customer_data
from ltvcast.evaluation.backtest import BacktestResult, backtest
from ltvcast.evaluation.metrics import evaluate
from ltvcast.exceptions import (
    ArtifactError,
    ConfigError,
    InsufficientDataError,
    LTVError,
    NotFittedError,
    SchemaError,
)
from ltvcast.models.base import Forecaster
from ltvcast.pipeline import ScoringModel, load_scoring_model, train_model
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon

__all__ = [
    "ArtifactError",
    "BacktestResult",
    "CleaningOptions",
    "CleaningReport",
    "ColumnMap",
    "ConfigError",
    "CustomerData",
    "Forecaster",
    "Horizon",
    "InsufficientDataError",
    "LTVError",
    "NotFittedError",
    "SchemaError",
    "ScoringModel",
    "Store",
    "__version__",
    "backtest",
    "evaluate",
    "load_customer_data",
    "load_model",
    "load_scoring_model",
    "parse_as_of",
    "parse_horizon",
    "save_model",
    "train_model",
]
