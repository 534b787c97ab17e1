"""Naive baselines: hand-computed spend rates, tenure means, fallback, leakage, artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.models.baseline import SpendRateForecaster, TenureMeanForecaster
from ltvcast.timeframe import parse_as_of, parse_horizon

MARCH_1 = parse_as_of("2024-03-01", None)
JUNE_30 = parse_as_of("2024-06-30", None)


@pytest.fixture()
def regular_store() -> CustomerData:
    """Ten customers who each spend 10 every 10 days from day 10 k on; one browser."""
    start = pd.Timestamp("2024-01-01")
    rows = [
        (f"c{k}", start + pd.Timedelta(days=day, hours=12), 10.0)
        for k in range(10)
        for day in range(10 * k, 182, 10)
    ]
    tx = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    events = pd.DataFrame(
        {"customer_id": ["e1"], "timestamp": [start + pd.Timedelta(days=1)], "event_type": ["view"]}
    )
    return CustomerData(tx, events=events)


def test_spend_rate_hand_computed(tiny_transactions: pd.DataFrame) -> None:
    data = CustomerData(tiny_transactions)
    out = SpendRateForecaster().fit(data, MARCH_1, parse_horizon("30d")).predict(data, MARCH_1)
    out = out.set_index("customer_id")
    # a: 60 spent over 61 days (Jan 1 .. Mar 1); b: 20 over 52; c: 10 days old -> floor 30.
    np.testing.assert_allclose(out["predicted_value"], [60 / 61 * 30, 20 / 52 * 30, 100.0])
    purchases = np.array([3 / 61 * 30, 2 / 52 * 30, 1.0])
    np.testing.assert_allclose(out["predicted_purchases"], purchases)
    np.testing.assert_allclose(out["p_active"], 1 - np.exp(-purchases))

    floor_one = SpendRateForecaster(min_exposure_days=1.0).fit(data, MARCH_1, parse_horizon("30d"))
    assert floor_one.predict(data, MARCH_1)["predicted_value"].iloc[2] == pytest.approx(
        100 / 11 * 30
    )


def test_spend_rate_returns_and_browsers() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "r"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-02"]),
            "amount": [10.0, -30.0, -5.0],
        }
    )
    events = pd.DataFrame(
        {"customer_id": ["v"], "timestamp": pd.to_datetime(["2024-01-03"]), "event_type": ["view"]}
    )
    data = CustomerData(tx, events=events)
    out = SpendRateForecaster().fit(data, MARCH_1, parse_horizon("30d")).predict(data, MARCH_1)
    out = out.set_index("customer_id")
    assert out.index.tolist() == ["a", "r", "v"]
    assert out.loc["a", "predicted_value"] == 0.0  # net negative spend predicts nothing
    assert out.loc["a", "predicted_purchases"] > 0
    assert (out.loc[["r", "v"]].to_numpy() == 0.0).all()
    with pytest.raises(ConfigError, match="min_exposure_days"):
        SpendRateForecaster(min_exposure_days=0.0).fit(data, MARCH_1, parse_horizon("30d"))


def test_tenure_mean_learns_bucket_means(regular_store: CustomerData) -> None:
    model = TenureMeanForecaster().fit(regular_store, JUNE_30, parse_horizon("30d"))
    assert model.fallback_reason_ is None and len(model.origins_) == 4
    assert model.table_ is not None
    assert model.table_.loc[-1, "n"] == 4  # the browser, once per origin
    out = model.predict(regular_store, JUNE_30).set_index("customer_id")
    buyers = out.drop(index="e1")
    # Every buyer spends 10 every 10 days: 3 purchases and 30 in any 30-day window, whatever
    # the tenure bucket (the oldest bucket at JUNE_30 was never seen and borrows its neighbour).
    np.testing.assert_allclose(buyers["predicted_value"], 30.0)
    np.testing.assert_allclose(buyers["predicted_purchases"], 3.0)
    np.testing.assert_allclose(buyers["p_active"], 1.0)
    assert (out.loc["e1"] == 0.0).all()


def test_tenure_mean_falls_back_to_spend_rate(tiny_transactions: pd.DataFrame) -> None:
    data = CustomerData(tiny_transactions)
    horizon = parse_horizon("90d")
    model = TenureMeanForecaster().fit(data, MARCH_1, horizon)
    assert model.table_ is None
    assert (
        model.fallback_reason_ is not None and "shorter than one horizon" in model.fallback_reason_
    )
    expected = SpendRateForecaster().fit(data, MARCH_1, horizon).predict(data, MARCH_1)
    pd.testing.assert_frame_equal(model.predict(data, MARCH_1), expected)


def test_tenure_mean_bad_params(regular_store: CustomerData) -> None:
    with pytest.raises(ConfigError, match="bucket_edges_days"):
        TenureMeanForecaster(bucket_edges_days=(90.0, 30.0)).fit(
            regular_store, JUNE_30, parse_horizon("30d")
        )
