"""RFM summary at an as-of time: the (frequency, recency, T, monetary value) of BTYD models.

Units follow the BTYD convention of Fader, Hardie & Lee (2005): time is counted in whole
*purchase days* (see :func:`ltvcast.features.windows.purchase_days`) and divided by
``time_unit_days`` (7 = weeks). ``T`` runs from the first purchase day to the *day* of
``as_of`` (``as_of`` floored to midnight), so a first purchase on 1997-01-01 with
``as_of = 1997-09-30 23:59:59`` gives ``T = 272 / 7 = 38.86`` weeks; this is the convention
that reproduces the published CDNOW summary (``cdnow_customers_summary_with_transactions.csv``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, TIMESTAMP
from ltvcast.exceptions import ConfigError
from ltvcast.features.windows import purchase_days

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value", "first_purchase", "total_value")


def rfm_summary(
    transactions: pd.DataFrame, as_of: pd.Timestamp, *, time_unit_days: float = 7.0
) -> pd.DataFrame:
    """Per-customer RFM summary of the transactions up to ``as_of``.

    Parameters
    ----------
    transactions
        Canonical transactions (``customer_id``, ``timestamp``, ``amount``); rows after
        ``as_of`` are ignored.
    as_of
        Inclusive cut-off time.
    time_unit_days
        Length of the time unit of ``recency`` and ``T`` in days (7 = weeks).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted; customers with at least one purchase day up to
        ``as_of``), columns:

        - ``frequency``: repeat purchase days (purchase days after the first), float;
        - ``recency``: first to last purchase day, in units (0 when ``frequency == 0``);
        - ``T``: first purchase day to the day of ``as_of``, in units;
        - ``monetary_value``: mean net spend of the repeat purchase days (0 when
          ``frequency == 0``);
        - ``first_purchase``: day of the first purchase (Timestamp, midnight);
        - ``total_value``: net spend of all days from the first purchase day on (first day,
          repeat days and days of returns only).
    """
    if time_unit_days <= 0:
        raise ConfigError(f"time_unit_days must be positive; got {time_unit_days!r}")
    as_of = pd.Timestamp(as_of)
    past = transactions.loc[transactions[TIMESTAMP] <= as_of]
    days = purchase_days(past)
    buys = days.loc[days["is_purchase"]]
    grouped = buys.groupby(CUSTOMER_ID, sort=True)
    first = grouped["day"].min()
    last = grouped["day"].max()
    n_days = grouped.size()
    first_amount = buys.loc[buys["day"].to_numpy() == first.reindex(buys[CUSTOMER_ID]).to_numpy()]
    first_amount = first_amount.groupby(CUSTOMER_ID, sort=True)["amount"].sum()
    repeat_total = grouped["amount"].sum() - first_amount

    since_first = days["day"].to_numpy() >= first.reindex(days[CUSTOMER_ID]).to_numpy()
    total = days.loc[since_first].groupby(CUSTOMER_ID, sort=True)["amount"].sum()

    frequency = (n_days - 1).astype(np.float64)
    out = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first).dt.days / time_unit_days,
            "T": (as_of.floor("D") - first).dt.days / time_unit_days,
            "monetary_value": (repeat_total / frequency.where(frequency > 0)).fillna(0.0),
            "first_purchase": first,
            "total_value": total.reindex(first.index).astype(np.float64),
        }
    )
    out.index.name = CUSTOMER_ID
    return out
