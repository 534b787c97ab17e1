"""Time windows: horizons, as-of times, backtest origins and horizon labels.

Conventions used everywhere in ltvcast:

- ``as_of`` is inclusive: a customer's history is every row with ``timestamp <= as_of``.
  A bare date ``D`` means through the end of day ``D``.
- The forecast window of a horizon ``h`` is ``(as_of, as_of + h]``.
- A *purchase* is a distinct customer-day with a transaction (the BTYD convention, which
  makes counts comparable across stores that split orders into lines).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, TIMESTAMP
from ltvcast.exceptions import ConfigError

_UNIT_DAYS = {"d": 1.0, "w": 7.0, "m": 365.25 / 12.0, "y": 365.25}
_UNIT_NAMES = {"d": "day", "w": "week", "m": "month", "y": "year"}
_HORIZON_RE = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$", re.IGNORECASE)


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
    return Horizon(int(match.group(1)), match.group(2).lower())


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
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if is_date:
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return pd.Timestamp(stamp)


#: History that must precede an inner backtest's cutoff or a training origin.
MIN_HISTORY_DAYS = 28


def backtest_origins(
    first: pd.Timestamp,
    as_of: pd.Timestamp,
    horizon: Horizon,
    *,
    max_origins: int = 4,
    step: Horizon | None = None,
    min_history: pd.Timedelta | None = None,
) -> list[pd.Timestamp]:
    """Training origins whose whole label window lies inside the data up to ``as_of``.

    The latest origin is ``as_of - horizon``; earlier ones step back by ``step`` (default:
    the horizon itself, so label windows do not overlap) while at least ``min_history``
    (default: 28 days) of data precedes them.

    Returns
    -------
    list of Timestamp
        Ascending; empty when the history is shorter than one horizon plus ``min_history``.
    """
    step = step or horizon
    min_history = pd.Timedelta(days=MIN_HISTORY_DAYS) if min_history is None else min_history
    origins: list[pd.Timestamp] = []
    origin = horizon.start(as_of)
    while len(origins) < max_origins and origin >= first + min_history:
        origins.append(origin)
        origin = step.start(origin)
    return sorted(origins)


def inner_window(
    first: pd.Timestamp, as_of: pd.Timestamp, horizon: Horizon
) -> tuple[pd.Timestamp, Horizon] | None:
    """Cutoff and horizon of a backtest strictly inside the data up to ``as_of``.

    The cutoff is ``as_of - horizon`` when at least :data:`MIN_HISTORY_DAYS` of history
    precede it. A shorter history gets the longest inner horizon that leaves it both halves
    of the history (at most ``history - MIN_HISTORY_DAYS`` days); ``None`` when even one day
    does not fit.
    """
    min_history = pd.Timedelta(days=MIN_HISTORY_DAYS)
    cutoff = horizon.start(as_of)
    if cutoff >= first + min_history:
        return cutoff, horizon
    history_days = (as_of - first).days
    inner_days = min(history_days // 2, history_days - MIN_HISTORY_DAYS)
    if inner_days < 1:
        return None
    inner = Horizon(inner_days, "d")
    return inner.start(as_of), inner


def purchase_days(transactions: pd.DataFrame) -> pd.DataFrame:
    """Collapse transactions to one row per customer-day: the unit BTYD models count.

    A customer-day is a *purchase* when it holds at least one row with ``amount >= 0``
    (a day of returns only is not a purchase, a free item is). ``amount`` is the day's net
    spend, returns included.

    Returns
    -------
    DataFrame
        Columns ``customer_id``, ``day`` (midnight), ``amount`` (net) and bool ``is_purchase``.
    """
    amounts = transactions[AMOUNT].to_numpy(dtype=np.float64)
    days = transactions[TIMESTAMP].to_numpy().astype("datetime64[D]").astype(np.int64)
    codes, _ = pd.factorize(transactions[CUSTOMER_ID])
    span = int(days.max() - days.min()) + 1 if len(days) else 1
    # one integer per customer-day; groups are numbered in order of first appearance
    groups, _ = pd.factorize(codes.astype(np.int64) * span + (days - days.min(initial=0)))
    # a group's first row is where the running maximum of the group numbers steps up
    seen = np.maximum.accumulate(groups) if len(groups) else groups
    first_rows = np.flatnonzero(np.r_[len(groups) > 0, groups[1:] > seen[:-1]][: len(groups)])
    n = len(first_rows)
    return pd.DataFrame(
        {
            CUSTOMER_ID: transactions[CUSTOMER_ID].take(first_rows).to_numpy(),
            "day": pd.to_datetime(days[first_rows], unit="D").as_unit("us"),
            "amount": np.bincount(groups, weights=amounts, minlength=n).astype(np.float64),
            "is_purchase": np.bincount(groups, weights=amounts >= 0, minlength=n) > 0,
        }
    )


def horizon_labels(
    transactions: pd.DataFrame,
    customers: pd.Index,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """Spend and purchases of each customer in the window ``(start, end]``.

    Returns
    -------
    DataFrame
        Indexed by ``customers`` (in their order) with float ``value`` (net spend) and
        ``purchases`` (purchase days, see :func:`purchase_days`); customers without rows
        get zeros.
    """
    times = transactions[TIMESTAMP]
    days = purchase_days(transactions.loc[(times > start) & (times <= end)])
    grouped = days.groupby(CUSTOMER_ID, sort=False)
    labels = pd.DataFrame(
        {"value": grouped["amount"].sum(), "purchases": grouped["is_purchase"].sum()}
    )
    labels = labels.reindex(customers).fillna(0.0).astype(np.float64)
    labels.index.name = CUSTOMER_ID
    return labels
