"""Horizon lists (:func:`ltvcast.timeframe.parse_horizons`)."""

from __future__ import annotations

import pytest

from ltvcast.exceptions import ConfigError
from ltvcast.timeframe import MAX_HORIZONS, parse_horizon, parse_horizons


def test_horizons_are_parsed_and_sorted_by_length() -> None:
    assert [str(h) for h in parse_horizons("1y, 30d,13w,6m")] == ["30d", "13w", "6m", "1y"]
    assert parse_horizons([parse_horizon("4w"), "2d"]) == (parse_horizon("2d"), parse_horizon("4w"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "positive count"),
        ("30d,,90d", "positive count"),
        ("30d,xx", "positive count"),
        ("4w,28d", "same horizon twice"),
        (",".join(f"{i}d" for i in range(1, MAX_HORIZONS + 2)), "1 to 24"),
    ],
)
def test_bad_horizon_lists_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_horizons(text)
