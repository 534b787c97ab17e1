"""What a purchase is, once for every layer.

- A *purchase event* is an event of type :data:`~ltvcast.data.schemas.PURCHASE`; it carries
  an ``amount`` and is a transaction as well as a behaviour event (the service and
  clickstream sources record it so).
- A *purchase* (the unit BTYD models count) is a distinct customer-day with at least one
  transaction of ``amount >= 0``: a day of returns only is not a purchase, a free item is.
  Counting days makes counts comparable across stores that split orders into lines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, PURCHASE, TIMESTAMP


def amount_rule_violations(event_types: np.ndarray, has_amount: np.ndarray) -> dict[int, str]:
    """Rows of an event stream that break the amount rule, with the reason: a purchase
    needs an ``amount``, any other event must not carry one."""
    purchase = event_types == PURCHASE
    broken = {
        int(i): "amount: a purchase needs an amount" for i in np.flatnonzero(purchase & ~has_amount)
    }
    broken.update(
        (int(i), f"amount: only purchase events carry an amount, not {event_types[i]!r}")
        for i in np.flatnonzero(~purchase & has_amount)
    )
    return broken


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
    codes, _ = factorize_ids(transactions[CUSTOMER_ID])
    span = int(days.max() - days.min()) + 1 if len(days) else 1
    # one integer per customer-day; groups are numbered in order of first appearance
    key = codes.astype(np.int64) * span + (days - days.min(initial=0))
    groups = _runs(key) if _sorted(key) else pd.factorize(key)[0]
    # a group's first row is where the running maximum of the group numbers steps up
    seen = np.maximum.accumulate(groups) if len(groups) else groups
    first_rows = np.flatnonzero(np.r_[len(groups) > 0, groups[1:] > seen[:-1]][: len(groups)])
    n = len(first_rows)
    return pd.DataFrame(
        {
            CUSTOMER_ID: transactions[CUSTOMER_ID].take(first_rows).reset_index(drop=True),
            "day": pd.to_datetime(days[first_rows], unit="D").as_unit("us"),
            "amount": np.bincount(groups, weights=amounts, minlength=n).astype(np.float64),
            "is_purchase": np.bincount(groups, weights=amounts >= 0, minlength=n) > 0,
        }
    )


def factorize_ids(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(ids, sort=True)`` of a column without missing values, by runs when
    it is sorted (as the canonical tables are, by customer): codes and sorted uniques.
    A sorted column's first-appearance codes are these too."""
    values = pa.array(ids.array, from_pandas=True)  # no copy when pandas holds Arrow
    if not len(ids) or not pc.all(pc.less_equal(values[:-1], values[1:])).as_py():
        codes, uniques = pd.factorize(ids, sort=True)
        return codes, pd.Index(uniques)
    step = pc.not_equal(values[:-1], values[1:]).to_numpy(zero_copy_only=False)
    codes = _runs(np.r_[False, step])
    starts = np.flatnonzero(np.r_[True, step])
    return codes, pd.Index(ids.iloc[starts].to_numpy(), dtype=ids.dtype)


def _sorted(values: np.ndarray) -> bool:
    return bool(len(values) < 2 or (values[1:] >= values[:-1]).all())


def _runs(values: np.ndarray) -> np.ndarray:
    """Codes 0, 1, ... of the runs of equal values (or of ``True`` steps) of ``values``."""
    if values.dtype == bool:
        return np.cumsum(values, dtype=np.int64)
    return np.r_[0, np.cumsum(values[1:] != values[:-1], dtype=np.int64)] if len(values) else values


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
