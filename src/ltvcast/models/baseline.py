"""Naive baselines every real model must beat.

- :class:`SpendRateForecaster` (``baseline``): a customer keeps spending and buying at their
  past rate per day.
- :class:`TenureMeanForecaster` (``tenure_mean``): a customer gets the average outcome of
  customers of the same tenure, measured at earlier backtest origins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.rfm import rfm_summary
from ltvcast.features.windows import backtest_origins
from ltvcast.models.base import Forecaster
from ltvcast.timeframe import Horizon

_OUTPUTS = ["predicted_value", "predicted_purchases", "p_active"]


def spend_rate_forecast(
    data: CustomerData, as_of: pd.Timestamp, horizon: Horizon, min_exposure_days: float
) -> pd.DataFrame:
    """Past spend and purchase-day rates per day of exposure, times the horizon in days.

    Exposure runs from the first purchase day through the day of ``as_of`` (a purchase
    today is one day) and is at least ``min_exposure_days``, so a brand-new buyer is not
    extrapolated from a single day. Negative net spend predicts 0. ``p_active`` is
    ``1 - exp(-purchases)`` (Poisson purchases). Customers without a purchase get 0.

    Returns
    -------
    DataFrame
        Indexed by ``data.customers()``, columns ``predicted_value``,
        ``predicted_purchases``, ``p_active``.
    """
    rfm = rfm_summary(data.transactions, as_of, time_unit_days=1.0)
    exposure = np.maximum(rfm["T"] + 1.0, min_exposure_days)
    purchases = (rfm["frequency"] + 1.0) / exposure * horizon.days
    out = pd.DataFrame(
        {
            "predicted_value": rfm["total_value"].clip(lower=0.0) / exposure * horizon.days,
            "predicted_purchases": purchases,
            "p_active": -np.expm1(-purchases),
        }
    )
    return out.reindex(data.customers()).fillna(0.0)


class SpendRateForecaster(Forecaster):
    """Past spend rate per day times the horizon (``--model baseline``).

    Parameters
    ----------
    min_exposure_days
        Floor of the exposure (days since the first purchase) that divides past spend;
        ``None`` uses the horizon length, i.e. a customer younger than one horizon is
        assumed to repeat their spend so far once per horizon.
    """

    name = "baseline"

    def __init__(self, min_exposure_days: float | None = None) -> None:
        self.min_exposure_days = min_exposure_days

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        if self.min_exposure_days is not None and not self.min_exposure_days >= 1.0:
            raise ConfigError(
                f"min_exposure_days must be >= 1 day or None; got {self.min_exposure_days!r}"
            )

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        floor = self.horizon_.days if self.min_exposure_days is None else self.min_exposure_days
        return spend_rate_forecast(data, as_of, self.horizon_, floor)

    def save_state(self, directory: Path) -> dict[str, Any]:
        """Nothing is learned: the hyperparameters in the manifest suffice."""
        return {}

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Nothing to restore."""


class TenureMeanForecaster(Forecaster):
    """Mean outcome of customers in the same tenure bucket (``--model tenure_mean``).

    At each backtest origin (:func:`ltvcast.features.windows.backtest_origins`) every
    customer seen so far is put in a bucket (tenure = days since the first purchase, cut at
    ``bucket_edges_days``; customers without a purchase yet form their own bucket) and their
    outcome in ``(origin, origin + horizon]`` is recorded; the model predicts a bucket's mean
    spend, purchase days and share of buyers. Buckets unseen in training borrow from the
    nearest younger (else older) seen bucket. When the history allows no origin, predictions
    fall back to :func:`spend_rate_forecast` and ``fallback_reason_`` says why.

    Parameters
    ----------
    bucket_edges_days
        Increasing tenure edges in days.
    max_origins
        Most backtest origins used for training.

    Attributes
    ----------
    table_ : DataFrame or None
        Per bucket (index; -1 = no purchase yet) ``predicted_value``,
        ``predicted_purchases``, ``p_active`` and ``n`` (training rows).
    fallback_reason_ : str or None
    origins_ : list of Timestamp
    """

    name = "tenure_mean"

    def __init__(
        self,
        bucket_edges_days: tuple[float, ...] = (30.0, 90.0, 180.0, 365.0, 730.0),
        max_origins: int = 4,
    ) -> None:
        self.bucket_edges_days = bucket_edges_days
        self.max_origins = max_origins

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        edges = np.asarray(self.bucket_edges_days, dtype=np.float64)
        if edges.ndim != 1 or np.any(np.diff(edges) <= 0) or np.any(edges <= 0):
            raise ConfigError(
                f"bucket_edges_days must be positive and increasing; got {self.bucket_edges_days}"
            )
        if self.max_origins < 1:
            raise ConfigError(f"max_origins must be >= 1; got {self.max_origins!r}")
        first = data.first_timestamp()
        self.origins_ = backtest_origins(first, as_of, horizon, max_origins=self.max_origins)
        self.table_: pd.DataFrame | None = None
        self.fallback_reason_: str | None = None
        if not self.origins_:
            self.fallback_reason_ = (
                f"history {first} .. {as_of} is shorter than one horizon ({horizon.describe()})"
                " plus 28 days, so no backtest origin fits; predicting with the spend rate"
            )
            return
        rows = []
        for origin in self.origins_:  # a handful of origins, each fully vectorised
            past = data.until(origin)
            customers = past.customers()
            labels = horizon_labels(data.transactions, customers, origin, horizon.end(origin))
            rows.append(
                pd.DataFrame(
                    {
                        "bucket": self._buckets(past, origin, edges),
                        "predicted_value": labels["value"].to_numpy(),
                        "predicted_purchases": labels["purchases"].to_numpy(),
                        "p_active": (labels["purchases"].to_numpy() > 0).astype(np.float64),
                    }
                )
            )
        grouped = pd.concat(rows, ignore_index=True).groupby("bucket")
        table = grouped[_OUTPUTS].mean().assign(n=grouped.size())
        if not np.any(table.index >= 0):
            self.fallback_reason_ = (
                f"no customer had a purchase at any backtest origin ({len(self.origins_)}); "
                "predicting with the spend rate"
            )
            return
        self.table_ = self._complete(table, len(edges))

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        if self.table_ is None:
            return spend_rate_forecast(data, as_of, self.horizon_, self.horizon_.days)
        edges = np.asarray(self.bucket_edges_days, dtype=np.float64)
        buckets = self._buckets(data, as_of, edges)
        out = self.table_.loc[buckets, _OUTPUTS]
        out.index = data.customers()
        return out

    @staticmethod
    def _buckets(
        data: CustomerData, as_of: pd.Timestamp, edges: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int64]:
        """Tenure bucket of each of ``data.customers()`` (-1: no purchase yet)."""
        tenure = rfm_summary(data.transactions, as_of, time_unit_days=1.0)["T"]
        tenure = tenure.reindex(data.customers())
        bucket = np.searchsorted(edges, tenure.to_numpy(), side="right")
        return np.where(tenure.isna().to_numpy(), -1, bucket).astype(np.int64)

    @staticmethod
    def _complete(table: pd.DataFrame, n_edges: int) -> pd.DataFrame:
        """All buckets -1..n_edges; unseen tenure buckets borrow from neighbours."""
        tenure = table.reindex(range(n_edges + 1))
        tenure[_OUTPUTS] = tenure[_OUTPUTS].ffill().bfill()
        unseen = table.reindex([-1]).fillna(0.0)
        full = pd.concat([unseen, tenure])
        full["n"] = full["n"].fillna(0).astype(np.int64)
        full.index.name = "bucket"
        return full

    def save_state(self, directory: Path) -> dict[str, Any]:
        """The bucket table and fallback reason, as JSON in the manifest."""
        table = None
        if self.table_ is not None:
            table = {"bucket": self.table_.index.tolist()} | {
                col: self.table_[col].tolist() for col in [*_OUTPUTS, "n"]
            }
        return {
            "table": table,
            "fallback_reason": self.fallback_reason_,
            "origins": [o.isoformat() for o in self.origins_],
        }

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Restore the bucket table written by :meth:`save_state`."""
        table = state["table"]
        self.table_ = None if table is None else pd.DataFrame(table).set_index("bucket")
        self.fallback_reason_ = state["fallback_reason"]
        self.origins_ = [pd.Timestamp(o) for o in state["origins"]]
