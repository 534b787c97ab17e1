"""The hybrid's BTYD side: origins, no look-ahead, offsets that start the heads at BTYD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.sequence import period_matrix
from ltvcast.models.seq.hybrid import (
    anchored_blend,
    btyd_origins,
    fit_blend,
    fit_btyd,
    origin_columns,
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
    forecasts, fitted = btyd_origins(data, batch.period_ends, batch.customers, columns, HORIZON)
    assert fitted[columns].all() and fitted.sum() == 2
    origin = batch.period_ends[9] - pd.Timedelta(1, "ns")
    cut = data.until(origin)  # nothing after column 9's origin
    again, _ = btyd_origins(cut, batch.period_ends, batch.customers, columns[:1], HORIZON)
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
    btyd = np.array([10.0, 30.0, 0.0, 60.0])
    rollout = np.array([40.0, 40.0, 5.0, 400.0])  # an exploded rollout: 4.85x the total
    np.testing.assert_allclose(anchored_blend(btyd, rollout, 0.0, 1.0), btyd)
    geometric = np.sqrt(btyd * rollout)
    np.testing.assert_allclose(anchored_blend(btyd, rollout, 0.5, 2.0), 2.0 * geometric)
    weight, factor = fit_blend(btyd, rollout, actual=btyd)
    assert (weight, factor) == (0.0, 1.0)


def test_blend_weight_is_chosen_by_validation_error() -> None:
    actual = np.array([0.0, 20.0, 80.0, 0.0])
    btyd = np.array([25.0, 25.0, 25.0, 25.0])  # no ranking at all
    good = np.array([1.0, 20.0, 79.0, 1.0])  # the network ranks well
    weight, factor = fit_blend(btyd, good, actual)
    assert weight == 1.0 and factor == pytest.approx(100.0 / 101.0)  # BTYD's total
    assert fit_blend(btyd, np.array([100.0, 1.0, 1.0, 100.0]), actual)[0] == 0.0  # badly
