"""Evaluation: forecast metrics (pure numpy), backtests and the ``auto`` model selector."""

from __future__ import annotations

from ltvcast.evaluation.backtest import (
    BacktestResult,
    ModelResult,
    backtest,
    data_end,
    default_cutoff,
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
from ltvcast.evaluation.selection import AutoForecaster

__all__ = [
    "METRICS",
    "AutoForecaster",
    "BacktestResult",
    "ModelResult",
    "auc",
    "backtest",
    "data_end",
    "decile_mape",
    "decile_table",
    "default_cutoff",
    "evaluate",
    "gain_curve",
    "mae",
    "normalized_gini",
    "rmse",
    "spearman",
    "top_k_classification",
    "top_share_capture",
    "total_value_error",
]
