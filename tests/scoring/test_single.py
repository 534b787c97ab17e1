"""Score requests: parsing, JSON-path errors and the founding paper's example customer."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from ltvcast.exceptions import SchemaError
from ltvcast.scoring.single import (
    REQUEST_CUSTOMER_ID,
    parse_score_request,
)


def test_full_request_parses_to_one_customer() -> None:
    data, as_of = parse_score_request(
        {
            "as_of": "2024-05-01",
            "transactions": [
                {"timestamp": "2024-04-01T10:00:00+02:00", "amount": 25},
                {"timestamp": "2024-04-20T08:00:00Z", "amount": -5.5},
            ],
            "events": [{"timestamp": "2024-04-30T09:00:00Z", "event_type": " View "}],
            "profile": {"age": 30, "gender": "male"},
        }
    )
    assert as_of == pd.Timestamp("2024-05-01 23:59:59.999999")
    tx = data.transactions
    assert tx["customer_id"].tolist() == [REQUEST_CUSTOMER_ID] * 2
    # +02:00 is converted to naive UTC
    assert tx["timestamp"].tolist() == [
        pd.Timestamp("2024-04-01 08:00"),
        pd.Timestamp("2024-04-20 08:00"),
    ]
    assert tx["amount"].dtype == "float64" and tx["amount"].tolist() == [25.0, -5.5]
    assert data.events is not None and data.events["event_type"].tolist() == ["view"]
    assert data.profiles is not None
    assert data.profiles.iloc[0].to_dict() == {
        "customer_id": "request",
        "age": 30,
        "gender": "male",
    }


def test_parts_are_optional() -> None:
    data, as_of = parse_score_request(
        {"events": [{"timestamp": "2024-01-01", "event_type": "click"}]}
    )
    assert as_of is None and data.profiles is None and len(data.transactions) == 0
    assert data.customers().tolist() == [REQUEST_CUSTOMER_ID]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {
                "transactions": [{"timestamp": "2024-01-01", "amount": 1}] * 3
                + [{"timestamp": "2024-01-02", "amount": "9"}]
            },
            "transactions[3].amount: must be a number",
        ),
        (
            {"transactions": [{"timestamp": "2024-01-01", "amount": True}]},
            "transactions[0].amount: must be a number",
        ),
        (
            {"transactions": [{"timestamp": "2024-01-01", "amount": float("nan")}]},
            "transactions[0].amount: must be a finite",
        ),
        (
            {"transactions": [{"timestamp": "yesterday", "amount": 1}]},
            "transactions[0].timestamp: must be an ISO-8601",
        ),
        ({"transactions": [{"amount": 1}]}, "transactions[0].timestamp: required"),
        (
            {"transactions": [{"timestamp": "2024-01-01", "amount": 1, "qty": 2}]},
            "transactions[0].qty: unknown field",
        ),
        ({"transactions": {"timestamp": "2024-01-01"}}, "transactions: must be a list"),
        (
            {"events": [{"timestamp": "2024-01-01", "event_type": ""}]},
            "events[0].event_type: must be a non-empty string",
        ),
        ({"events": ["view"]}, "events[0]: must be an object"),
        (
            {"as_of": "soon", "events": [{"timestamp": "2024-01-01", "event_type": "view"}]},
            "as_of: must be a date",
        ),
        (
            {
                "profile": {"age": [30]},
                "events": [{"timestamp": "2024-01-01", "event_type": "view"}],
            },
            "profile.age: must be",
        ),
        ({"customer": "x"}, "customer: unknown field"),
        ({"profile": {"age": 3}}, "at least one of them"),
    ],
)
def test_errors_name_the_json_path(payload: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_score_request(payload)


def test_founding_paper_example(paper_request: dict[str, Any]) -> None:
    data, as_of = parse_score_request(paper_request)
    assert as_of is not None and as_of.floor("D") == pd.Timestamp("2024-05-01")
    assert data.events is not None
    counts = data.events["event_type"].value_counts().to_dict()
    assert counts == {"view": 8, "click": 5}
    tx = data.transactions.sort_values("timestamp")
    assert tx["amount"].tolist()[-1] == 300.0 and len(tx) == 2
    assert (tx["timestamp"].iloc[1] - tx["timestamp"].iloc[0]) == pd.Timedelta(days=15)
    assert (data.last_timestamp() <= as_of) and (as_of - data.first_timestamp()) <= pd.Timedelta(
        days=31
    )
    assert data.profiles is not None
    assert data.profiles.iloc[0][["age", "gender", "city_tier"]].tolist() == [30, "male", 1]
