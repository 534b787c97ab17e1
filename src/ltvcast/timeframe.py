"""Time vocabulary shared by every layer: horizons, as-of times, naive-UTC timestamps.

Conventions used everywhere in ltvcast:

- Times are tz-naive UTC (:func:`to_naive_utc`); aware inputs are converted at the boundary.
- ``as_of`` is inclusive: a customer's history is every row with ``timestamp <= as_of``.
  A bare date ``D`` means through the end of day ``D``.
- The forecast window of a horizon ``h`` is ``(as_of, as_of + h]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeVar

import pandas as pd

from ltvcast.exceptions import ConfigError

TimeLike = TypeVar("TimeLike", pd.Timestamp, pd.DatetimeIndex, pd.Series)

_UNIT_DAYS = {"d": 1.0, "w": 7.0, "m": 365.25 / 12.0, "y": 365.25}
_UNIT_NAMES = {"d": "day", "w": "week", "m": "month", "y": "year"}
_HORIZON_RE = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$", re.IGNORECASE)
#: The longest horizon accepted (100 years): beyond it calendar arithmetic overflows.
MAX_HORIZON_DAYS = 36525


@dataclass(frozen=True)
class Horizon:
    """A forecast horizon such as ``30d``, ``13w``, ``6m`` or ``1y``.

    Months and years are calendar offsets (``as_of + 6m`` lands on the same day of the month).
    """

    count: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"

    @property
    def offset(self) -> pd.DateOffset:
        """The calendar offset this horizon adds to a time."""
        if self.unit == "m":
            return pd.DateOffset(months=self.count)
        if self.unit == "y":
            return pd.DateOffset(years=self.count)
        return pd.DateOffset(days=self.count * int(_UNIT_DAYS[self.unit]))

    @property
    def days(self) -> float:
        """Nominal length in days (months are 30.44 days, years 365.25)."""
        return self.count * _UNIT_DAYS[self.unit]

    def end(self, start: pd.Timestamp) -> pd.Timestamp:
        """End (inclusive) of the window that starts (exclusive) at ``start``."""
        return pd.Timestamp(start + self.offset)

    def start(self, end: pd.Timestamp) -> pd.Timestamp:
        """Start (exclusive) of the window that ends (inclusive) at ``end``."""
        return pd.Timestamp(end - self.offset)

    def describe(self) -> str:
        """Human form, e.g. ``13 weeks``."""
        name = _UNIT_NAMES[self.unit]
        return f"{self.count} {name}{'s' if self.count != 1 else ''}"


def parse_horizon(text: str | Horizon) -> Horizon:
    """Parse ``"30d"``, ``"13w"``, ``"6m"`` or ``"1y"`` into a :class:`Horizon`.

    Raises
    ------
    ConfigError
        When the text is not a positive count followed by one of d, w, m, y.
    """
    if isinstance(text, Horizon):
        return text
    match = _HORIZON_RE.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(
            f"horizon must be a positive count and a unit d, w, m or y (e.g. 90d, 13w, 6m, 1y); "
            f"got {text!r}"
        )
    horizon = Horizon(int(match.group(1)), match.group(2).lower())
    if horizon.days > MAX_HORIZON_DAYS:
        raise ConfigError(
            f"horizon must be at most {MAX_HORIZON_DAYS // 365.25:.0f} years; got {text!r}"
        )
    return horizon


#: The most horizons one curve request may list.
MAX_HORIZONS = 24


def parse_horizons(text: str | Sequence[str | Horizon]) -> tuple[Horizon, ...]:
    """``"30d,90d,365d"`` (or a sequence) as distinct horizons, shortest first.

    Raises
    ------
    ConfigError
        For an empty list, more than :data:`MAX_HORIZONS`, a bad horizon, or one listed
        twice (``4w`` and ``28d`` are the same horizon).
    """
    parts = text.split(",") if isinstance(text, str) else list(text)
    if not parts or len(parts) > MAX_HORIZONS:
        raise ConfigError(
            f"horizons must list 1 to {MAX_HORIZONS} horizons such as 30d,90d; got {text!r:.80}"
        )
    horizons = sorted(
        (parse_horizon(p.strip() if isinstance(p, str) else p) for p in parts),
        key=lambda h: h.days,
    )
    for first, second in pairwise(horizons):
        if first.days == second.days:
            raise ConfigError(f"horizons list the same horizon twice ({first} and {second})")
    return tuple(horizons)


def parse_as_of(text: str | pd.Timestamp | None, default: pd.Timestamp) -> pd.Timestamp:
    """Parse an as-of time; a bare date means through the end of that day.

    Parameters
    ----------
    text
        ``None`` (use ``default``), a date ``YYYY-MM-DD`` or any timestamp pandas parses.
        Time-zone-aware values are converted to UTC and made naive, like the data.
    default
        Returned when ``text`` is ``None`` (usually the data's last timestamp).
    """
    if text is None:
        return pd.Timestamp(default)
    if isinstance(text, pd.Timestamp):
        stamp = text
        is_date = False
    else:
        raw = str(text).strip()
        try:
            stamp = pd.Timestamp(raw)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"as_of must be a date or timestamp; got {text!r}") from err
        is_date = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw))
    if pd.isna(stamp):
        raise ConfigError(f"as_of must be a date or timestamp; got {text!r}")
    stamp = to_naive_utc(pd.Timestamp(stamp))
    if is_date:
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return pd.Timestamp(stamp)


def to_naive_utc(stamp: TimeLike) -> TimeLike:
    """``stamp`` (a timestamp, an index of them or a datetime column) in tz-naive UTC: aware
    times are converted, naive ones are taken as UTC already."""
    if isinstance(stamp, pd.Series):
        if isinstance(stamp.dtype, pd.DatetimeTZDtype):
            return stamp.dt.tz_convert("UTC").dt.tz_localize(None)
        return stamp
    if stamp.tzinfo is None:
        return stamp
    return stamp.tz_convert("UTC").tz_localize(None)
