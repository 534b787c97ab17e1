"""A small seeded store shared by the strategy tests (module-scoped fitted models use it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData


def small_store(n_customers: int = 300, days: int = 420, seed: int = 0) -> CustomerData:
    """Customers with heterogeneous purchase rates, dropout, spend levels and view events."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01")
    rate = rng.gamma(0.8, 1 / 40, n_customers)  # purchases per day
    alive_days = rng.exponential(300, n_customers)
    join = rng.uniform(0, days * 0.8, n_customers)
    spend = rng.lognormal(3.0, 0.6, n_customers)
    expected = rate * np.clip(np.minimum(alive_days, days - join), 1, None)
    counts = rng.poisson(expected) + 1
    owner = np.repeat(np.arange(n_customers), counts)
    first = np.cumsum(counts) - counts
    offset = (
        rng.uniform(0, 1, owner.size) * np.clip(np.minimum(alive_days, days - join), 1, None)[owner]
    )
    offset[first] = 0.0
    when = start + pd.to_timedelta(join[owner] + offset, unit="D")
    amount = np.round(spend[owner] * rng.lognormal(0, 0.3, owner.size), 2)
    ids = np.array([f"u{i:04d}" for i in range(n_customers)])
    transactions = pd.DataFrame(
        {"customer_id": ids[owner], "timestamp": when.floor("s"), "amount": amount}
    )
    views = np.repeat(owner, 3)
    events = pd.DataFrame(
        {
            "customer_id": ids[views],
            "timestamp": (
                transactions["timestamp"].to_numpy().repeat(3)
                - pd.to_timedelta(rng.uniform(0, 2, views.size), unit="D")
            ),
            "event_type": "view",
        }
    )
    return CustomerData(
        transactions.sort_values("timestamp").reset_index(drop=True),
        events.sort_values("timestamp").reset_index(drop=True),
    )


@pytest.fixture(scope="session")
def store() -> CustomerData:
    """300 seeded customers over 420 days, with view events."""
    return small_store()
