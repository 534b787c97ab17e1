"""Small hand-made stores and networks with constant heads for the seq module tests."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
import torch

from ltvcast.data.schemas import CustomerData
from ltvcast.features.sequence import CONTEXT_NAMES
from ltvcast.models.seq.inputs import SeqInputs
from ltvcast.models.seq.network import SeqNetwork

#: The as-of time of :func:`weekly`: ten weeks after its first day.
WEEKLY_AS_OF = pd.Timestamp("2024-03-10 23:59:59")


@pytest.fixture(scope="module")
def weekly() -> CustomerData:
    """12 customers over ten weeks: purchases every ``1 + i % 3`` weeks, views, profiles."""
    ids = [f"c{i:02d}" for i in range(12)]
    rows = [
        (c, pd.Timestamp("2024-01-01 12:00") + pd.Timedelta(weeks=w, days=i % 7), 10.0 + i)
        for i, c in enumerate(ids)
        for w in range(i % 4, 10, 1 + i % 3)
    ]
    tx = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    events = tx.assign(event_type="view")[["customer_id", "timestamp", "event_type"]]
    profiles = pd.DataFrame(
        {
            "customer_id": ids,
            "tier": ["gold" if i % 2 else "basic" for i in range(12)],
            "age": [20.0 + 3 * i for i in range(12)],
        }
    )
    return CustomerData(tx, events=events, profiles=profiles)


@pytest.fixture()
def constant_network() -> Callable[[SeqInputs, dict[str, list[float]]], SeqNetwork]:
    """A factory of networks whose heads ignore the inputs: every weight is zero and each
    head's bias is given (``HEADS`` name -> logits)."""

    def build(inputs: SeqInputs, biases: dict[str, list[float]]) -> SeqNetwork:
        net = SeqNetwork(
            len(inputs.channels),
            len(CONTEXT_NAMES),
            len(inputs.numeric_columns),
            inputs.cardinalities(),
            conv_filters=4,
            lstm_hidden=4,
            head_hidden=4,
            stride=inputs.grid.stride,
        )
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.zero_()
            for name, bias in biases.items():
                net.head(name).bias.copy_(torch.tensor(bias))
        return net.eval()

    return build
