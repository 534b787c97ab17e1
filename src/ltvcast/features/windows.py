"""Training windows at an as-of time: backtest origins and the inner backtest window.

Time conventions (inclusive as-of, ``(as_of, as_of + h]`` forecast windows) are those of
:mod:`ltvcast.timeframe`; labels in a window come from
:func:`ltvcast.data.purchases.horizon_labels`.
"""

from __future__ import annotations

import pandas as pd

from ltvcast.timeframe import Horizon

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
