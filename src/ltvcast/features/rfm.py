"""RFM summary at an as-of time: the (frequency, recency, T, monetary value) of BTYD models.

Units follow the BTYD convention of Fader, Hardie & Lee (2005): time is counted in whole
*purchase days* (see :func:`ltvcast.data.purchases.purchase_days`) and divided by
``time_unit_days`` (7 = weeks). ``T`` runs from the first purchase day to the *day* of
``as_of`` (``as_of`` floored to midnight), so a first purchase on 1997-01-01 with
``as_of = 1997-09-30 23:59:59`` gives ``T = 272 / 7 = 38.86`` weeks; this is the convention
that reproduces the published CDNOW summary (``cdnow_customers_summary_with_transactions.csv``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from ltvcast.data.purchases import factorize_ids, purchase_days
from ltvcast.data.schemas import CUSTOMER_ID, TIMESTAMP, CustomerData
from ltvcast.exceptions import ConfigError

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value", "first_purchase", "total_value")
#: What :func:`customer_history` gives per customer: the segment inputs and past spend.
HISTORY_COLUMNS = ("tenure_days", "purchases", "past_value")


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
    days = purchase_days(transactions.loc[transactions[TIMESTAMP] <= as_of])
    # Group-bys as bincounts / ufunc.at over integer customer codes: one factorisation of
    # the (string) ids instead of one per aggregate.
    codes, ids = factorize_ids(days[CUSTOMER_ID])
    n = len(ids)
    day = days["day"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    amount = days["amount"].to_numpy(dtype=np.float64)
    buy = days["is_purchase"].to_numpy(dtype=bool)
    c_buy, d_buy, a_buy = codes[buy], day[buy], amount[buy]

    n_days = np.bincount(c_buy, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, c_buy, d_buy)
    np.maximum.at(last, c_buy, d_buy)
    spend = np.bincount(c_buy, weights=a_buy, minlength=n)
    first_spend = np.bincount(c_buy, weights=a_buy * (d_buy == first[c_buy]), minlength=n)
    total = np.bincount(codes, weights=amount * (day >= first[codes]), minlength=n)

    keep = n_days > 0
    return rfm_rows(
        pd.Index(ids[keep], name=CUSTOMER_ID),
        n_days[keep],
        first[keep],
        last[keep],
        (spend[keep] - first_spend[keep]).astype(np.float64),
        total[keep].astype(np.float64),
        as_of,
        time_unit_days,
    )


def rfm_rows(
    index: pd.Index,
    purchase_days: npt.NDArray[np.integer],
    first: npt.NDArray[np.integer],
    last: npt.NDArray[np.integer],
    repeat_spend: npt.NDArray[np.floating],
    total: npt.NDArray[np.floating],
    as_of: pd.Timestamp,
    time_unit_days: float,
) -> pd.DataFrame:
    """The :func:`rfm_summary` frame from per-customer purchase-day aggregates (customers
    with at least one purchase day; days as integers since the epoch): the one place its
    formulas live, shared by the batch summary and the running aggregates."""
    frequency = (purchase_days - 1).astype(np.float64)
    repeat_spend = repeat_spend.astype(np.float64)
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first) / time_unit_days,
            "T": _age(first, as_of, time_unit_days),
            "monetary_value": np.divide(
                repeat_spend, frequency, out=np.zeros_like(repeat_spend), where=frequency > 0
            ),
            "first_purchase": first.astype("datetime64[D]").astype("datetime64[ns]"),
            "total_value": total.astype(np.float64),
        },
        index=index,
    )


def rfm_later(
    rfm: pd.DataFrame, as_of: pd.Timestamp, *, time_unit_days: float = 7.0
) -> pd.DataFrame:
    """:func:`rfm_summary` at a later ``as_of``, from the summary at an earlier one, when no
    transaction lies between the two: only ``T`` grows (to the day of ``as_of``)."""
    first = rfm["first_purchase"].to_numpy().astype("datetime64[D]").astype(np.int64)
    return rfm.assign(T=_age(first, pd.Timestamp(as_of), time_unit_days))


def _age(
    first: npt.NDArray[np.integer], as_of: pd.Timestamp, unit: float
) -> npt.NDArray[np.float64]:
    """``T``: from the first purchase day (days since the epoch) to the day of ``as_of``."""
    as_of_day = as_of.floor("D").to_datetime64().astype("datetime64[D]").astype(np.int64)
    out: npt.NDArray[np.float64] = (as_of_day - first) / unit
    return out


def customer_history(data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
    """Tenure and past purchases of every customer seen up to ``as_of``.

    Returns
    -------
    DataFrame
        ``customer_id`` and :data:`HISTORY_COLUMNS`: ``tenure_days`` (days, fractional, from
        the first transaction or event to ``as_of``: the one meaning of tenure in ltvcast),
        ``purchases`` (purchase days, see :func:`~ltvcast.data.purchases.purchase_days`) and
        ``past_value`` (net spend).
    """
    past = data.until(as_of)
    frames = [past.transactions[[CUSTOMER_ID, TIMESTAMP]]]
    if past.events is not None:
        frames.append(past.events[[CUSTOMER_ID, TIMESTAMP]])
    first = pd.concat(frames, ignore_index=True).groupby(CUSTOMER_ID)[TIMESTAMP].min()
    days = purchase_days(past.transactions).groupby(CUSTOMER_ID)
    out = pd.DataFrame(
        {
            "tenure_days": (as_of - first).dt.total_seconds() / 86400.0,
            "purchases": days["is_purchase"].sum().reindex(first.index).fillna(0).astype(np.int64),
            "past_value": days["amount"].sum().reindex(first.index).fillna(0.0),
        }
    )
    out.index.name = CUSTOMER_ID
    return out.reset_index()
