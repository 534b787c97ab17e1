"""The time column: zones, epochs, day/month order, the supported range and ``now``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.schemas import TIMESTAMP_RANGE
from ltvcast.data.times import EPOCH_FLOOR_SECONDS, date_order_at_stake, parse_timestamps
from ltvcast.data.validate import load_customer_data, validate_events, validate_transactions
from ltvcast.exceptions import SchemaError
from ltvcast.timeframe import MAX_HORIZON_DAYS


def test_aware_timestamps_are_converted_to_utc() -> None:
    times = ["2024-03-01 12:00+02:00", "2024-03-01 12:00-05:00", "2024-03-01 12:00Z", "x"]
    out = parse_timestamps(pd.Series(times), source_timezone="Asia/Tokyo")
    expected = ["2024-03-01 10:00", "2024-03-01 17:00", "2024-03-01 12:00"]
    assert out.iloc[:3].tolist() == [pd.Timestamp(t) for t in expected]
    assert pd.isna(out.iloc[3])
    assert out.dtype == "datetime64[us]"


def test_naive_timestamps_are_localised_in_the_source_zone(
    raw_tx: Callable[..., pd.DataFrame],
) -> None:
    # London is UTC+0 in winter and UTC+1 in summer
    times = pd.Series(["2011-01-10 09:00", "2011-07-10 09:00"])
    out = parse_timestamps(times, source_timezone="Europe/London")
    assert out.tolist() == [pd.Timestamp("2011-01-10 09:00"), pd.Timestamp("2011-07-10 08:00")]
    report = CleaningReport()
    frame = raw_tx(timestamp=["2024-07-01 00:30"] * 4)
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
def test_numeric_date_order_is_read_from_the_unambiguous_rows(
    raw_tx: Callable[..., pd.DataFrame], fmt: str, order: str
) -> None:
    """A 31/12/2023 file used to train with every ambiguous date (day != month) swapped."""
    stamps = DAYS + pd.Timedelta(hours=13, minutes=5, seconds=7)
    frame = raw_tx(
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


def test_dates_whose_order_cannot_be_told_are_refused(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = raw_tx(timestamp=["03/04/2024", "05/06/2024", "07/07/2024", "2024-01-04"])
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv")
    assert str(err.value) == (
        "tx.csv: column 'timestamp' has dates whose day/month order cannot be told: 2 of 3 "
        "rows like '03/04/2024' have day and month 12 or less (rows 1, 2) and no row has a "
        "field over 12; give the format with --date-format (e.g. '%d/%m/%Y' or '%m/%d/%Y')"
    )
    same = validate_transactions(
        raw_tx(timestamp=["01/01/2024", "02/02/2024", "3.3.24", "4/4/24"]), "x"
    )
    assert same["timestamp"].dt.strftime("%m%d").tolist() == ["0101", "0202", "0303", "0404"]


def test_contradictory_date_orders_are_refused(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = raw_tx(timestamp=["31/01/2024 10:00", "01/31/2024 10:00", "02/01/2024 10:00", "x"])
    frame.index = [100, 101, 102, 103]
    with pytest.raises(SchemaError) as err:
        validate_transactions(frame, "tx.csv", ColumnMap())
    assert str(err.value) == (
        "tx.csv: column 'timestamp' mixes day-first and month-first dates: 1 rows have a first "
        "field over 12 (rows 101; e.g. '31/01/2024 10:00') and 1 a second field over 12 "
        "(rows 102; e.g. '01/31/2024 10:00'); give the format with --date-format (e.g. "
        "'%d/%m/%Y %H:%M' or '%m/%d/%Y %H:%M')"
    )


def test_an_explicit_date_format_is_honoured(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = raw_tx(timestamp=["03/04/2024", "05/06/2024", "2024-01-04", "31/12/2024"])
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
        raw_tx(timestamp=[20240131, 20240201, 20240202, 20240203]),
        "x",
        options=CleaningOptions(date_format="%Y%m%d"),
    )
    assert ints["timestamp"].iloc[0] == pd.Timestamp("2024-01-31")


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


@pytest.mark.parametrize(
    "when", ["1600-01-01", "9999-12-31 23:59", "0001-01-01", "2200-01-01", "1677-06-01"]
)
def test_times_outside_the_range_are_dropped_and_counted(
    raw_tx: Callable[..., pd.DataFrame], when: str
) -> None:
    """Year 1600 or 9999 used to pass validation and crash a later nanosecond cast."""
    report = CleaningReport()
    out = validate_transactions(
        raw_tx(timestamp=["2024-01-01", when, "2024-01-03", "2024-01-04"]), "tx.csv", report=report
    )
    low, high = TIMESTAMP_RANGE
    assert len(out) == 3 and out["timestamp"].between(low, high).all()
    detail = report.to_frame().set_index("step").loc["timestamp_out_of_range", "detail"]
    assert detail == (
        f"tx.csv: column 'timestamp' must lie between {low:%Y-%m-%d} and {high:%Y-%m-%d}; "
        "1 of 4 rows do not (rows 2); dropped"
    )
    assert (high + pd.Timedelta(days=MAX_HORIZON_DAYS)) <= pd.Timestamp.max


def test_all_times_outside_the_range_raise(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = raw_tx(timestamp=["1600-01-01", "1601-01-01", "9999-12-31", "1500-01-01"])
    with pytest.raises(SchemaError, match=r"'timestamp' must lie between .* 4 of 4 rows do not"):
        validate_transactions(frame, "tx.csv")


def test_typed_times_outside_the_range(raw_tx: Callable[..., pd.DataFrame]) -> None:
    stamps = pd.Series(pd.to_datetime(["2024-01-01", "1600-01-01", "2024-01-03", "2024-01-04"]))
    report = CleaningReport()
    out = validate_transactions(
        raw_tx(timestamp=stamps.astype("datetime64[s]")), "t", report=report
    )
    assert len(out) == 3 and report.count("transactions", "timestamp_out_of_range") == 1


@pytest.mark.parametrize("amounts", [[10.5, 20.0, 30.25, 40.0], ["10.5", "20", "30.25", "40"]])
def test_a_numeric_column_mapped_as_time_is_refused(
    raw_tx: Callable[..., pd.DataFrame], amounts: list[object]
) -> None:
    """--time-col amount used to train on times in the first minute of 1970."""
    frame = raw_tx(amount=amounts)
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
def test_rows_after_now_are_dropped_with_counts_and_examples(
    raw_tx: Callable[..., pd.DataFrame], late: str
) -> None:
    """One row dated 2030 used to become every forecast's default as-of."""
    frame = raw_tx(timestamp=["2024-05-01", late, "2024-06-02 11:00", "9999-12-31"])
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


def test_now_tolerance_and_zone(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = raw_tx(timestamp=["2024-05-01", "2024-06-01 13:00", "2024-06-01 11:30", "2024-04-01"])
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


def test_plain_iso_times_read_as_pandas_reads_them() -> None:
    """The fast path for ``YYYY-MM-DD[ HH:MM[:SS]]`` gives pandas' times, NaT for impossible
    dates and clock times, and leaves other years and forms to pandas."""
    rng = np.random.default_rng(0)
    stamps = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 2e8, 500), unit="s")
    texts = [
        *stamps.strftime("%Y-%m-%d %H:%M:%S"),
        *stamps[:50].strftime("%Y-%m-%dT%H:%M"),
        *stamps[:50].strftime("%Y-%m-%d"),
        "2024-02-29 12:00:00", "2023-02-29 12:00:00", "2023-04-31", "2023-12-31 24:00:00",
        "2023-12-31 23:60:00", "2023-12-31 23:59:60", "2023-13-01", "2023-00-10", "2023-01-00",
        "1600-01-01", "2300-01-01", "2023-1-01 10:00:00", "2023-01-01 10:00:00.5",
        "2023/01/01 10:00:00", "2023-01-01x10:00:00", "abcd-ef-gh", "",
    ]  # fmt: skip
    got = parse_timestamps(pd.Series(texts, dtype=object))
    expected = pd.to_datetime(pd.Series(texts), errors="coerce", format="mixed")
    assert got.astype("datetime64[us]").equals(expected.astype("datetime64[us]"))


def test_date_order_at_stake() -> None:
    assert date_order_at_stake(pd.Series(["2024-01-03", "20240103"])) is None
    assert date_order_at_stake(pd.Series(["31/13/2023 25:61", "01/01/2024"])) is None
    assert date_order_at_stake(pd.Series(["13/01/2024", "02/01/2024"])) == "day-first"
    assert date_order_at_stake(pd.Series(["01/13/2024"])) == "month-first"
    assert date_order_at_stake(pd.Series(["13/01/2024", "01/13/2024"])) == "mixed"
    assert date_order_at_stake(pd.Series(["03/04/2024"])) == "ambiguous"
