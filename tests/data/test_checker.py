"""Rejection bookkeeping: each rule's rows are counted with example rows; unusable inputs raise."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from ltvcast.data.clean import CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.validate import validate_transactions
from ltvcast.exceptions import SchemaError


@pytest.mark.parametrize(
    ("column", "values", "step", "rule"),
    [
        ("customer_id", ["a", None, " ", "d"], "invalid_customer_id", "must hold an id"),
        (
            "timestamp",
            ["2024-01-01", "not a date", None, "2024-01-04"],
            "invalid_timestamp",
            "must be a date/time",
        ),
        ("amount", [10.0, "ten", None, 40.0], "invalid_amount", "must be numeric"),
    ],
)
def test_invalid_rows_are_dropped_and_counted(
    raw_tx: Callable[..., pd.DataFrame], column: str, values: list[object], step: str, rule: str
) -> None:
    report = CleaningReport()
    out = validate_transactions(raw_tx(**{column: values}), "tx.csv", report=report)
    assert len(out) == 2
    assert report.count("transactions", step) == 2
    detail = report.to_frame().set_index("step").loc[step, "detail"]
    assert f"tx.csv: column '{column}' {rule}; 2 of 4 rows" in detail
    assert "(rows 2, 3)" in detail


def test_all_rows_invalid_raises_with_file_column_rule_count_rows(
    raw_tx: Callable[..., pd.DataFrame],
) -> None:
    frame = raw_tx(amount=["x", "y", None, "z"])
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv")
    assert str(err.value) == (
        "tx.csv: column 'amount' must be numeric; 4 of 4 rows are not (rows 1, 2, 3, 4)"
    )


def test_rows_invalid_under_different_rules_leave_nothing(
    raw_tx: Callable[..., pd.DataFrame],
) -> None:
    frame = raw_tx(amount=["x", "y", 1.0, 2.0], customer_id=["a", "b", None, None])
    with pytest.raises(SchemaError, match=r"no valid row left.*'customer_id'.*'amount'"):
        validate_transactions(frame, "tx.csv")


def test_row_numbers_follow_an_integer_index(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = raw_tx(amount=[1.0, "bad", 3.0, 4.0])
    frame.index = [10, 11, 12, 13]  # e.g. a slice of a bigger file
    report = CleaningReport()
    validate_transactions(frame, "tx.csv", report=report)
    assert "(rows 12)" in report.lines()[1]


def test_missing_required_column_lists_columns_and_flag(
    raw_tx: Callable[..., pd.DataFrame],
) -> None:
    frame = raw_tx().rename(columns={"customer_id": "CustomerID"})
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv")
    message = str(err.value)
    assert "tx.csv: required column 'customer_id' not found" in message
    assert "'CustomerID', 'timestamp', 'amount'" in message
    assert "--customer-col" in message


def test_mapped_column_that_is_absent(raw_tx: Callable[..., pd.DataFrame]) -> None:
    with pytest.raises(SchemaError, match=r"'Qty' not found.*--quantity-col"):
        validate_transactions(raw_tx(), "tx.csv", ColumnMap(quantity="Qty"))


def test_empty_frame_raises(raw_tx: Callable[..., pd.DataFrame]) -> None:
    with pytest.raises(SchemaError, match=r"tx\.csv: no data rows"):
        validate_transactions(raw_tx().iloc[:0], "tx.csv")


def test_repeated_columns_of_a_frame_are_refused(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = pd.concat([raw_tx(), raw_tx()[["amount"]]], axis=1)
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv")
    assert str(err.value) == (
        "tx.csv: column names must be unique; 'amount' appears 2 times (columns 3, 4)"
    )
