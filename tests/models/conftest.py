"""Fixtures shared by the BTYD model tests."""

from __future__ import annotations

import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData


@pytest.fixture(scope="module")
def cdnow_after_as_of(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    """The CDNOW sample plus purchases, a return, a new customer and an event after
    1997-09-30 (the as-of of the leakage tests): none of them may change a forecast."""
    later = pd.DataFrame(
        {
            "customer_id": ["1", "2", "new-after"],
            "timestamp": pd.to_datetime(
                ["1997-10-01 00:00:01", "1997-10-01 00:00:00", "1997-10-02 00:00:00"]
            ),
            "amount": [1000.0, -50.0, 20.0],
        }
    ).astype(cdnow_sample_tx.dtypes.to_dict())
    events = pd.DataFrame(
        {"customer_id": ["1"], "timestamp": pd.to_datetime(["1997-11-01"]), "event_type": ["view"]}
    )
    return CustomerData(pd.concat([cdnow_sample_tx, later], ignore_index=True), events=events)
