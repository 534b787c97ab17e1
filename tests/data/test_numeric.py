"""Numeric columns: currency text, decimal commas, quantity x price, implausible amounts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.clean import CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.validate import validate_events, validate_transactions
from ltvcast.exceptions import SchemaError


def test_amount_from_quantity_times_price() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "timestamp": ["2024-01-01"] * 3,
            "Quantity": [3, -2, 1],
            "UnitPrice": [2.5, 1.25, "n/a"],
        }
    )
    columns = ColumnMap(quantity="Quantity", price="UnitPrice")
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", columns, report=report)
    assert out["amount"].tolist() == [7.5, -2.5]
    assert out["quantity"].tolist() == [3.0, -2.0]
    assert "column 'UnitPrice' (price) must be numeric; 1 of 3 rows are not (rows 3)" in " ".join(
        report.lines()
    )


def test_amount_text_with_currency_and_thousands(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = raw_tx(amount=["$1,234.50", "-£3", "10,5", " 7 "])
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", report=report)
    assert out["amount"].tolist() == [1234.5, -3.0, 7.0]
    assert "(rows 3)" in " ".join(report.lines())  # a decimal comma is not guessed at


@pytest.mark.parametrize("huge", [1e308, -2e12, "1e13", "inf"])
def test_implausible_amounts_are_dropped_and_counted(
    raw_tx: Callable[..., pd.DataFrame], huge: object
) -> None:
    report = CleaningReport()
    out = validate_transactions(raw_tx(amount=[10.0, huge, 30.0, 1e12]), "tx.csv", report=report)
    assert out["amount"].tolist() == [10.0, 30.0, 1e12]
    step = "invalid_amount" if huge == "inf" else "implausible_amount"  # inf is no number
    assert report.count("transactions", step) == 1
    if step == "implausible_amount":
        detail = report.to_frame().set_index("step").loc[step, "detail"]
        assert detail == (
            "tx.csv: column 'amount' must be finite with |amount| at most 1,000,000,000,000; "
            "1 of 4 rows are not (rows 2); dropped"
        )


def test_implausible_derived_amounts_and_optional_numbers() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "timestamp": ["2024-01-01"] * 3,
            "Quantity": [3, 1e200, 2],
            "UnitPrice": [2.5, 1e200, 1e11],
        }
    )
    report = CleaningReport()
    columns = ColumnMap(quantity="Quantity", price="UnitPrice")
    out = validate_transactions(frame, "tx.csv", columns, report=report)
    assert out["amount"].tolist() == [7.5, 2e11]
    assert "column 'Quantity' (quantity) x 'UnitPrice' (price) must be finite" in report.lines()[1]
    with pytest.raises(SchemaError, match=r"no valid row left|must be finite"):
        validate_transactions(frame.iloc[1:2], "tx.csv", columns)
    events = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "timestamp": ["2024-01-01"] * 2,
            "event_type": "view",
            "value": [1.5, 1e300],
        }
    )
    report = CleaningReport()
    out = validate_events(events, "ev.csv", report=report)
    assert out["value"].iloc[0] == 1.5 and np.isnan(out["value"].iloc[1])
    assert report.count("events", "invalid_value") == 1


def test_decimal_commas_are_not_read_and_make_comma_groups_ambiguous(
    raw_tx: Callable[..., pd.DataFrame],
) -> None:
    """A semicolon file (now read) often writes 12,50: then 1,250 may be 1.25, not 1250."""
    report = CleaningReport()
    out = validate_transactions(
        raw_tx(amount=["12,50", "1,250", "3", "7.5"]), "tx.csv", report=report
    )
    assert out["amount"].tolist() == [3.0, 7.5]
    detail = report.to_frame().set_index("step").loc["invalid_amount", "detail"]
    assert detail == (
        "tx.csv: column 'amount' must be numeric (decimal commas such as '12,50' are not read); "
        "2 of 4 rows are not (rows 1, 2); dropped"
    )
    plain = validate_transactions(raw_tx(amount=["1,250", "3", "€1.234,5", "2,125.5"]), "tx.csv")
    assert plain["amount"].tolist() == [3.0, 2125.5]
    us = validate_transactions(raw_tx(amount=["1,250", "3", "$1,234.50", "2"]), "tx.csv")
    assert us["amount"].tolist() == [1250.0, 3.0, 1234.5, 2.0]


def test_plain_decimal_text_reads_as_python_reads_it() -> None:
    rng = np.random.default_rng(1)
    values = np.r_[rng.normal(0, 1e4, 300), rng.integers(-999, 999, 50)]
    texts = [f"{v:.{rng.integers(0, 8)}f}" for v in values] + ["+3", "-0.0", "007.50"]
    frame = pd.DataFrame(
        {"customer_id": "a", "timestamp": "2024-01-01", "amount": pd.Series(texts, dtype=object)}
    )
    frame = frame.assign(timestamp=pd.date_range("2024-01-01", periods=len(texts), freq="h"))
    out = validate_transactions(frame, "tx.csv")
    assert out["amount"].tolist() == [float(t) for t in texts]
