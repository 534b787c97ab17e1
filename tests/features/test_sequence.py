"""Per-period activity tensors: hand-computed cells, context, events and no leakage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.features.sequence import (
    CONTEXT_NAMES,
    choose_period_days,
    horizon_periods,
    period_matrix,
)
from ltvcast.timeframe import parse_horizon

AS_OF = pd.Timestamp("2024-02-21 23:59:59")


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "c", "d"],
            "timestamp": pd.to_datetime(
                ["2024-02-19 10:00", "2024-02-20 11:00", "2024-02-20 09:00", "2024-02-21 09:00"]
            ),
            "event_type": ["view", "view", "cart", "view"],
        }
    )


def test_cells_lengths_and_context(tiny_transactions: pd.DataFrame) -> None:
    data = CustomerData(tiny_transactions, events=_events())
    batch = period_matrix(data, AS_OF, period_days=7, n_periods=6, event_types=["view", "cart"])
    assert list(batch.customers) == ["a", "b", "c", "d"]
    assert batch.channels == ("purchases", "log_spend", "event:view", "event:cart")
    assert batch.values.shape == (4, 6, 4) and batch.values.dtype == np.float32
    # grid ends 2024-02-22 00:00; columns are weeks ending Jan 17, 24, 31, Feb 7, 14, 21
    assert batch.period_ends[-1] == pd.Timestamp("2024-02-22")
    a = batch.values[0]
    assert a[:, 0].tolist() == [1, 0, 0, 1, 0, 0]  # Jan 15 and Feb 1 (Jan 1 is before the grid)
    assert a[0, 1] == pytest.approx(np.log1p(20.0))
    assert a[-1, 2] == 2.0 and batch.values[2, -1, 3] == 1.0
    # b's Jan 10 purchase is before the grid, Mar 1 after as_of; c only bought on Feb 20
    assert batch.values[1, :, 0].sum() == 0 and batch.values[2, -1, 1] == pytest.approx(
        np.log1p(100)
    )
    # a started Jan 1 (8 weeks back: capped); b Jan 10 (7 weeks: capped); c, d this week
    assert batch.lengths.tolist() == [6, 6, 1, 1]
    assert batch.mask.sum(1).tolist() == [6, 6, 1, 1]
    tenure = np.expm1(batch.static[:, CONTEXT_NAMES.index("log_tenure")])
    np.testing.assert_allclose(tenure, np.array([52, 43, 2, 1]) / 7.0, rtol=1e-5)
    to_date = np.expm1(batch.static[:, CONTEXT_NAMES.index("log_purchases_to_date")])
    np.testing.assert_allclose(to_date, [3, 1, 1, 0], rtol=1e-5)  # Jan 1 counted
    recency = np.expm1(batch.static[:, CONTEXT_NAMES.index("log_recency")])
    np.testing.assert_allclose(recency, [2, 6, 0, 1 / 7], rtol=1e-5, atol=1e-6)
    # spend to date per purchase day: a $60 / 3 (Jan 1 before the grid counted), b $5, c $100
    mean_spend = np.expm1(batch.context[..., CONTEXT_NAMES.index("log_mean_spend")])
    np.testing.assert_allclose(mean_spend[:, -1], [20, 5, 100, 0], rtol=1e-5)
    np.testing.assert_allclose(mean_spend[0, :2], [15, 15], rtol=1e-5)  # Jan 1 + Jan 15


def test_rows_after_as_of_change_nothing(tiny_transactions: pd.DataFrame) -> None:
    later = pd.concat(
        [tiny_transactions, tiny_transactions.assign(timestamp=pd.Timestamp("2024-02-22 00:00"))]
    )
    kwargs: dict[str, Any] = {"period_days": 7, "n_periods": 6, "event_types": ["view"]}
    base = period_matrix(CustomerData(tiny_transactions, events=_events()), AS_OF, **kwargs)
    events = pd.concat([_events(), _events().assign(timestamp=pd.Timestamp("2024-03-01"))])
    moved = period_matrix(CustomerData(later, events=events), AS_OF, **kwargs)
    np.testing.assert_array_equal(base.values, moved.values)
    np.testing.assert_array_equal(base.context, moved.context)
    np.testing.assert_array_equal(base.lengths, moved.lengths)


def test_period_choice() -> None:
    assert choose_period_days(parse_horizon("30d"), pd.Timedelta(days=400)) == 1
    assert choose_period_days(parse_horizon("13w"), pd.Timedelta(days=400)) == 7
    assert choose_period_days(parse_horizon("13w"), pd.Timedelta(days=30)) == 1
    assert horizon_periods(parse_horizon("6m"), 7) == 26
    assert horizon_periods(parse_horizon("1d"), 7) == 1


def test_real_cdnow_slice(cdnow_sample_tx: pd.DataFrame) -> None:
    tx = cdnow_sample_tx
    as_of = pd.Timestamp("1997-09-30 23:59:59")
    batch = period_matrix(CustomerData(tx), as_of, period_days=7, n_periods=39)
    past = tx[tx["timestamp"] <= as_of]
    # every purchase day in the 39 weeks lands in one cell; all 2,357 customers are there
    assert len(batch.customers) == 2357
    assert batch.values[..., 0].sum() == past.groupby(["customer_id", "timestamp"]).ngroups
    assert batch.lengths.max() == 39
