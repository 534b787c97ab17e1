"""DuckDB store: round trip, as-of and customer filters, append, persistence."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.data.store import Store
from ltvcast.data.validate import load_customer_data
from ltvcast.exceptions import SchemaError


@pytest.fixture()
def data() -> CustomerData:
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c"],
            "timestamp": ["2024-01-01 10:00", "2024-02-01", "2024-01-15", "2024-03-01"],
            "amount": [10.0, -2.5, 7.0, 30.0],
            "order_id": ["1", "C2", "3", "4"],
        }
    )
    ev = pd.DataFrame(
        {
            "customer_id": ["a", "b", "d"],
            "timestamp": ["2023-12-31", "2024-02-10", "2024-01-05"],
            "event_type": ["view", "cart", "view"],
            "value": [1.0, None, 3.0],
        }
    )
    pr = pd.DataFrame({"customer_id": ["a", "b"], "age": [30, 40], "city": ["Oslo", None]})
    bundle, _ = load_customer_data(tx, ev, pr)
    return bundle


def _same(left: pd.DataFrame | None, right: pd.DataFrame | None) -> None:
    assert left is not None and right is not None
    pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True))


def test_round_trip_keeps_rows_and_dtypes(data: CustomerData) -> None:
    with Store() as store:
        store.replace(data)
        back = store.read()
        assert store.counts() == {"transactions": 4, "events": 3, "profiles": 2}
    _same(back.transactions, data.transactions)
    _same(back.events, data.events)
    _same(back.profiles, data.profiles)


def test_as_of_cuts_timed_tables_like_until(data: CustomerData) -> None:
    as_of = pd.Timestamp("2024-01-31 23:59:59")
    with Store() as store:
        store.replace(data)
        cut = store.read(as_of=as_of)
    expected = data.until(as_of)
    _same(cut.transactions, expected.transactions)
    _same(cut.events, expected.events)
    assert cut.transactions["timestamp"].max() <= as_of
    _same(cut.profiles, data.profiles)  # profiles have no time


def test_customer_filter(data: CustomerData) -> None:
    with Store() as store:
        store.replace(data)
        some = store.read(customers=["b", "d", "zz"])
    assert some.transactions["customer_id"].tolist() == ["b"]
    assert some.events is not None and some.events["customer_id"].tolist() == ["b", "d"]
    assert some.profiles is not None and some.profiles["customer_id"].tolist() == ["b"]


def test_append_and_persistence(tmp_path: Path, data: CustomerData) -> None:
    path = tmp_path / "ltv.duckdb"
    with Store(path) as store:
        store.replace(CustomerData(data.transactions.iloc[:2]))
        store.append(transactions=data.transactions.iloc[2:], events=data.events)
    with Store(path) as store:
        back = store.read()
        assert store.counts() == {"transactions": 4, "events": 3, "profiles": 0}
    _same(back.transactions, data.transactions)
    assert back.profiles is None


def test_append_without_optional_columns_and_with_unknown_ones(data: CustomerData) -> None:
    with Store() as store:
        store.replace(data)
        extra = data.transactions.iloc[:1].drop(columns="order_id")
        store.append(transactions=extra)
        assert store.read().transactions["order_id"].isna().sum() == 1
        with pytest.raises(SchemaError, match="coupon"):
            store.append(transactions=extra.assign(coupon="X"))
        assert store.counts()["transactions"] == 5


def test_replace_drops_absent_tables_and_empty_store_errors(data: CustomerData) -> None:
    with Store() as store:
        with pytest.raises(SchemaError, match="no transactions"):
            store.read()
        store.replace(data)
        store.replace(CustomerData(data.transactions))
        assert store.counts()["events"] == 0 and store.read().events is None
        assert store.connection.execute("SELECT sum(amount) FROM transactions").fetchone() == (
            pytest.approx(44.5),
        )
