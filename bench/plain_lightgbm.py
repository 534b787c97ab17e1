"""The ``plain_lgbm`` reference row: a plain LightGBM tweedie regression on RFM features.

What a practitioner would write in an afternoon, with none of ``gbdt``'s machinery: 15
RFM-style features of purchase days (frequency, recency, T, days since the last purchase,
spend mean / sum / max per purchase day, purchase days and spend in the last 30, 90, 180 and
365 days), ONE training window just before the cutoff (features at ``cutoff - H``, labels =
net spend in ``(cutoff - H, cutoff]`` clipped at zero), LightGBM's default tree parameters
with the tweedie objective, and the prediction = value over ``H`` from features at the cutoff.
Its ``p_active`` and ``predicted_purchases`` are the tweedie's own: P(value > 0) and the
Poisson rate of its compound Poisson-gamma, with a Pearson estimate of the dispersion.
Its features are written here, independently of :mod:`ltvcast.features`, so that it stays a
reference as ``gbdt``'s features change.

It is a :class:`~ltvcast.models.base.Forecaster` so that :func:`ltvcast.evaluation.backtest`
scores it exactly as it scores ``gbdt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import pandas as pd

from ltvcast.data.purchases import horizon_labels, purchase_days
from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.exceptions import InsufficientDataError
from ltvcast.models.base import Forecaster
from ltvcast.timeframe import Horizon

WINDOWS = (30, 90, 180, 365)
_POWER = 1.5  # LightGBM's default tweedie_variance_power


def rfm_table(data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
    """The 15 RFM-style features of every customer seen up to ``as_of`` (days, purchase days)."""
    past = data.until(as_of)
    days = purchase_days(past.transactions)
    days = days.loc[days["is_purchase"]]
    age = (as_of.normalize() - days["day"]).dt.days
    days = days.assign(age=age)
    by = days.groupby(CUSTOMER_ID, sort=False)
    out = pd.DataFrame(
        {
            "frequency": by.size() - 1.0,
            "recency": by["age"].max() - by["age"].min(),
            "T": by["age"].max(),
            "days_since_last": by["age"].min(),
            "spend_mean": by["amount"].mean(),
            "spend_sum": by["amount"].sum(),
            "spend_max": by["amount"].max(),
        }
    )
    for w in WINDOWS:
        recent = days.loc[days["age"] < w].groupby(CUSTOMER_ID, sort=False)
        out[f"purchases_{w}d"] = recent.size()
        out[f"spend_{w}d"] = recent["amount"].sum()
    out = out.reindex(past.customers())
    counts = list(out.columns[7:])  # window counts and spend
    out[counts] = out[counts].fillna(0.0)
    return out.astype(np.float64)


class PlainLightGBM(Forecaster):
    """Plain LightGBM tweedie regression of horizon value on :func:`rfm_table` (one window).

    Parameters
    ----------
    num_boost_round
        Boosting rounds (LightGBM's default, 100; no early stopping).
    random_state
        LightGBM seed.
    """

    name: ClassVar[str] = "plain_lgbm"

    def __init__(self, num_boost_round: int = 100, random_state: int = 0) -> None:
        self.num_boost_round = num_boost_round
        self.random_state = random_state

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        origin = horizon.start(as_of)
        x = rfm_table(data, origin)
        if x.empty:
            raise InsufficientDataError(
                f"plain_lgbm: no customer seen up to {origin:%Y-%m-%d} (cutoff - {horizon})"
            )
        y = horizon_labels(data.transactions, x.index, origin, as_of)["value"].clip(lower=0.0)
        params = {
            "objective": "tweedie",
            "deterministic": True,
            "num_threads": 1,
            "seed": self.random_state,
            "verbosity": -1,
        }
        self.booster_ = lgb.train(params, lgb.Dataset(x, label=y), self.num_boost_round)
        mu = self.booster_.predict(x)
        self.dispersion_ = float(np.mean((y - mu) ** 2 / mu**_POWER))  # Pearson estimate

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        x = rfm_table(data, as_of)
        value = self.booster_.predict(x)
        # the tweedie's P(value > 0) = 1 - exp(-lambda), lambda = mu^(2-p) / (phi (2-p))
        rate = value ** (2.0 - _POWER) / (self.dispersion_ * (2.0 - _POWER))
        p_active = -np.expm1(-rate)
        return pd.DataFrame(
            {
                CUSTOMER_ID: x.index,
                "predicted_value": value,
                "predicted_purchases": rate,
                "p_active": p_active,
            }
        )

    def save_state(self, directory: Path) -> dict[str, Any]:
        """Write the booster as LightGBM text."""
        self.booster_.save_model(str(Path(directory) / "plain_lgbm.txt"))
        return {"booster": "plain_lgbm.txt", "dispersion": self.dispersion_}

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Read the booster written by :meth:`save_state`."""
        path = self.state_file(directory, state["booster"])
        self.booster_ = lgb.Booster(model_file=str(path))
        self.dispersion_ = float(state["dispersion"])
