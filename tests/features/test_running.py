"""Running aggregates: ``get`` equals the batch features (``rfm_summary``, ``customer_history``)
on real data, whatever the order in which rows arrive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.rfm import customer_history, rfm_summary
from ltvcast.features.running import RunningAggregates

SEGMENT_INPUTS = ["customer_id", "tenure_days", "purchases"]


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    """500 CDNOW customers with returns (on purchase days, on days of their own, before a
    first purchase) and seeded views, some before a customer's first transaction."""
    tx = cdnow_sample_tx[cdnow_sample_tx["customer_id"].astype(int) <= 500]
    rng = np.random.default_rng(11)
    tx = tx.assign(
        timestamp=tx["timestamp"] + pd.to_timedelta(rng.integers(0, 86_400, len(tx)), "s")
    )
    picks = tx.sample(frac=0.1, random_state=1)
    shift = pd.to_timedelta(rng.choice([0, 1, 4, -3], len(picks)), unit="D")
    returns = picks.assign(timestamp=picks["timestamp"] + shift, amount=-0.4 * picks["amount"])
    views = tx.sample(frac=0.5, random_state=2)
    events = pd.DataFrame(
        {
            "customer_id": views["customer_id"].to_numpy(),
            "timestamp": (
                views["timestamp"] - pd.to_timedelta(rng.integers(1, 200, len(views)), "h")
            ).to_numpy(),
            "event_type": "view",
        }
    )
    both = pd.concat([tx, returns], ignore_index=True).sort_values("timestamp", ignore_index=True)
    return CustomerData(both, events, None)


def _rows(data: CustomerData) -> pd.DataFrame:
    """Transactions and events as one frame in time order."""
    assert data.events is not None
    tx = data.transactions.assign(is_transaction=True)
    ev = data.events.assign(amount=np.nan, is_transaction=False)
    both = pd.concat([tx, ev[tx.columns]], ignore_index=True)
    return both.sort_values("timestamp", kind="stable", ignore_index=True)


def _update(running: RunningAggregates, rows: pd.DataFrame) -> None:
    running.update(
        rows["customer_id"].to_numpy(dtype=object),
        rows["timestamp"].to_numpy(),
        rows["amount"].to_numpy(np.float64),
        rows["is_transaction"].to_numpy(),
    )


def _learned(data: CustomerData, chunk: int, late_fraction: float) -> RunningAggregates:
    """Rows fed in chunks in time order, except a sample delivered last (late), and the
    stale customers rebuilt from their transactions, as the history store does."""
    rows = _rows(data)
    late = rows.sample(frac=late_fraction, random_state=3)
    running = RunningAggregates()
    on_time = rows.drop(late.index)
    for start in range(0, len(on_time), chunk):
        _update(running, on_time.iloc[start : start + chunk])
    for start in range(0, len(late), 7):
        _update(running, late.iloc[start : start + 7])
    ids = np.array(sorted(data.customers()), dtype=object)
    stale = running.stale(ids)
    assert late_fraction == 0 or len(stale)
    tx = data.transactions[data.transactions["customer_id"].isin(stale)]
    running.rebuild(
        tx["customer_id"].to_numpy(dtype=object),
        tx["timestamp"].to_numpy(),
        tx["amount"].to_numpy(np.float64),
    )
    assert not len(running.stale(ids))
    return running


@pytest.mark.realdata
@pytest.mark.parametrize(("chunk", "late_fraction"), [(1, 0.0), (50, 0.0), (500, 0.05)])
def test_get_equals_the_batch_features(
    cdnow: CustomerData, chunk: int, late_fraction: float
) -> None:
    data = cdnow if chunk > 1 else cdnow.until(pd.Timestamp("1997-03-01"))
    running = _learned(data, chunk, late_fraction)
    ids = np.array(sorted(data.customers()), dtype=object)
    as_of = data.last_timestamp() + pd.Timedelta(days=3, hours=5)
    for unit in (7.0, 1.0):
        got = running.get(ids, as_of, time_unit_days=unit)
        expected = rfm_summary(data.transactions, as_of, time_unit_days=unit)
        pd.testing.assert_frame_equal(
            got.rfm, expected, rtol=1e-9, atol=1e-9, check_index_type=False
        )
        days = ["frequency", "recency", "T", "first_purchase"]
        pd.testing.assert_frame_equal(
            got.rfm[days], expected[days], check_exact=True, check_index_type=False
        )
    stats = customer_history(data, as_of)[SEGMENT_INPUTS]
    pd.testing.assert_frame_equal(got.history, stats, rtol=1e-12)
    assert len(running) == len(ids)


@pytest.mark.realdata
def test_get_reads_any_subset_in_the_order_asked(cdnow: CustomerData) -> None:
    running = _learned(cdnow, 200, 0.0)
    as_of = cdnow.last_timestamp()
    every = running.get(np.array(sorted(cdnow.customers()), dtype=object), as_of)
    some = np.array(["42", "7", "300", "1"], dtype=object)
    got = running.get(some, as_of)
    assert got.ids.tolist() == got.history["customer_id"].tolist() == some.tolist()
    buyers = some[got.history["purchases"].to_numpy() > 0]
    pd.testing.assert_frame_equal(got.rfm, every.rfm.loc[buyers])
    expected = every.history.set_index("customer_id").loc[some].reset_index()
    pd.testing.assert_frame_equal(got.history, expected)


def test_versions_and_refusals(tiny_transactions: pd.DataFrame) -> None:
    running = RunningAggregates()
    rows = tiny_transactions.assign(is_transaction=True)
    _update(running, rows)
    snapshot = running.versions()
    a = rows[rows["customer_id"] == "a"]
    later = a.iloc[[-1]].assign(timestamp=a["timestamp"].max() + pd.Timedelta(days=1))
    _update(running, later)
    assert running.version("a") == snapshot.get("a") + 1
    assert running.version("b") == snapshot.get("b") and running.version("zz") == 0
    assert running.last_seen("a") == later["timestamp"].iloc[0]
    ids = np.array(["a", "b"], dtype=object)
    got = running.get(ids, pd.Timestamp("2024-06-01"))
    assert got.versions.tolist() == [running.version("a"), running.version("b")]
    with pytest.raises(ConfigError, match=r"1 customers are unknown \(e.g. 'zz'\)"):
        running.get(np.array(["a", "zz"], dtype=object), pd.Timestamp("2024-06-01"))
    with pytest.raises(ConfigError, match="before the latest row of 2 customers"):
        running.get(ids, pd.Timestamp("2024-01-20"))
    with pytest.raises(ConfigError, match="time_unit_days must be positive"):
        running.get(ids, pd.Timestamp("2024-06-01"), time_unit_days=0)
    _update(running, a.iloc[[0]])  # dated before a's latest day: stale until rebuilt
    assert running.stale(ids).tolist() == ["a"]
    with pytest.raises(ConfigError, match="1 customers are stale"):
        running.get(ids, pd.Timestamp("2024-06-01"))


def test_customers_without_a_purchase_day(tiny_transactions: pd.DataFrame) -> None:
    """A customer with events only, or returns only, has segment inputs but no RFM row."""
    tx = pd.concat(
        [
            tiny_transactions,
            pd.DataFrame(
                {"customer_id": ["e"], "timestamp": [pd.Timestamp("2024-02-02")], "amount": -8.0}
            ),
        ],
        ignore_index=True,
    )
    events = pd.DataFrame(
        {
            "customer_id": ["d", "a"],
            "timestamp": pd.to_datetime(["2024-01-05", "2023-12-30"]),
            "event_type": "view",
        }
    )
    data = CustomerData(tx, events, None)
    running = RunningAggregates()
    _update(running, _rows(data))
    ids = np.array(["a", "b", "c", "d", "e"], dtype=object)
    as_of = pd.Timestamp("2024-03-10 12:00")
    got = running.get(ids, as_of)
    assert got.rfm.index.tolist() == ["a", "b", "c"]
    expected = rfm_summary(tx, as_of)
    pd.testing.assert_frame_equal(got.rfm, expected, check_index_type=False)
    assert got.rfm.loc["a", "T"] == pytest.approx((69 - 0) / 7)  # 2024-01-01 .. 2024-03-10
    stats = customer_history(data, as_of)[SEGMENT_INPUTS]
    pd.testing.assert_frame_equal(got.history, stats)
    assert got.history["purchases"].tolist() == [3, 2, 1, 0, 0]
