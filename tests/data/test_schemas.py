from __future__ import annotations

import pandas as pd

from ltvcast.data.schemas import CustomerData


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "timestamp": pd.to_datetime(["2024-01-02 00:00", "2024-03-01 00:00"]),
            "event_type": ["view", "cart"],
        }
    )


def test_until_cuts_transactions_and_events(tiny_transactions: pd.DataFrame) -> None:
    data = CustomerData(tiny_transactions, events=_events())
    cut = data.until(pd.Timestamp("2024-01-31"))
    assert cut.transactions["timestamp"].max() <= pd.Timestamp("2024-01-31")
    assert cut.events is not None and len(cut.events) == 1
    assert list(cut.customers()) == ["a", "b"]
    assert data.event_types == ("cart", "view")


def test_time_range_spans_both_tables(tiny_transactions: pd.DataFrame) -> None:
    data = CustomerData(tiny_transactions, events=_events())
    assert data.first_timestamp() == pd.Timestamp("2024-01-01 10:00")
    assert data.last_timestamp() == pd.Timestamp("2024-03-01 08:00")


def test_time_range_with_no_transaction_before_the_cut(tiny_transactions: pd.DataFrame) -> None:
    """A shop whose valued orders all come later than its first events (Shapees)."""
    data = CustomerData(tiny_transactions, events=_events()).until(pd.Timestamp("2024-01-01"))
    early = CustomerData(data.transactions, events=_events().iloc[:1])
    assert early.transactions.empty
    assert early.first_timestamp() == pd.Timestamp("2024-01-02")
    assert early.last_timestamp() == pd.Timestamp("2024-01-02")
