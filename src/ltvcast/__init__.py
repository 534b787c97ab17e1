"""ltvcast: dynamic customer lifetime value forecasting.

The curated public API. Names load on first access, so ``import ltvcast`` (and every CLI
start) costs almost nothing; pandas, torch, LightGBM and FastAPI load when a function that
needs them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ltvcast._lazy import load
from ltvcast._version import __version__

if TYPE_CHECKING:
    from ltvcast.data.clean import CleaningOptions, CleaningReport
    from ltvcast.data.io import ColumnMap
    from ltvcast.data.schemas import CustomerData
    from ltvcast.data.store import Store
    from ltvcast.data.validate import load_customer_data
    from ltvcast.evaluation.backtest import BacktestResult, backtest
    from ltvcast.evaluation.diagnostics import (
        conditional_expectations,
        expected_purchases_matrix,
        p_alive_matrix,
        tracking_table,
    )
    from ltvcast.evaluation.metrics import evaluate
    from ltvcast.exceptions import (
        ArtifactError,
        ConfigError,
        InsufficientDataError,
        LTVError,
        NotFittedError,
        SchemaError,
        StoreError,
    )
    from ltvcast.models.base import Forecaster
    from ltvcast.pipeline import ScoringModel, forecast, load_scoring_model, train_model
    from ltvcast.pipeline.recommend import recommend
    from ltvcast.report.diagnostics import (
        conditional_expectations_figure,
        frequency_recency_figure,
        tracking_figure,
    )
    from ltvcast.report.figures import decile_figure, gain_figure
    from ltvcast.scoring.artifacts import load_model, save_model
    from ltvcast.strategy.items import ItemRecommender
    from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon, parse_horizons

#: Public name -> defining module, imported on first attribute access.
_PUBLIC = {
    "ArtifactError": "ltvcast.exceptions",
    "BacktestResult": "ltvcast.evaluation.backtest",
    "CleaningOptions": "ltvcast.data.clean",
    "CleaningReport": "ltvcast.data.clean",
    "ColumnMap": "ltvcast.data.io",
    "ConfigError": "ltvcast.exceptions",
    "CustomerData": "ltvcast.data.schemas",
    "Forecaster": "ltvcast.models.base",
    "Horizon": "ltvcast.timeframe",
    "InsufficientDataError": "ltvcast.exceptions",
    "ItemRecommender": "ltvcast.strategy.items",
    "LTVError": "ltvcast.exceptions",
    "NotFittedError": "ltvcast.exceptions",
    "SchemaError": "ltvcast.exceptions",
    "ScoringModel": "ltvcast.pipeline",
    "Store": "ltvcast.data.store",
    "StoreError": "ltvcast.exceptions",
    "backtest": "ltvcast.evaluation.backtest",
    "conditional_expectations": "ltvcast.evaluation.diagnostics",
    "conditional_expectations_figure": "ltvcast.report.diagnostics",
    "decile_figure": "ltvcast.report.figures",
    "evaluate": "ltvcast.evaluation.metrics",
    "expected_purchases_matrix": "ltvcast.evaluation.diagnostics",
    "forecast": "ltvcast.pipeline",
    "frequency_recency_figure": "ltvcast.report.diagnostics",
    "gain_figure": "ltvcast.report.figures",
    "load_customer_data": "ltvcast.data.validate",
    "load_model": "ltvcast.scoring.artifacts",
    "load_scoring_model": "ltvcast.pipeline",
    "p_alive_matrix": "ltvcast.evaluation.diagnostics",
    "parse_as_of": "ltvcast.timeframe",
    "parse_horizon": "ltvcast.timeframe",
    "parse_horizons": "ltvcast.timeframe",
    "recommend": "ltvcast.pipeline.recommend",
    "save_model": "ltvcast.scoring.artifacts",
    "tracking_figure": "ltvcast.report.diagnostics",
    "tracking_table": "ltvcast.evaluation.diagnostics",
    "train_model": "ltvcast.pipeline",
}

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
    "ItemRecommender",
    "LTVError",
    "NotFittedError",
    "SchemaError",
    "ScoringModel",
    "Store",
    "StoreError",
    "__version__",
    "backtest",
    "conditional_expectations",
    "conditional_expectations_figure",
    "decile_figure",
    "evaluate",
    "expected_purchases_matrix",
    "forecast",
    "frequency_recency_figure",
    "gain_figure",
    "load_customer_data",
    "load_model",
    "load_scoring_model",
    "p_alive_matrix",
    "parse_as_of",
    "parse_horizon",
    "parse_horizons",
    "recommend",
    "save_model",
    "tracking_figure",
    "tracking_table",
    "train_model",
]


def __getattr__(name: str) -> Any:
    return load(globals(), _PUBLIC, name)


def __dir__() -> list[str]:
    return __all__
