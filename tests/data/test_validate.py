"""Validation rules: each rejection is counted with example rows; unusable inputs raise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.validate import (
    as_ids,
    load_customer_data,
    parse_timestamps,
    validate_events,
    validate_profiles,
    validate_transactions,
)
from ltvcast.exceptions import SchemaError


def _tx(**overrides: list[object]) -> pd.DataFrame:
    base: dict[str, list[object]] = {
        "customer_id": ["a", "b", "c", "d"],
        "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
        "amount": [10.0, 20.0, 30.0, 40.0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_canonical_dtypes_and_order() -> None:
    frame = _tx(customer_id=[2.0, 10.0, 1.0, 2.0], amount=["1", "2.5", "3", "4"])
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", report=report)
    assert list(out.columns) == ["customer_id", "timestamp", "amount"]
    assert out["customer_id"].dtype == "str"
    assert out["timestamp"].dtype == "datetime64[us]"
    assert out["amount"].dtype == "float64"
    # numeric ids lose ".0"; rows sorted by customer then time
    assert out["customer_id"].tolist() == ["1", "10", "2", "2"]
    assert out["amount"].tolist() == [3.0, 2.5, 1.0, 4.0]
    assert report.count("transactions", "read") == 4
    assert report.count("transactions", "result") == 4


def test_as_ids() -> None:
    ids = as_ids(pd.Series([" 001 ", "17850.0", "", None, "x"]))
    assert ids.iloc[:2].tolist() == ["001", "17850"] and ids.iloc[4] == "x"
    assert ids.iloc[2:4].isna().all()
    assert as_ids(pd.Series([17850.0, np.nan])).iloc[0] == "17850"
    assert as_ids(pd.Series([1.5, 2.0])).tolist() == ["1.5", "2"]
    assert as_ids(pd.Series([12345678901234567], dtype="int64")).iloc[0] == "12345678901234567"


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
    column: str, values: list[object], step: str, rule: str
) -> None:
    report = CleaningReport()
    out = validate_transactions(_tx(**{column: values}), "tx.csv", report=report)
    assert len(out) == 2
    assert report.count("transactions", step) == 2
    detail = report.to_frame().set_index("step").loc[step, "detail"]
    assert f"tx.csv: column '{column}' {rule}; 2 of 4 rows" in detail
    assert "(rows 2, 3)" in detail


def test_all_rows_invalid_raises_with_file_column_rule_count_rows() -> None:
    frame = _tx(amount=["x", "y", None, "z"])
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv")
    assert str(err.value) == (
        "tx.csv: column 'amount' must be numeric; 4 of 4 rows are not (rows 1, 2, 3, 4)"
    )


def test_rows_invalid_under_different_rules_leave_nothing() -> None:
    frame = _tx(amount=["x", "y", 1.0, 2.0], customer_id=["a", "b", None, None])
    with pytest.raises(SchemaError, match=r"no valid row left.*'customer_id'.*'amount'"):
        validate_transactions(frame, "tx.csv")


def test_row_numbers_follow_an_integer_index() -> None:
    frame = _tx(amount=[1.0, "bad", 3.0, 4.0])
    frame.index = [10, 11, 12, 13]  # e.g. a slice of a bigger file
    report = CleaningReport()
    validate_transactions(frame, "tx.csv", report=report)
    assert "(rows 12)" in report.lines()[1]


def test_missing_required_column_lists_columns_and_flag() -> None:
    frame = _tx().rename(columns={"customer_id": "CustomerID"})
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv")
    message = str(err.value)
    assert "tx.csv: required column 'customer_id' not found" in message
    assert "'CustomerID', 'timestamp', 'amount'" in message
    assert "--customer-col" in message


def test_mapped_column_that_is_absent() -> None:
    with pytest.raises(SchemaError, match=r"'Qty' not found.*--quantity-col"):
        validate_transactions(_tx(), "tx.csv", ColumnMap(quantity="Qty"))


def test_empty_frame_raises() -> None:
    with pytest.raises(SchemaError, match=r"tx\.csv: no data rows"):
        validate_transactions(_tx().iloc[:0], "tx.csv")


def test_column_mapping_and_optional_columns() -> None:
    frame = pd.DataFrame(
        {
            "Cust": [1, 2],
            "When": ["2024-01-01 10:00", "2024-01-02 11:00"],
            "Spend": [5, 6],
            "Invoice": [100, 101],
            "Qty": ["2", "x"],
            "Sku": ["A1", "B2"],
            "note": ["dropped", "dropped"],
        }
    )
    columns = ColumnMap(
        customer="Cust", time="When", amount="Spend", order="Invoice", quantity="Qty", item="Sku"
    )
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", columns, report=report)
    assert list(out.columns) == [
        "customer_id",
        "timestamp",
        "amount",
        "order_id",
        "quantity",
        "item_id",
    ]
    assert out["order_id"].tolist() == ["100", "101"]
    assert out["quantity"].iloc[0] == 2.0 and np.isnan(out["quantity"].iloc[1])
    assert report.count("transactions", "invalid_quantity") == 1


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


def test_aware_timestamps_are_converted_to_utc() -> None:
    times = ["2024-03-01 12:00+02:00", "2024-03-01 12:00-05:00", "2024-03-01 12:00Z", "x"]
    out = parse_timestamps(pd.Series(times), source_timezone="Asia/Tokyo")
    expected = ["2024-03-01 10:00", "2024-03-01 17:00", "2024-03-01 12:00"]
    assert out.iloc[:3].tolist() == [pd.Timestamp(t) for t in expected]
    assert pd.isna(out.iloc[3])
    assert out.dtype == "datetime64[us]"


def test_naive_timestamps_are_localised_in_the_source_zone() -> None:
    # London is UTC+0 in winter and UTC+1 in summer
    times = pd.Series(["2011-01-10 09:00", "2011-07-10 09:00"])
    out = parse_timestamps(times, source_timezone="Europe/London")
    assert out.tolist() == [pd.Timestamp("2011-01-10 09:00"), pd.Timestamp("2011-07-10 08:00")]
    report = CleaningReport()
    frame = _tx(timestamp=["2024-07-01 00:30"] * 4)
    options = CleaningOptions(source_timezone="America/New_York")
    out = validate_transactions(frame, "tx.csv", options=options, report=report)
    assert (out["timestamp"] == pd.Timestamp("2024-07-01 04:30")).all()


def test_mixed_naive_and_aware_and_formats() -> None:
    times = pd.Series(["2024-01-01 10:00+01:00", "2024-01-02 10:00", "03/01/2024", None])
    out = parse_timestamps(times)
    assert out.iloc[:3].tolist() == [
        pd.Timestamp("2024-01-01 09:00"),
        pd.Timestamp("2024-01-02 10:00"),
        pd.Timestamp("2024-03-01"),
    ]


def test_typed_datetimes_epochs_and_yyyymmdd() -> None:
    aware = pd.Series(pd.to_datetime(["2024-01-01 12:00"]).tz_localize("Europe/Paris"))
    assert parse_timestamps(aware).iloc[0] == pd.Timestamp("2024-01-01 11:00")
    assert parse_timestamps(pd.Series([1511544070])).iloc[0] == pd.Timestamp("2017-11-24 17:21:10")
    assert parse_timestamps(pd.Series(["1511544070000"])).iloc[0] == pd.Timestamp(
        "2017-11-24 17:21:10"
    )
    dates = parse_timestamps(pd.Series([19970101, 19970230]))
    assert dates.iloc[0] == pd.Timestamp("1997-01-01") and pd.isna(dates.iloc[1])
    assert parse_timestamps(pd.Series(["19970101"])).iloc[0] == pd.Timestamp("1997-01-01")


def test_events_types_values_and_rules() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "c", "c"],
            "timestamp": ["2024-01-01"] * 6,
            "event_type": [" View ", "PV", "Add-To-Cart", "wishlist", None, "purchase"],
            "value": ["1.5", "x", None, "2", "3", "4"],
        }
    )
    report = CleaningReport()
    out = validate_events(frame, "ev.csv", report=report)
    assert out["event_type"].tolist() == ["view", "view", "cart", "wishlist", "purchase"]
    assert out["value"].dtype == "float64"
    assert report.count("events", "invalid_event_type") == 1
    assert report.count("events", "invalid_value") == 1
    assert report.count("events", "event_type_aliases") == 2
    assert report.count("events", "unknown_event_types") == 1

    dropped = CleaningReport()
    options = CleaningOptions(unknown_event_types="drop")
    out = validate_events(frame, "ev.csv", options=options, report=dropped)
    assert "wishlist" not in out["event_type"].tolist()
    assert "dropped: wishlist (1)" in " ".join(dropped.lines())


def test_events_missing_event_column() -> None:
    frame = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "kind": ["view"]})
    with pytest.raises(SchemaError, match=r"'event_type' not found.*'kind'.*--event-col"):
        validate_events(frame, "ev.csv")
    out = validate_events(frame, "ev.csv", ColumnMap(event="kind"))
    assert out["event_type"].tolist() == ["view"]


def test_profiles_one_row_per_customer_types_kept() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 1, None],
            "age": ["30", "41", "31", "50"],
            "city": ["Paris", "Lyon", "Nice", "Rome"],
            "size": ["1", "5+", "2", "3"],
            "score": [0.5, None, 1, 2],
        }
    )
    report = CleaningReport()
    out = validate_profiles(frame, "profiles.csv", report=report)
    assert out["customer_id"].tolist() == ["1", "2"]
    assert out.loc[0, "age"] == 31.0 and out["age"].dtype == "float64"  # last row wins
    assert out["city"].tolist() == ["Nice", "Lyon"] and out["city"].dtype == "str"
    assert out["size"].tolist() == ["2", "5+"]
    assert out["score"].dtype == "float64"
    assert report.count("profiles", "duplicate_customers") == 1
    assert report.count("profiles", "invalid_customer_id") == 1


def test_load_customer_data_from_files(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(
        "cust,when,spend\n"
        "007,2024-01-01 10:00,10\n"
        ",2024-01-02 10:00,5\n"
        "008,2024-01-03 10:00,abc\n"
        "007,2024-02-01 10:00,-4\n"
    )
    (tmp_path / "ev.csv").write_text("cust,when,event_type\n007,2024-01-01 09:00,view\n")
    (tmp_path / "pr.csv").write_text("cust,channel\n007,web\n009,store\n")
    columns = ColumnMap(customer="cust", time="when", amount="spend")
    data, report = load_customer_data(
        tmp_path / "tx.csv", tmp_path / "ev.csv", tmp_path / "pr.csv", columns=columns
    )
    assert data.transactions["customer_id"].tolist() == ["007", "007"]
    assert data.transactions["amount"].tolist() == [10.0, -4.0]
    assert data.events is not None and data.events["customer_id"].tolist() == ["007"]
    assert data.profiles is not None and data.profiles["channel"].tolist() == ["web", "store"]
    text = "\n".join(report.lines())
    assert (
        f"{tmp_path / 'tx.csv'}: column 'cust' (customer_id) must hold an id; 1 of 4 rows" in text
    )
    assert "(rows 2)" in text and "(rows 3)" in text
    assert report.count("transactions", "returns") == 1


def test_load_customer_data_all_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\na,never,1\nb,later,2\n")
    with pytest.raises(SchemaError) as err:
        load_customer_data(path)
    assert str(err.value) == (
        f"{path}: column 'timestamp' must be a date/time; 2 of 2 rows are not (rows 1, 2)"
    )


def test_amount_text_with_currency_and_thousands() -> None:
    frame = _tx(amount=["$1,234.50", "-£3", "10,5", " 7 "])
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", report=report)
    assert out["amount"].tolist() == [1234.5, -3.0, 7.0]
    assert "(rows 3)" in " ".join(report.lines())  # a decimal comma is not guessed at
