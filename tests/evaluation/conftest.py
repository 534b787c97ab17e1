"""Toy forecasters and a small synthetic store for the evaluation tests.

The toy models are deliberately simple so that which one is better is obvious: ``rate``
extrapolates each customer's past spend rate (right on a store of stable spend rates),
``inverse`` ranks customers backwards, ``flat`` predicts the population mean for everyone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CUSTOMER_ID, TIMESTAMP, CustomerData
from ltvcast.exceptions import InsufficientDataError
from ltvcast.models import registry
from ltvcast.models.base import Forecaster
from ltvcast.timeframe import Horizon

START = pd.Timestamp("2022-01-01")


def make_store(n_customers: int = 150, days: int = 730, seed: int = 0) -> CustomerData:
    """Customers with stable, heterogeneous purchase rates and spend, joining early on."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.8, 1 / 40, n_customers)  # purchases per day
    spend = rng.gamma(4.0, 10.0, n_customers)
    join = rng.integers(0, 30, n_customers)
    counts = rng.poisson(rate * (days - join)) + 1
    owner = np.repeat(np.arange(n_customers), counts)
    offset = np.where(np.r_[True, owner[1:] != owner[:-1]], 0.0, rng.uniform(0, 1, owner.size)) * (
        days - join[owner]
    )
    times = START + pd.to_timedelta(join[owner] + offset, unit="D")
    transactions = pd.DataFrame(
        {
            CUSTOMER_ID: pd.Index(owner).map(lambda i: f"c{i:04d}"),
            TIMESTAMP: times.floor("h"),
            "amount": np.round(spend[owner] * rng.uniform(0.5, 1.5, owner.size), 2),
        }
    ).sort_values(TIMESTAMP, ignore_index=True)
    return CustomerData(transactions)


class RateModel(Forecaster):
    """Past spend per day of tenure times the horizon's days; optional quantiles."""

    name = "rate"

    def __init__(self, scale: float = 1.0, min_days: int = 0) -> None:
        self.scale = scale
        self.min_days = min_days

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        history = (as_of - data.first_timestamp()).days
        if history < self.min_days:
            raise InsufficientDataError(f"{self.name} needs {self.min_days} days; got {history}")
        self.days_ = horizon.days
        self.seen_until_ = data.last_timestamp()

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        tx = data.transactions
        grouped = tx.groupby(CUSTOMER_ID)
        tenure = (as_of - grouped[TIMESTAMP].min()).dt.total_seconds() / 86400 + 1
        value = self.scale * grouped["amount"].sum() / tenure * self.days_
        return pd.DataFrame(
            {
                "predicted_value": self._transform(value),
                "predicted_purchases": grouped.size() / tenure * self.days_,
                "p_active": 1 - np.exp(-grouped.size() / tenure * self.days_),
            }
        )

    def _transform(self, value: pd.Series) -> pd.Series:
        return value

    def save_state(self, directory: Path) -> dict[str, Any]:
        (directory / "rate.json").write_text(json.dumps({"days": self.days_}))
        return {"file": "rate.json"}

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        self.days_ = json.loads((directory / state["file"]).read_text())["days"]


class QuantileRateModel(RateModel):
    """``rate`` with value quantiles."""

    name = "rate_q"
    has_quantiles = True

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        out = super()._predict(data, as_of)
        return out.assign(
            value_p10=0.5 * out["predicted_value"], value_p90=2.0 * out["predicted_value"]
        )


class ScaledRateModel(RateModel):
    """``rate`` times three: the same ranking, worse errors."""

    name = "scaled"

    def __init__(self, scale: float = 3.0, min_days: int = 0) -> None:
        super().__init__(scale, min_days)


class HalfRateModel(RateModel):
    """``rate`` times a half: the right ranking, too low."""

    name = "half"

    def __init__(self, scale: float = 0.5, min_days: int = 0) -> None:
        super().__init__(scale, min_days)


class DoubleRateModel(QuantileRateModel):
    """``rate`` times two, with quantiles: the right ranking, too high."""

    name = "double"

    def __init__(self, scale: float = 2.0, min_days: int = 0) -> None:
        super().__init__(scale, min_days)


class ShortLivedDoubleModel(DoubleRateModel):
    """``double`` that refuses histories longer than 650 days: it trains at the toy store's
    inner cutoff (638 days) but not on the full 729."""

    name = "short_lived"

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        history = (as_of - data.first_timestamp()).days
        if history > 650:
            raise InsufficientDataError(f"{self.name} takes at most 650 days; got {history}")
        super()._fit(data, as_of, horizon)


class InverseModel(RateModel):
    """Ranks customers backwards: the more they spent, the less it predicts."""

    name = "inverse"

    def _transform(self, value: pd.Series) -> pd.Series:
        return 1000.0 / (1.0 + value)


class FlatModel(RateModel):
    """Population mean for everyone."""

    name = "flat"

    def _transform(self, value: pd.Series) -> pd.Series:
        return pd.Series(value.mean(), index=value.index)


class SpyModel(RateModel):
    """``rate`` that records the latest time it was shown in fit and in predict."""

    name = "spy"
    seen: ClassVar[list[pd.Timestamp]] = []

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        super()._fit(data, as_of, horizon)
        SpyModel.seen.append(data.last_timestamp())

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        SpyModel.seen.append(data.last_timestamp())
        return super()._predict(data, as_of)


class NeedsHistoryModel(RateModel):
    """``rate`` that refuses histories shorter than ``min_days`` (default 10,000)."""

    name = "needs_history"

    def __init__(self, scale: float = 1.0, min_days: int = 10_000) -> None:
        super().__init__(scale, min_days)


class LateBloomerModel(RateModel):
    """``rate`` that needs 700 days: too many for an inner backtest on the toy store."""

    name = "late_bloomer"

    def __init__(self, scale: float = 1.0, min_days: int = 700) -> None:
        super().__init__(scale, min_days)


TOY_MODELS: dict[str, type[Forecaster]] = {
    "rate": RateModel,
    "rate_q": QuantileRateModel,
    "scaled": ScaledRateModel,
    "half": HalfRateModel,
    "double": DoubleRateModel,
    "short_lived": ShortLivedDoubleModel,
    "inverse": InverseModel,
    "flat": FlatModel,
    "spy": SpyModel,
    "needs_history": NeedsHistoryModel,
    "late_bloomer": LateBloomerModel,
}


@pytest.fixture(scope="session")
def toy() -> SimpleNamespace:
    """The toy model classes by name: ``toy.rate``, ``toy.inverse`` ..."""
    return SimpleNamespace(**TOY_MODELS)


@pytest.fixture(scope="session")
def store() -> CustomerData:
    return make_store()


@pytest.fixture()
def toy_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the toy models resolvable by name wherever ltvcast resolves model names."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    for name, cls in TOY_MODELS.items():
        registry.register(name, cls)
    registry.register("missing", "ltvcast.models.missing:MissingForecaster")
    yield
