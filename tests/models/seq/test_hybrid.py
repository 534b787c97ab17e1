"""The hybrid's BTYD side: origins, no look-ahead, offsets that start the heads at BTYD, the
tabular aggregates, the network's value from its purchases, and the anchored blend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.sequence import period_matrix
from ltvcast.features.tabular import transaction_features
from ltvcast.models.seq.hybrid import (
    aggregates,
    anchored_blend,
    btyd_origins,
    fit_blend,
    fit_btyd,
    origin_aggregates,
    origin_columns,
    purchase_spend,
    purchases_value,
    residual_offsets,
    wide_features,
)
from ltvcast.models.seq.loss import inverse_softplus, ziln_mean
from ltvcast.timeframe import parse_horizon

AS_OF = pd.Timestamp("2024-06-30 23:59:59")
HORIZON = parse_horizon("6w")


@pytest.fixture(scope="module")
def data() -> CustomerData:
    """60 customers buying at rates from 1 to 20 a year, from January 2024 on."""
    rng = np.random.default_rng(2)
    days = pd.date_range("2024-01-01", "2024-09-30", freq="D")
    rate = np.linspace(1.0, 20.0, 60) / 365.0
    rows, cols = np.nonzero(rng.random((60, len(days))) < rate[:, None])
    tx = pd.DataFrame(
        {
            "customer_id": np.array([f"c{i:02d}" for i in range(60)])[rows],
            "timestamp": days[cols] + pd.Timedelta(hours=9),
            "amount": rng.lognormal(3.0, 0.4, len(rows)),
        }
    )
    return CustomerData(tx)


def test_origin_columns_are_spread_and_keep_the_latest() -> None:
    candidates = np.arange(1, 40, 2)  # 20 block ends
    chosen = origin_columns(candidates, 6)
    assert chosen[-1] == 39 and len(chosen) <= 6 and np.all(np.diff(chosen) == 8)
    np.testing.assert_array_equal(origin_columns(candidates, 50), candidates)
    with pytest.raises(ConfigError, match="btyd_origins must be >= 1"):
        origin_columns(candidates, 0)


def test_btyd_at_an_origin_reads_no_later_data(data: CustomerData) -> None:
    batch = period_matrix(data, AS_OF, period_days=7, n_periods=26)
    columns = np.array([9, 17])
    forecasts, _, fitted = btyd_origins(data, batch.period_ends, batch.customers, columns, HORIZON)
    assert fitted[columns].all() and fitted.sum() == 2
    origin = batch.period_ends[9] - pd.Timedelta(1, "ns")
    cut = data.until(origin)  # nothing after column 9's origin
    again, _, _ = btyd_origins(cut, batch.period_ends, batch.customers, columns[:1], HORIZON)
    np.testing.assert_array_equal(again[:, 9], forecasts[:, 9])
    # the same numbers as btyd_cal fitted at that origin on its own
    own = fit_btyd(data, origin, HORIZON).predict(data, origin).set_index("customer_id")
    known = batch.customers.isin(own.index)
    np.testing.assert_allclose(
        forecasts[known, 9, 0], own["predicted_value"].reindex(batch.customers[known])
    )
    assert (forecasts[~known, 9] == 0).all() and not (forecasts[:, 17] == forecasts[:, 9]).all()


def test_offsets_start_the_heads_at_the_btyd_forecast() -> None:
    base = (-0.3, 3.0, 0.8, 0.5)  # logit rate, mean log spend, sigma, log mean purchases
    forecasts = np.array([[120.0, 2.5, 0.7], [3.0, 0.1, 0.05], [0.0, 0.0, 0.0]])
    offset = torch.from_numpy(residual_offsets(forecasts, base))
    sigma = float(inverse_softplus(torch.tensor(base[2], dtype=torch.float64)))
    logits = torch.tensor([base[0], base[1], sigma]) + offset[:, :3]
    mean = ziln_mean(logits).numpy()
    np.testing.assert_allclose(mean[:2], forecasts[:2, 0], rtol=1e-5)
    np.testing.assert_allclose(np.exp(base[3] + offset[:2, 3].numpy()), [2.5, 0.1], rtol=1e-5)
    assert (offset[2] == 0).all()  # unknown to BTYD: the network's own base rates
    wide = wide_features(forecasts)
    np.testing.assert_array_equal(wide[:, 0], [1.0, 1.0, 0.0])


def test_blend_keeps_the_btyd_total_with_a_fixed_factor() -> None:
    btyd = np.array([10.0, 30.0, 0.0, 60.0])  # the third customer is unknown to BTYD
    rollout = np.array([40.0, 40.0, 5.0, 400.0])  # an exploded rollout: 4.85x the total
    anchor = np.array([10.0, 30.0, 5.0, 60.0])  # BTYD's, the network's where it has none
    np.testing.assert_allclose(anchored_blend(btyd, rollout, 0.0, 1.0), anchor)
    geometric = np.sqrt(anchor * rollout)
    np.testing.assert_allclose(anchored_blend(btyd, rollout, 0.5, 2.0), 2.0 * geometric)
    assert fit_blend(btyd, rollout, actual=anchor) == (0.0, 1.0, 1.0)
    # the labels set the unknown customer's level: 2.5 actual for 5 predicted
    labels = np.array([10.0, 30.0, 2.5, 60.0])
    weight, factor, unknown = fit_blend(btyd, rollout, actual=labels)
    assert (weight, unknown) == (0.0, 0.5) and factor == pytest.approx(1.0)
    np.testing.assert_allclose(anchored_blend(btyd, rollout, 0.0, 1.0, unknown), labels)
    # calibrated: the level of the validation labels instead of BTYD's
    weight, factor, unknown = fit_blend(btyd, rollout, actual=anchor / 2.0, calibrate=True)
    assert (weight, unknown) == (0.0, 0.5)  # [10, 30, 2.5, 60] scaled to the labels' 52.5
    assert factor == pytest.approx(52.5 / 102.5)


def test_blend_weight_is_chosen_by_validation_error() -> None:
    actual = np.array([0.0, 20.0, 80.0, 0.0])
    btyd = np.array([25.0, 25.0, 25.0, 25.0])  # no ranking at all
    good = np.array([1.0, 20.0, 79.0, 1.0])  # the network ranks well
    weight, factor, _ = fit_blend(btyd, good, actual)
    assert weight == 1.0 and factor == pytest.approx(100.0 / 101.0)  # BTYD's total
    assert fit_blend(btyd, np.array([100.0, 1.0, 1.0, 100.0]), actual)[0] == 0.0  # badly


def test_aggregates_are_gbdt_features_at_the_origin_and_read_no_later_data(
    data: CustomerData,
) -> None:
    origin = pd.Timestamp("2024-04-30 23:59:59")
    customers = data.until(AS_OF).customers()
    table = aggregates(data, origin, customers, ())
    assert all(c.startswith("agg:") for c in table.columns) and "agg:asof_month" not in table
    reference = transaction_features(data.until(origin).transactions, customers, origin)
    frequency = reference["frequency"].to_numpy()
    np.testing.assert_allclose(table["agg:frequency"], np.log1p(frequency))
    # a customer with no purchase by the origin: 0, not NaN, for the times
    assert not np.isnan(table.to_numpy()).any()
    pd.testing.assert_frame_equal(table, aggregates(data.until(origin), origin, customers, ()))

    batch = period_matrix(data, AS_OF, period_days=7, n_periods=26)
    columns = np.array([9, 17])
    out, names = origin_aggregates(data, batch.period_ends, batch.customers, columns, ())
    assert names == tuple(table.columns) and out.shape == (len(batch.customers), 26, len(names))
    at_9 = aggregates(data, batch.period_ends[9] - pd.Timedelta(1, "ns"), batch.customers, ())
    np.testing.assert_allclose(out[:, 9], at_9.to_numpy(np.float32))
    assert (out[:, 10] == 0).all()


def test_behaviour_aggregates_only_for_the_event_types_given() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "timestamp": pd.to_datetime(["2024-01-02", "2024-01-03"]),
            "amount": [10.0, 20.0],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-04"]),
            "event_type": ["view", "view", "cart"],
        }
    )
    data = CustomerData(tx, events=events)
    as_of = pd.Timestamp("2024-01-06")
    customers = pd.Index(["a", "b"])
    assert not any("ev_" in c for c in aggregates(data, as_of, customers, ()).columns)
    table = aggregates(data, as_of, customers, ("view",))
    np.testing.assert_allclose(table["agg:ev_view_7d"], np.log1p([2.0, 0.0]))
    assert "agg:ev_cart_7d" not in table


def test_network_value_is_its_purchases_at_btyd_spend_per_purchase() -> None:
    forecasts = np.array([[120.0, 2.0, 0.7], [30.0, 0.5, 0.3], [0.0, 0.0, 0.0]])
    assert purchase_spend(forecasts) == pytest.approx(150.0 / 2.5)
    assert purchase_spend(np.zeros((2, 3))) == 1.0
    value = purchases_value(np.array([1.0, 2.0, 0.5]), forecasts, fallback=40.0)
    np.testing.assert_allclose(value, [60.0, 120.0, 20.0])  # unknown: the fallback spend
