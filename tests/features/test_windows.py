from __future__ import annotations

import itertools

import pandas as pd
import pytest

from ltvcast.data.purchases import horizon_labels, purchase_days
from ltvcast.exceptions import ConfigError
from ltvcast.features.windows import backtest_origins, inner_window
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon


@pytest.mark.parametrize(
    ("text", "count", "unit", "days"),
    [
        ("30d", 30, "d", 30.0),
        ("13w", 13, "w", 91.0),
        ("6M", 6, "m", 182.625),
        ("1y", 1, "y", 365.25),
    ],
)
def test_parse_horizon(text: str, count: int, unit: str, days: float) -> None:
    horizon = parse_horizon(text)
    assert (horizon.count, horizon.unit, horizon.days) == (count, unit, days)
    assert str(horizon) == f"{count}{unit}"


@pytest.mark.parametrize("text", ["", "0d", "-3w", "90", "3 fortnights", "1.5y"])
def test_parse_horizon_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="horizon"):
        parse_horizon(text)


def test_calendar_month_horizon_keeps_day_of_month() -> None:
    start = pd.Timestamp("2024-01-31 12:00")
    assert Horizon(1, "m").end(start) == pd.Timestamp("2024-02-29 12:00")
    assert Horizon(13, "w").end(start) == start + pd.Timedelta(days=91)
    assert Horizon(13, "w").start(Horizon(13, "w").end(start)) == start


def test_parse_as_of_date_means_end_of_day() -> None:
    as_of = parse_as_of("1998-03-31", pd.Timestamp("2000-01-01"))
    assert as_of.date() == pd.Timestamp("1998-03-31").date()
    assert as_of > pd.Timestamp("1998-03-31 23:59:59")
    assert as_of < pd.Timestamp("1998-04-01")


def test_parse_as_of_timestamp_default_and_timezone() -> None:
    default = pd.Timestamp("2024-05-01 10:00")
    assert parse_as_of(None, default) == default
    assert parse_as_of("2024-05-01 10:30", default) == pd.Timestamp("2024-05-01 10:30")
    assert parse_as_of("2024-05-01T12:00:00+02:00", default) == pd.Timestamp("2024-05-01 10:00")
    with pytest.raises(ConfigError, match="as_of"):
        parse_as_of("not a date", default)


def test_backtest_origins_step_back_inside_history() -> None:
    first = pd.Timestamp("1997-01-01")
    as_of = parse_as_of("1998-03-31", first)
    origins = backtest_origins(first, as_of, parse_horizon("13w"))
    assert origins == sorted(origins)
    assert origins[-1] == as_of - pd.Timedelta(weeks=13)
    assert all(o >= first + pd.Timedelta(days=28) for o in origins)
    assert all(b - a == pd.Timedelta(weeks=13) for a, b in itertools.pairwise(origins))


def test_backtest_origins_empty_when_history_shorter_than_horizon() -> None:
    first = pd.Timestamp("1997-01-01")
    as_of = parse_as_of("1997-09-30", first)
    assert backtest_origins(first, as_of, parse_horizon("39w")) == []


def test_purchase_days_net_returns_and_free_items() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "timestamp": pd.to_datetime(
                ["2024-01-01 09:00", "2024-01-01 17:00", "2024-01-03 10:00", "2024-01-02 11:00"]
            ),
            "amount": [10.0, -3.0, -5.0, 0.0],
        }
    )
    days = purchase_days(tx).set_index(["customer_id", "day"])
    assert days.loc[("a", pd.Timestamp("2024-01-01")), "amount"] == 7.0
    assert bool(days.loc[("a", pd.Timestamp("2024-01-01")), "is_purchase"])
    assert not bool(days.loc[("a", pd.Timestamp("2024-01-03")), "is_purchase"])
    assert bool(days.loc[("b", pd.Timestamp("2024-01-02")), "is_purchase"])


def test_horizon_labels_window_is_half_open(tiny_transactions: pd.DataFrame) -> None:
    customers = pd.Index(["a", "b", "c", "new"])
    start = pd.Timestamp("2024-01-15 09:00")  # excludes a's purchase at exactly 09:00
    end = pd.Timestamp("2024-02-20 18:00")  # includes c's purchase at exactly 18:00
    labels = horizon_labels(tiny_transactions, customers, start, end)
    assert list(labels.index) == list(customers)
    assert labels.loc["a"].tolist() == [30.0, 1.0]
    assert labels.loc["b"].tolist() == [0.0, 0.0]
    assert labels.loc["c"].tolist() == [100.0, 1.0]
    assert labels.loc["new"].tolist() == [0.0, 0.0]


def test_inner_window_rules() -> None:
    first = pd.Timestamp("1997-01-01")
    as_of = pd.Timestamp("1997-09-30 23:59:59.999999")
    # CDNOW calibration (272 days) with a 39-week horizon: half the history.
    assert inner_window(first, as_of, Horizon(39, "w")) == (
        as_of - pd.Timedelta(days=136),
        Horizon(136, "d"),
    )
    # Room for the full horizon plus 28 days.
    assert inner_window(first, as_of, Horizon(13, "w")) == (
        as_of - pd.Timedelta(weeks=13),
        Horizon(13, "w"),
    )
    # 50 days: half would leave under 28 days before the cutoff, so 22 days.
    assert inner_window(first, first + pd.Timedelta(days=50), Horizon(13, "w"))[1] == Horizon(
        22, "d"
    )
    assert inner_window(first, first + pd.Timedelta(days=28), Horizon(13, "w")) is None
