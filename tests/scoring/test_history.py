"""CustomerHistory's compaction off the caller's thread: buffered rows merged into the
sorted tables while new rows arrive give the same customer bundles."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltvcast.scoring.history import CustomerHistory


def _events(n: int, start: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in rng.integers(0, 20, n)],
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(start + np.arange(n), "h"),
            "event_type": rng.choice(["view", "purchase"], n),
            "amount": rng.uniform(1, 50, n),
        }
    ).assign(amount=lambda f: f["amount"].where(f["event_type"] == "purchase"))


def _bundle(history: CustomerHistory, customer: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = history.customer_data(customer)
    assert data is not None and data.events is not None
    tx = data.transactions.sort_values("timestamp").reset_index(drop=True)
    return tx, data.events.sort_values("timestamp").reset_index(drop=True)


def test_merge_pending_keeps_every_row_and_rows_learned_after_it() -> None:
    merged, buffered = CustomerHistory(), CustomerHistory()
    merged.auto_merge = buffered.auto_merge = False
    for history in (merged, buffered):
        history.learn_frame(_events(300, 0, seed=1))
        history.learn_frame(_events(200, 300, seed=2))
    merged.merge_pending()
    for history in (merged, buffered):
        history.learn_frame(_events(100, 500, seed=3))
        history.learn_one({"customer_id": "c3", "timestamp": pd.Timestamp("2024-03-01"),
                           "event_type": "view"})  # fmt: skip
    assert merged._pending_rows == 101 and buffered._pending_rows == 601
    for customer in [f"c{i}" for i in range(20)]:
        for left, right in zip(_bundle(merged, customer), _bundle(buffered, customer),
                               strict=True):  # fmt: skip
            pd.testing.assert_frame_equal(left, right, check_dtype=False)
