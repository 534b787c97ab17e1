"""Validation rules: each rejection is counted with example rows; unusable inputs raise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.validate import (
    EPOCH_FLOOR_SECONDS,
    TIMESTAMP_RANGE,
    as_ids,
    load_customer_data,
    parse_timestamps,
    validate_events,
    validate_profiles,
    validate_transactions,
)
from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.timeframe import MAX_HORIZON_DAYS


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
    # "03/01/2024" alone used to be read month-first silently; its order now needs evidence
    times = pd.Series(["2024-01-01 10:00+01:00", "2024-01-02 10:00", "03/01/2024", None])
    out = parse_timestamps(pd.concat([times, pd.Series(["12/31/2023"])], ignore_index=True))
    assert out.iloc[:3].tolist() == [
        pd.Timestamp("2024-01-01 09:00"),
        pd.Timestamp("2024-01-02 10:00"),
        pd.Timestamp("2024-03-01"),
    ]
    assert parse_timestamps(times, day_first=True).iloc[2] == pd.Timestamp("2024-01-03")
    with pytest.raises(SchemaError, match="day/month order cannot be told"):
        parse_timestamps(times)


DAYS = pd.date_range("2023-01-01", "2023-12-31", freq="7D")


@pytest.mark.parametrize(
    ("fmt", "order"),
    [
        ("%d/%m/%Y", "day-first"),
        ("%m/%d/%Y", "month-first"),
        ("%d.%m.%Y", "day-first"),
        ("%d-%m-%y", "day-first"),
        ("%m/%d/%y %H:%M", "month-first"),
        ("%d/%m/%Y %H:%M:%S", "day-first"),
        ("%-d/%-m/%Y", "day-first"),
        ("%m/%d/%Y, %H:%M", "month-first"),
    ],
)
def test_numeric_date_order_is_read_from_the_unambiguous_rows(fmt: str, order: str) -> None:
    """A 31/12/2023 file used to train with every ambiguous date (day != month) swapped."""
    stamps = DAYS + pd.Timedelta(hours=13, minutes=5, seconds=7)
    frame = _tx(
        customer_id=["a"] * len(DAYS), timestamp=list(stamps.strftime(fmt)), amount=[1.0] * 53
    )
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", report=report)
    expected = stamps.floor("s" if "%S" in fmt else "min" if "%M" in fmt else "D")
    assert out["timestamp"].tolist() == list(expected)
    assert report.count("transactions", "date_order") == len(DAYS)
    detail = report.to_frame().set_index("step").loc["date_order", "detail"]
    assert detail.startswith(f"tx.csv: column 'timestamp': dates read {order}")


def test_iso_dates_are_unaffected_and_mix_with_day_first_ones() -> None:
    times = ["2024-01-02", "2024-01-02 10:00", "13/01/2024", "02/01/2024", "2024-02-01T10:00Z"]
    out = parse_timestamps(pd.Series(times))
    assert out.dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-02",
        "2024-01-02",
        "2024-01-13",
        "2024-01-02",
        "2024-02-01",
    ]
    assert parse_timestamps(pd.Series(["2024-01-02", "2024-03-04"])).dt.month.tolist() == [1, 3]


def test_dates_whose_order_cannot_be_told_are_refused() -> None:
    frame = _tx(timestamp=["03/04/2024", "05/06/2024", "07/07/2024", "2024-01-04"])
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv")
    assert str(err.value) == (
        "tx.csv: column 'timestamp' has dates whose day/month order cannot be told: 2 of 3 "
        "rows like '03/04/2024' have day and month 12 or less (rows 1, 2) and no row has a "
        "field over 12; give the format with --date-format (e.g. '%d/%m/%Y' or '%m/%d/%Y')"
    )
    same = validate_transactions(
        _tx(timestamp=["01/01/2024", "02/02/2024", "3.3.24", "4/4/24"]), "x"
    )
    assert same["timestamp"].dt.strftime("%m%d").tolist() == ["0101", "0202", "0303", "0404"]


def test_contradictory_date_orders_are_refused() -> None:
    frame = _tx(timestamp=["31/01/2024 10:00", "01/31/2024 10:00", "02/01/2024 10:00", "x"])
    frame.index = [100, 101, 102, 103]
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv", ColumnMap())
    assert str(err.value) == (
        "tx.csv: column 'timestamp' mixes day-first and month-first dates: 1 rows have a first "
        "field over 12 (rows 101; e.g. '31/01/2024 10:00') and 1 a second field over 12 "
        "(rows 102; e.g. '01/31/2024 10:00'); give the format with --date-format (e.g. "
        "'%d/%m/%Y %H:%M' or '%m/%d/%Y %H:%M')"
    )


def test_an_explicit_date_format_is_honoured() -> None:
    frame = _tx(timestamp=["03/04/2024", "05/06/2024", "2024-01-04", "31/12/2024"])
    options = CleaningOptions(date_format="%d/%m/%Y")
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", options=options, report=report)
    assert out["timestamp"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-04-03",
        "2024-06-05",
        "2024-12-31",
    ]
    assert report.count("transactions", "date_order") == 0
    detail = report.to_frame().set_index("step").loc["invalid_timestamp", "detail"]
    assert detail == (
        "tx.csv: column 'timestamp' must be a date/time in the format '%d/%m/%Y'; 1 of 4 rows "
        "are not (rows 3); dropped"
    )
    months = CleaningOptions(date_format="%m/%d/%Y")
    out = validate_transactions(frame.iloc[:2], "tx.csv", options=months)
    assert out["timestamp"].dt.month.tolist() == [3, 5]
    ints = validate_transactions(
        _tx(timestamp=[20240131, 20240201, 20240202, 20240203]),
        "x",
        options=CleaningOptions(date_format="%Y%m%d"),
    )
    assert ints["timestamp"].iloc[0] == pd.Timestamp("2024-01-31")


def test_an_invalid_date_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="date format '%Q' is not a strftime format"):
        CleaningOptions(date_format="%Q")
    with pytest.raises(ConfigError, match="'DD/MM/YYYY'"):
        CleaningOptions(date_format="DD/MM/YYYY")


def test_day_first_file_through_load_customer_data(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    lines = [f"c{i % 3},{d:%d/%m/%Y},{i}" for i, d in enumerate(DAYS)]
    path.write_text("customer_id,date,amount\n" + "\n".join(lines) + "\n")
    data, report = load_customer_data(path, columns=ColumnMap(time="date"))
    assert sorted(data.transactions["timestamp"]) == list(DAYS)
    assert report.count("transactions", "date_order") == len(DAYS)


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


@pytest.mark.parametrize(
    "when", ["1600-01-01", "9999-12-31 23:59", "0001-01-01", "2200-01-01", "1677-06-01"]
)
def test_times_outside_the_range_are_dropped_and_counted(when: str) -> None:
    """Year 1600 or 9999 used to pass validation and crash a later nanosecond cast."""
    report = CleaningReport()
    out = validate_transactions(
        _tx(timestamp=["2024-01-01", when, "2024-01-03", "2024-01-04"]), "tx.csv", report=report
    )
    low, high = TIMESTAMP_RANGE
    assert len(out) == 3 and out["timestamp"].between(low, high).all()
    detail = report.to_frame().set_index("step").loc["timestamp_out_of_range", "detail"]
    assert detail == (
        f"tx.csv: column 'timestamp' must lie between {low:%Y-%m-%d} and {high:%Y-%m-%d}; "
        "1 of 4 rows do not (rows 2); dropped"
    )
    assert (high + pd.Timedelta(days=MAX_HORIZON_DAYS)) <= pd.Timestamp.max


def test_all_times_outside_the_range_raise() -> None:
    frame = _tx(timestamp=["1600-01-01", "1601-01-01", "9999-12-31", "1500-01-01"])
    with pytest.raises(SchemaError, match=r"'timestamp' must lie between .* 4 of 4 rows do not"):
        validate_transactions(frame, "tx.csv")


def test_typed_times_outside_the_range() -> None:
    stamps = pd.Series(pd.to_datetime(["2024-01-01", "1600-01-01", "2024-01-03", "2024-01-04"]))
    report = CleaningReport()
    out = validate_transactions(_tx(timestamp=stamps.astype("datetime64[s]")), "t", report=report)
    assert len(out) == 3 and report.count("transactions", "timestamp_out_of_range") == 1


@pytest.mark.parametrize("amounts", [[10.5, 20.0, 30.25, 40.0], ["10.5", "20", "30.25", "40"]])
def test_a_numeric_column_mapped_as_time_is_refused(amounts: list[object]) -> None:
    """--time-col amount used to train on times in the first minute of 1970."""
    frame = _tx(amount=amounts)
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv", ColumnMap(time="amount", amount="amount"))
    assert str(err.value) == (
        "tx.csv: column 'amount' (timestamp) must be a date/time (numbers are read as Unix "
        "epoch times from 1973-03-03 on, or YYYYMMDD dates); 4 of 4 rows are not "
        "(rows 1, 2, 3, 4)"
    )


def test_epoch_times_below_the_floor_are_invalid() -> None:
    out = parse_timestamps(pd.Series([1511544070, 0, 1511544071, -5, EPOCH_FLOOR_SECONDS]))
    assert out.isna().tolist() == [False, True, False, True, False]
    millis = parse_timestamps(pd.Series([1511544070000, 0, 1511544070001]))
    assert millis.isna().tolist() == [False, True, False]


@pytest.mark.parametrize("late", ["2030-01-01", "2024-06-03 00:00"])
def test_rows_after_now_are_dropped_with_counts_and_examples(late: str) -> None:
    """One row dated 2030 used to become every forecast's default as-of."""
    frame = _tx(timestamp=["2024-05-01", late, "2024-06-02 11:00", "9999-12-31"])
    report = CleaningReport()
    options = CleaningOptions(now=pd.Timestamp("2024-06-01 12:00"))
    out = validate_transactions(frame, "tx.csv", options=options, report=report)
    assert out["timestamp"].max() == pd.Timestamp("2024-06-02 11:00")  # inside the tolerance
    assert report.count("transactions", "future_timestamp") == 1
    assert report.count("transactions", "timestamp_out_of_range") == 1  # 9999, counted once
    detail = report.to_frame().set_index("step").loc["future_timestamp", "detail"]
    assert detail == (
        "tx.csv: column 'timestamp' must not lie after now + 1 day (2024-06-02 12:00:00, UTC); "
        "1 of 4 rows do (rows 2); dropped"
    )


def test_now_tolerance_and_zone() -> None:
    frame = _tx(timestamp=["2024-05-01", "2024-06-01 13:00", "2024-06-01 11:30", "2024-04-01"])
    paris = pd.Timestamp("2024-06-01 14:00", tz="Europe/Paris")  # 12:00 UTC
    options = CleaningOptions(now=paris, future_tolerance=pd.Timedelta(0))
    assert options.now == pd.Timestamp("2024-06-01 12:00")
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", options=options, report=report)
    assert len(out) == 3 and "after now (2024-06-01 12:00:00, UTC)" in " ".join(report.lines())
    assert report.count("transactions", "future_timestamp") == 1
    assert validate_transactions(frame, "tx.csv").shape[0] == 4  # now=None: no check
    events = pd.DataFrame(
        {"customer_id": ["a", "b"], "timestamp": ["2024-05-01", "2031-01-01"], "event_type": "view"}
    )
    report = CleaningReport()
    out = validate_events(events, "ev.csv", options=options, report=report)
    assert len(out) == 1 and report.count("events", "future_timestamp") == 1
    with pytest.raises(SchemaError, match=r"must not lie after now .* 4 of 4 rows do"):
        validate_transactions(frame, "tx.csv", options=CleaningOptions(now="2020-01-01"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"now": "soon"}, "now must be a timestamp"),
        ({"future_tolerance": pd.Timedelta(days=-1)}, "future tolerance must be 0 or more"),
        ({"future_tolerance": "a while"}, "future tolerance must be a duration"),
    ],
)
def test_invalid_now_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CleaningOptions(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("huge", [1e308, -2e12, "1e13", "inf"])
def test_implausible_amounts_are_dropped_and_counted(huge: object) -> None:
    report = CleaningReport()
    out = validate_transactions(_tx(amount=[10.0, huge, 30.0, 1e12]), "tx.csv", report=report)
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


def test_repeated_columns_of_a_frame_are_refused() -> None:
    frame = pd.concat([_tx(), _tx()[["amount"]]], axis=1)
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv")
    assert str(err.value) == (
        "tx.csv: column names must be unique; 'amount' appears 2 times (columns 3, 4)"
    )


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_csv_through_load_customer_data(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        f"cust{sep}when{sep}spend\n007{sep}31/01/2024{sep}10.5\n8{sep}02/01/2024{sep}3\n"
    )
    data, _ = load_customer_data(
        path, columns=ColumnMap(customer="cust", time="when", amount="spend")
    )
    tx = data.transactions
    assert tx["customer_id"].tolist() == ["007", "8"]
    assert tx["timestamp"].tolist() == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-01-02")]


def test_duplicate_amount_column_in_a_file_is_refused(tmp_path: Path) -> None:
    """pandas renamed the second 'amount' to 'amount.1' and the first one was used."""
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount,amount\na,2024-01-01,1,100\n")
    with pytest.raises(SchemaError, match=r"'amount' appears 2 times \(columns 3, 4\)"):
        load_customer_data(path)


def test_decimal_commas_are_not_read_and_make_comma_groups_ambiguous() -> None:
    """A semicolon file (now read) often writes 12,50: then 1,250 may be 1.25, not 1250."""
    report = CleaningReport()
    out = validate_transactions(_tx(amount=["12,50", "1,250", "3", "7.5"]), "tx.csv", report=report)
    assert out["amount"].tolist() == [3.0, 7.5]
    detail = report.to_frame().set_index("step").loc["invalid_amount", "detail"]
    assert detail == (
        "tx.csv: column 'amount' must be numeric (decimal commas such as '12,50' are not read); "
        "2 of 4 rows are not (rows 1, 2); dropped"
    )
    plain = validate_transactions(_tx(amount=["1,250", "3", "€1.234,5", "2,125.5"]), "tx.csv")
    assert plain["amount"].tolist() == [3.0, 2125.5]
    us = validate_transactions(_tx(amount=["1,250", "3", "$1,234.50", "2"]), "tx.csv")
    assert us["amount"].tolist() == [1250.0, 3.0, 1234.5, 2.0]
