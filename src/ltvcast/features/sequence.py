"""Per-customer activity tensors (customers x periods x channels) at an as-of time.

The period grid is anchored at the end of the as-of day: with ``P = period_days`` the last
period holds the ``P`` days ending with the as-of day, the one before it the ``P`` days before
those, and so on (``n_periods`` columns, oldest first). Every customer shares the grid, so a
column is one calendar window for all of them and the labels of a backtest origin at the end
of column ``j`` are the next columns' sums. Purchase days follow
:func:`~ltvcast.data.purchases.purchase_days`.

Channels (``values``): ``purchases`` (purchase days in the period), ``log_spend`` (signed
``log1p`` of the net spend) and ``event:<type>`` (event counts) for each requested type.
Context (``context``, per column): time features that a sequence model needs at every step and
that a forecast needs at the last one; they use the customer's whole history, not only the
columns in the window (tenure, purchases to date, recency and mean spend are not capped): with
them, a capped window still carries BG/NBD's recency, frequency and age and Gamma-Gamma's
average spend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcast.data.purchases import purchase_days
from ltvcast.data.schemas import CUSTOMER_ID, EVENT_TYPE, TIMESTAMP, CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.timeframe import Horizon

PURCHASES = "purchases"
LOG_SPEND = "log_spend"
EVENT_PREFIX = "event:"
#: Per-column context features, in order.
CONTEXT_NAMES = (
    "log_tenure",
    "log_purchases_to_date",
    "log_recency",
    "log_mean_spend",
    "year_sin",
    "year_cos",
    "weekday_sin",
    "weekday_cos",
)


@dataclass(frozen=True)
class SequenceBatch:
    """Activity tensors of ``customers`` on a shared period grid ending at ``as_of``.

    Attributes
    ----------
    customers
        Sorted customer ids (rows).
    values
        float32 ``(customers, n_periods, channels)``; zero before a customer's first activity.
    lengths
        int64 periods from the customer's first activity to ``as_of`` (inclusive), capped at
        ``n_periods``: the last ``lengths[i]`` columns of row ``i`` are real history.
    context
        float32 ``(customers, n_periods, len(CONTEXT_NAMES))``: ``log1p`` of tenure (periods
        since first activity), purchases to date, periods since the last purchase (tenure
        when none) and net spend to date per purchase day (0 when none or negative), and
        sin/cos of the period's last day in the year and in the week.
    channels
        Names of the ``values`` channels.
    period_days
        Days per period.
    period_ends
        Exclusive end (midnight after the last day) of each column.
    """

    customers: pd.Index
    values: np.ndarray
    lengths: np.ndarray
    context: np.ndarray
    channels: tuple[str, ...]
    period_days: int
    period_ends: pd.DatetimeIndex

    @property
    def n_periods(self) -> int:
        """Number of columns."""
        return int(self.values.shape[1])

    @property
    def mask(self) -> np.ndarray:
        """bool ``(customers, n_periods)``: true on columns at or after the first activity."""
        cols = np.arange(self.n_periods)
        return cols[None, :] >= (self.n_periods - self.lengths)[:, None]

    @property
    def static(self) -> np.ndarray:
        """float32 ``(customers, len(CONTEXT_NAMES))``: the context at ``as_of`` (last column)."""
        return self.context[:, -1, :]


def choose_period_days(horizon: Horizon, span: pd.Timedelta) -> int:
    """Days per period: 1 for horizons up to 30 days or histories under 8 weeks, else 7."""
    return 1 if horizon.days <= 30 or span < pd.Timedelta(weeks=8) else 7


def horizon_periods(horizon: Horizon, period_days: int) -> int:
    """Whole periods closest to ``horizon`` (at least one)."""
    return max(1, round(horizon.days / period_days))


def period_matrix(
    data: CustomerData,
    as_of: pd.Timestamp,
    *,
    period_days: int,
    n_periods: int,
    event_types: Sequence[str] = (),
) -> SequenceBatch:
    """Activity tensors of every customer seen up to ``as_of``.

    Parameters
    ----------
    data
        Canonical data; rows after ``as_of`` are ignored.
    as_of
        Inclusive as-of time; the grid ends with its day.
    period_days, n_periods
        Grid of ``n_periods`` columns of ``period_days`` days.
    event_types
        Event types that get a channel (absent types give zero channels).

    Returns
    -------
    SequenceBatch
    """
    if period_days < 1 or n_periods < 1:
        raise ConfigError(
            f"period_days and n_periods must be positive; got {period_days} and {n_periods}"
        )
    past = data.until(as_of)
    customers = past.customers()
    n, t = len(customers), n_periods
    anchor = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    channels = (PURCHASES, LOG_SPEND, *(EVENT_PREFIX + e for e in event_types))
    values = np.zeros((n, t, len(channels)), dtype=np.float64)

    days = purchase_days(past.transactions)
    row = customers.get_indexer(pd.Index(days[CUSTOMER_ID]))
    back = _periods_back(days["day"], anchor, period_days)
    col = t - 1 - back
    inside = col >= 0
    flat = (row * t + col)[inside]
    values[..., 0] = np.bincount(
        flat, weights=days["is_purchase"].to_numpy(np.float64)[inside], minlength=n * t
    ).reshape(n, t)
    amount = days["amount"].to_numpy(np.float64)
    spend = np.bincount(flat, weights=amount[inside], minlength=n * t).reshape(n, t)
    values[..., 1] = np.sign(spend) * np.log1p(np.abs(spend))

    is_purchase = days["is_purchase"].to_numpy(bool)
    before = is_purchase & ~inside
    purchases_before = np.bincount(row[before], minlength=n).astype(np.float64)
    spend_before = np.bincount(row[~inside], weights=amount[~inside], minlength=n)
    last_before = np.full(n, -np.inf)
    np.maximum.at(last_before, row[before], col[before].astype(np.float64))

    first_day = days.groupby(CUSTOMER_ID, sort=False)["day"].min()
    if past.events is not None and len(past.events):
        events = past.events
        ev_day = events[TIMESTAMP].dt.floor("D")
        ev_row = customers.get_indexer(pd.Index(events[CUSTOMER_ID]))
        ev_col = t - 1 - _periods_back(ev_day, anchor, period_days)
        for k, event in enumerate(event_types):
            keep = (ev_col >= 0) & (events[EVENT_TYPE].to_numpy() == event)
            values[..., 2 + k] = np.bincount(
                ev_row[keep] * t + ev_col[keep], minlength=n * t
            ).reshape(n, t)
        first_event = ev_day.groupby(events[CUSTOMER_ID].to_numpy(), sort=False).min()
        first_day = pd.concat([first_day, first_event]).groupby(level=0).min()
    first = first_day.reindex(customers).to_numpy(dtype="datetime64[ns]")
    first_back = _periods_back(pd.Series(first), anchor, period_days)
    lengths = np.minimum(first_back + 1, t).astype(np.int64)

    period_ends = pd.DatetimeIndex(
        anchor - pd.to_timedelta(np.arange(t - 1, -1, -1) * period_days, unit="D")
    )
    context = _context(
        values[..., 0],
        spend,
        first,
        period_ends,
        (purchases_before, spend_before, last_before),
        period_days,
    )
    return SequenceBatch(
        customers=customers,
        values=values.astype(np.float32),
        lengths=lengths,
        context=context,
        channels=channels,
        period_days=period_days,
        period_ends=period_ends,
    )


def calendar_features(last_days: pd.DatetimeIndex) -> np.ndarray:
    """sin/cos of the position in the year and in the week, ``(len(last_days), 4)`` float64."""
    year = 2.0 * np.pi * (last_days.day_of_year.to_numpy() - 1) / 365.25
    week = 2.0 * np.pi * last_days.day_of_week.to_numpy() / 7.0
    return np.stack([np.sin(year), np.cos(year), np.sin(week), np.cos(week)], axis=1)


def _periods_back(days: pd.Series, anchor: pd.Timestamp, period_days: int) -> np.ndarray:
    """Whole periods between each day and the grid's end (0 for the last column)."""
    delta = (anchor - days).to_numpy(dtype="timedelta64[D]").astype(np.int64)
    return (delta - 1) // period_days


def _context(
    purchases: np.ndarray,
    spend: np.ndarray,
    first: np.ndarray,
    period_ends: pd.DatetimeIndex,
    before: tuple[np.ndarray, np.ndarray, np.ndarray],
    period_days: int,
) -> np.ndarray:
    """Context of every column; ``before``: purchases, spend and last purchase column before
    the grid (``-inf`` when none)."""
    purchases_before, spend_before, last_before = before
    n, t = purchases.shape
    ends = period_ends.to_numpy(dtype="datetime64[D]")
    tenure = (ends[None, :] - first.astype("datetime64[D]")[:, None]).astype(np.float64)
    tenure = np.clip(tenure / period_days, 0.0, None)
    to_date = purchases_before[:, None] + np.cumsum(purchases, axis=1)
    cols = np.arange(t, dtype=np.float64)
    last = np.where(purchases > 0, cols[None, :], -np.inf)
    last = np.maximum.accumulate(np.maximum(last, last_before[:, None]), axis=1)
    recency = np.where(np.isfinite(last), cols[None, :] - last, tenure)
    calendar = calendar_features(period_ends - pd.Timedelta(days=1))
    out = np.empty((n, t, len(CONTEXT_NAMES)), dtype=np.float32)
    out[..., 0] = np.log1p(tenure)
    out[..., 1] = np.log1p(to_date)
    out[..., 2] = np.log1p(np.minimum(recency, tenure))
    spent = spend_before[:, None] + np.cumsum(spend, axis=1)
    out[..., 3] = np.log1p(np.clip(spent, 0.0, None) / np.maximum(to_date, 1.0))
    out[..., 4:] = calendar[None, :, :]
    return out
