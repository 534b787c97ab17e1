"""Tabular features: hand-computed values, no leakage, profile vocabularies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError, NotFittedError
from ltvcast.features.rfm import rfm_summary
from ltvcast.features.tabular import (
    ProfileEncoder,
    behaviour_features,
    tabular_features,
    transaction_features,
    value_monotonicity,
)
from ltvcast.timeframe import parse_as_of

AS_OF = parse_as_of("2024-02-29", pd.Timestamp("2000-01-01"))  # a Thursday, end of day


@pytest.fixture()
def data() -> CustomerData:
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c", "c", "c"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01 10:00",
                    "2024-01-15 09:00",
                    "2024-02-01 12:00",
                    "2024-01-10 08:00",
                    "2024-03-01 08:00",  # after as_of
                    "2024-02-20 18:00",
                    "2024-02-20 19:00",  # same order as the line before
                    "2024-02-25 00:00",  # a return
                ]
            ),
            "amount": [10.0, 20.0, 30.0, 5.0, 15.0, 60.0, 40.0, -40.0],
            "order_id": ["o1", "o2", "o3", "o4", "o7", "o5", "o5", "o6"],
            "quantity": [1.0, 2.0, 3.0, 1.0, 1.0, 2.0, 1.0, -1.0],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": ["a", "d", "d", "d"],
            "timestamp": pd.to_datetime(
                ["2024-01-30 10:00", "2024-02-28 10:00", "2024-02-29 22:00", "2024-03-05 00:00"]
            ),
            "event_type": ["view", "cart", "weird type!", "view"],
        }
    )
    profiles = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "age": [30.0, np.nan, 50.0], "city": ["x", "y", "x"]}
    )
    return CustomerData(tx, events, profiles)


def test_transaction_features_hand_computed(data: CustomerData) -> None:
    customers = pd.Index(["a", "b", "c", "d"], name="customer_id")
    f = transaction_features(data.transactions, customers, AS_OF)
    expected = {
        # a: buys Jan 1, Jan 15, Feb 1 (orders 10, 20, 30; 1, 2, 3 items)
        "a": {
            "frequency": 2,
            "recency_days": 31,
            "days_since_first_purchase": 59,
            "monetary_value": 25,
            "total_value": 60,
            "purchases_7d": 0,
            "spend_7d": 0,
            "purchases_30d": 1,  # Feb 1 is 28 days before Feb 29
            "spend_30d": 30,
            "purchases_90d": 3,
            "spend_90d": 60,
            "days_since_last_purchase": 28,
            "ipi_mean": 15.5,  # gaps 14 and 17 days
            "ipi_std": 1.5,
            "ipi_last": 17,
            "orders": 3,
            "order_value_mean": 20,
            "order_value_max": 30,
            "items_per_order": 2,
            "return_share": 0,
        },
        # b: one purchase Jan 10; the Mar 1 line is after as_of
        "b": {
            "frequency": 0,
            "days_since_first_purchase": 50,
            "total_value": 5,
            "purchases_365d": 1,
            "spend_365d": 5,
            "days_since_last_purchase": 50,
            "orders": 1,
            "order_value_mean": 5,
        },
        # c: one order of two lines (100) on Feb 20, a return of 40 on Feb 25
        "c": {
            "purchases_7d": 0,
            "spend_7d": -40,
            "purchases_30d": 1,
            "spend_30d": 60,
            "days_since_last_purchase": 9,
            "orders": 1,
            "order_value_mean": 100,
            "items_per_order": 3,
            "return_share": 40 / 140,
            "total_value": 60,
        },
        # d: events only
        "d": {"frequency": 0, "total_value": 0, "purchases_365d": 0, "spend_365d": 0, "orders": 0},
    }
    for customer, values in expected.items():
        for column, value in values.items():
            assert f.loc[customer, column] == pytest.approx(value), (customer, column)
    for column in (
        "days_since_last_purchase",
        "days_since_first_purchase",
        "order_value_mean",
        "ipi_mean",
    ):
        assert np.isnan(f.loc["d", column]), column
    assert np.isnan(f.loc["b", "ipi_mean"]) and np.isnan(f.loc["c", "ipi_std"])
    assert (f["asof_month"] == 2).all() and (f["asof_dayofweek"] == 3).all()
    assert (f.dtypes == np.float64).all()


def test_rfm_columns_come_from_rfm_summary(data: CustomerData) -> None:
    rfm = rfm_summary(data.transactions, AS_OF, time_unit_days=1.0)
    f = transaction_features(data.transactions, rfm.index, AS_OF)
    np.testing.assert_allclose(f["days_since_first_purchase"], rfm["T"])
    np.testing.assert_allclose(f["recency_days"], rfm["recency"])
    np.testing.assert_allclose(f["monetary_value"], rfm["monetary_value"])


def test_orders_fall_back_to_purchase_days_without_order_id(data: CustomerData) -> None:
    tx = data.transactions.drop(columns=["order_id", "quantity"])
    f = transaction_features(tx, pd.Index(["a", "c"], name="customer_id"), AS_OF)
    assert f.loc["c", "orders"] == 1 and f.loc["c", "order_value_mean"] == 100
    assert "items_per_order" not in f.columns


def test_behaviour_features_hand_computed(data: CustomerData) -> None:
    customers = pd.Index(["a", "d"], name="customer_id")
    f = behaviour_features(data.events, customers, AS_OF, windows_days=(7, 90))
    assert f.loc["a", "ev_view_7d"] == 0 and f.loc["a", "ev_view_90d"] == 1
    assert f.loc["a", "ev_view_days_since"] == 30
    assert f.loc["d", "ev_cart_7d"] == 1 and f.loc["d", "ev_cart_days_since"] == 1
    assert f.loc["d", "ev_weird_type_7d"] == 1 and f.loc["d", "ev_weird_type_days_since"] == 0
    assert f.loc["d", "ev_view_90d"] == 0  # the view on Mar 5 is after as_of
    assert np.isnan(f.loc["d", "ev_view_days_since"])
    assert f.loc["d", "active_days_7d"] == 2 and f.loc["a", "active_days_7d"] == 0
    assert f.loc["a", "active_days"] == 1
    assert behaviour_features(None, customers, AS_OF).shape == (2, 0)


def test_windows_must_be_positive_and_distinct(data: CustomerData) -> None:
    with pytest.raises(ConfigError, match="windows_days"):
        transaction_features(data.transactions, pd.Index(["a"]), AS_OF, windows_days=(7, 0))


def test_rows_after_as_of_change_no_feature(data: CustomerData) -> None:
    encoder = ProfileEncoder().fit(data.profiles)
    before = tabular_features(data, AS_OF, encoder)
    later_tx = pd.DataFrame(
        {
            "customer_id": ["a", "e", "c"],
            "timestamp": pd.to_datetime(
                ["2024-03-01", "2024-03-02", "2024-03-01 00:00:00.5"], format="ISO8601"
            ),
            "amount": [1000.0, 50.0, -60.0],
            "order_id": ["x1", "x2", "x3"],
            "quantity": [9.0, 1.0, -2.0],
        }
    )
    later_ev = pd.DataFrame(
        {
            "customer_id": ["a", "f"],
            "timestamp": pd.to_datetime(["2024-03-01", "2024-03-01"]),
            "event_type": ["click", "brand_new_type"],
        }
    )
    grown = CustomerData(
        pd.concat([data.transactions, later_tx], ignore_index=True),
        pd.concat([data.events, later_ev], ignore_index=True),
        data.profiles,
    )
    after = tabular_features(grown, AS_OF, encoder, event_types=None)
    # the new event type appears only after as_of, so it makes no column either
    pd.testing.assert_frame_equal(before, after)


def test_tabular_features_shape_and_order(data: CustomerData) -> None:
    encoder = ProfileEncoder().fit(data.profiles)
    f = tabular_features(data, AS_OF, encoder)
    assert list(f.index) == ["a", "b", "c", "d"] and f.index.name == "customer_id"
    assert (f.dtypes == np.float64).all()
    assert list(f.columns[-2:]) == ["profile_age", "profile_city"]
    types = ("cart", "checkout", "click", "purchase", "view", "weird type!")
    earlier = tabular_features(data, pd.Timestamp("2024-01-20"), encoder, event_types=types)
    assert list(earlier.index) == ["a", "b"]
    assert list(earlier.columns) == list(f.columns)
    # by default the vocabulary is what was seen up to as_of (the odd type comes later)
    default = tabular_features(data, pd.Timestamp("2024-01-20"), encoder)
    assert "ev_weird_type_7d" not in default.columns
    assert "profile_age" not in tabular_features(data, AS_OF).columns


def test_profile_encoder_vocabulary_from_training_only() -> None:
    train = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "city": ["paris", "rome", "paris", "oslo"],
            "age": [20.0, 30.0, np.nan, 50.0],
            "vip": [True, False, False, True],
        }
    )
    encoder = ProfileEncoder(top_k=2).fit(train)
    # counts paris 2, oslo 1, rome 1: ties broken by value, so oslo is kept
    assert encoder.vocabularies_ == {"city": ["paris", "oslo"]}
    assert encoder.medians_ == {"age": 30.0, "vip": 0.5}
    later = pd.DataFrame(
        {
            "customer_id": ["a", "b", "e", "f"],
            "city": ["paris", "rome", "tokyo", None],
            "age": [20.0, 30.0, np.nan, 40.0],
            "vip": [True, False, True, False],
        }
    )
    out = encoder.transform(later, pd.Index(["a", "b", "e", "f", "g"], name="customer_id"))
    # rome (outside top-k) and tokyo (never seen) both map to "other" = 2; missing stays NaN
    np.testing.assert_array_equal(out["profile_city"], [0.0, 2.0, 2.0, np.nan, np.nan])
    np.testing.assert_array_equal(out["profile_age"], [20.0, 30.0, 30.0, 40.0, 30.0])
    assert encoder.categorical_features == ["profile_city"]
    assert (
        list(out.columns) == encoder.feature_names == ["profile_age", "profile_vip", "profile_city"]
    )


def test_profile_encoder_json_round_trip() -> None:
    train = pd.DataFrame({"customer_id": ["a", "b"], "city": ["x", "y"], "n": [1, 3]})
    encoder = ProfileEncoder(top_k=5).fit(train)
    copy = ProfileEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    customers = pd.Index(["a", "b", "z"], name="customer_id")
    pd.testing.assert_frame_equal(
        encoder.transform(train, customers), copy.transform(train, customers)
    )
    with pytest.raises(NotFittedError):
        ProfileEncoder().transform(train, customers)


def test_value_monotonicity_of_every_transaction_column(data: CustomerData) -> None:
    f = transaction_features(data.transactions, pd.Index(["a", "b"]), AS_OF)
    signs = dict(zip(f.columns, value_monotonicity(list(f.columns)), strict=True))
    assert signs["days_since_last_purchase"] == -1
    increasing = {c for c, s in signs.items() if s == 1}
    assert {
        "frequency",
        "recency_days",
        "total_value",
        "orders",
        "spend_7d",
        "purchases_365d",
    } <= increasing
    free = {c for c, s in signs.items() if s == 0}
    assert {"days_since_first_purchase", "ipi_mean", "return_share", "asof_month"} <= free
    assert value_monotonicity(["ev_view_7d", "profile_age", "spend_7d_share"]) == [0, 0, 0]
