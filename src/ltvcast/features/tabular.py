"""Tabular per-customer features at an as-of time: transactions, behaviour events, profiles.

Every function takes ``as_of`` and ignores rows after it. Work is relational (pandas
group-bys over the whole table), never a loop over customers. Day arithmetic uses whole
days: a row's *age* is ``as_of.normalize() - timestamp.floor("D")`` in days (0 = the as-of
day), and a trailing window of ``w`` days holds the rows with age ``< w``.

Column names (``w`` ranges over ``windows_days``):

- transactions: ``frequency``, ``recency_days``, ``days_since_first_purchase``, ``monetary_value``,
  ``total_value`` (from :func:`~ltvcast.features.rfm.rfm_summary` in days), ``purchases_{w}d``,
  ``spend_{w}d``, ``days_since_last_purchase``, ``ipi_mean``, ``ipi_std``, ``ipi_last``
  (inter-purchase intervals in days), ``orders``, ``order_value_mean``, ``order_value_max``,
  ``items_per_order`` (when ``quantity`` exists), ``return_share``, ``asof_month``,
  ``asof_dayofweek``;
- behaviour: ``ev_{type}_{w}d``, ``ev_{type}_days_since`` per event type, ``active_days_{w}d``,
  ``active_days``;
- profiles: ``profile_{column}`` (medians impute numbers; categories are codes into a
  vocabulary learnt by :class:`ProfileEncoder`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from ltvcast.data.purchases import purchase_days
from ltvcast.data.schemas import (
    AMOUNT,
    CUSTOMER_ID,
    EVENT_TYPE,
    KNOWN_EVENT_TYPES,
    ORDER_ID,
    QUANTITY,
    TIMESTAMP,
    CustomerData,
)
from ltvcast.exceptions import ConfigError, NotFittedError
from ltvcast.features.rfm import rfm_summary

DEFAULT_WINDOWS: tuple[int, ...] = (7, 30, 90, 365)
_RFM_COLUMNS = {
    "frequency": "frequency",
    "recency": "recency_days",
    "T": "days_since_first_purchase",
    "monetary_value": "monetary_value",
    "total_value": "total_value",
}


#: Transaction features that cannot lower a customer's expected future value when they grow
#: (all else equal): more purchases, more spend, a later last purchase (``recency_days``
#: grows with it at a fixed first purchase). ``days_since_last_purchase`` is the one that
#: cannot raise it. Others (tenure, intervals, calendar, events, profiles) are left free.
_INCREASING = re.compile(
    r"^(frequency|recency_days|monetary_value|total_value|orders|order_value_(mean|max)"
    r"|purchases_\d+d|spend_\d+d)$"
)
_DECREASING = re.compile(r"^days_since_last_purchase$")


def value_monotonicity(columns: Sequence[str]) -> list[int]:
    """LightGBM ``monotone_constraints`` of feature ``columns`` for a value (or purchase)
    target: 1 increasing, -1 decreasing, 0 free (see ``_INCREASING``)."""
    return [1 if _INCREASING.match(c) else -1 if _DECREASING.match(c) else 0 for c in columns]


def _age_days(times: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Whole days between each time's day and the as-of day (0 = same day)."""
    return (as_of.normalize() - times.dt.floor("D")).dt.days.astype(np.int64)


def _check_windows(windows_days: Sequence[int]) -> tuple[int, ...]:
    windows = tuple(int(w) for w in windows_days)
    if not windows or any(w <= 0 for w in windows) or len(set(windows)) != len(windows):
        raise ConfigError(
            f"windows_days must be distinct positive day counts; got {list(windows_days)!r}"
        )
    return windows


def transaction_features(
    transactions: pd.DataFrame,
    customers: pd.Index,
    as_of: pd.Timestamp,
    windows_days: Sequence[int] = DEFAULT_WINDOWS,
) -> pd.DataFrame:
    """Purchase features of ``customers`` from canonical transactions up to ``as_of``.

    Purchases are customer-days (:func:`~ltvcast.data.purchases.purchase_days`); orders are
    ``order_id`` groups when that column exists, purchase days otherwise. Customers without
    transactions get zero counts and spend, and NaN for times and per-order statistics.

    Returns
    -------
    DataFrame
        Indexed by ``customers`` (in their order), float64 columns listed in the module doc.
    """
    windows = _check_windows(windows_days)
    tx = transactions.loc[transactions[TIMESTAMP] <= as_of]
    out = pd.DataFrame(index=customers)

    rfm = rfm_summary(tx, as_of, time_unit_days=1.0)
    if CUSTOMER_ID in rfm.columns:
        rfm = rfm.set_index(CUSTOMER_ID)
    for source, target in _RFM_COLUMNS.items():
        out[target] = rfm[source].reindex(customers).astype(np.float64)
    for column in ("frequency", "monetary_value", "total_value"):
        out[column] = out[column].fillna(0.0)

    days = purchase_days(tx)
    days = days.assign(age=_age_days(days["day"], as_of))
    bought = days.loc[days["is_purchase"]]
    for w in windows:
        recent = days.loc[days["age"] < w].groupby(CUSTOMER_ID, sort=False)
        out[f"purchases_{w}d"] = recent["is_purchase"].sum()
        out[f"spend_{w}d"] = recent["amount"].sum()
    out["days_since_last_purchase"] = bought.groupby(CUSTOMER_ID, sort=False)["age"].min()

    gaps = bought.sort_values([CUSTOMER_ID, "day"]).assign(
        gap=lambda f: f.groupby(CUSTOMER_ID, sort=False)["day"].diff().dt.days
    )
    by_gap = gaps.dropna(subset=["gap"]).groupby(CUSTOMER_ID, sort=False)["gap"]
    out["ipi_mean"] = by_gap.mean()
    out["ipi_std"] = by_gap.std(ddof=0)
    out["ipi_last"] = by_gap.last()

    has_orders = ORDER_ID in tx.columns and tx[ORDER_ID].notna().any()
    order_key = tx[ORDER_ID] if has_orders else tx[TIMESTAMP].dt.floor("D")
    agg: dict[str, tuple[str, str]] = {"value": (AMOUNT, "sum")}
    if QUANTITY in tx.columns:
        agg["items"] = (QUANTITY, "sum")
    order_table = tx.groupby([tx[CUSTOMER_ID], order_key], sort=False, observed=True).agg(**agg)
    order_table = order_table.reset_index(level=0)
    by_order = order_table.loc[order_table["value"] > 0].groupby(CUSTOMER_ID, sort=False)
    out["orders"] = by_order.size()
    out["order_value_mean"] = by_order["value"].mean()
    out["order_value_max"] = by_order["value"].max()
    if QUANTITY in tx.columns:
        out["items_per_order"] = by_order["items"].mean()

    amounts = tx[AMOUNT]
    gross = amounts.clip(lower=0).groupby(tx[CUSTOMER_ID], sort=False).sum()
    returned = amounts.clip(upper=0).abs().groupby(tx[CUSTOMER_ID], sort=False).sum()
    out["return_share"] = (returned / (gross + returned)).where(gross + returned > 0, 0.0)

    zero_filled = [f"purchases_{w}d" for w in windows] + [f"spend_{w}d" for w in windows]
    out[[*zero_filled, "orders", "return_share"]] = out[
        [*zero_filled, "orders", "return_share"]
    ].fillna(0.0)
    out["asof_month"] = float(as_of.month)
    out["asof_dayofweek"] = float(as_of.day_of_week)
    return out.astype(np.float64)


def _safe_name(text: str) -> str:
    """Event type as a feature-name fragment (LightGBM rejects JSON punctuation)."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", str(text)).strip("_").lower() or "blank"


def event_type_vocabulary(events: pd.DataFrame | None) -> tuple[str, ...]:
    """The known event types plus every other type present in ``events``, sorted."""
    present = () if events is None else tuple(events[EVENT_TYPE].astype(str).unique())
    return tuple(sorted(set(KNOWN_EVENT_TYPES) | set(present)))


def behaviour_features(
    events: pd.DataFrame | None,
    customers: pd.Index,
    as_of: pd.Timestamp,
    windows_days: Sequence[int] = DEFAULT_WINDOWS,
    event_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Behaviour-event features of ``customers`` from events up to ``as_of``.

    Per event type: counts in each trailing window and days since the last one (NaN when
    never); over all types: distinct active days per window and in total.

    Parameters
    ----------
    event_types
        Types to make columns for (default :func:`event_type_vocabulary` of ``events``); pass
        the training vocabulary at predict time so that columns stay the same.

    Returns
    -------
    DataFrame
        Indexed by ``customers``, float64; no columns when ``events`` is ``None``.
    """
    windows = _check_windows(windows_days)
    if events is None:
        return pd.DataFrame(index=customers)
    types = tuple(event_types) if event_types is not None else event_type_vocabulary(events)
    ev = events.loc[events[TIMESTAMP] <= as_of, [CUSTOMER_ID, TIMESTAMP, EVENT_TYPE]]
    ev = ev.assign(age=_age_days(ev[TIMESTAMP], as_of), etype=ev[EVENT_TYPE].astype(str))
    ev = ev.loc[ev["etype"].isin(types)]
    names = [_safe_name(t) for t in types]
    blocks: list[pd.DataFrame] = []
    for w in windows:
        counts = ev.loc[ev["age"] < w].groupby([CUSTOMER_ID, "etype"], sort=False).size()
        table = counts.unstack("etype").reindex(index=customers, columns=list(types)).fillna(0.0)
        table.columns = [f"ev_{name}_{w}d" for name in names]
        blocks.append(table)
    since = ev.groupby([CUSTOMER_ID, "etype"], sort=False)["age"].min().unstack("etype")
    since = since.reindex(index=customers, columns=list(types))
    since.columns = [f"ev_{name}_days_since" for name in names]
    blocks.append(since)
    active = pd.DataFrame(index=customers)
    for w in windows:
        recent = ev.loc[ev["age"] < w]
        active[f"active_days_{w}d"] = recent.groupby(CUSTOMER_ID, sort=False)["age"].nunique()
    active["active_days"] = ev.groupby(CUSTOMER_ID, sort=False)["age"].nunique()
    blocks.append(active.fillna(0.0))
    out = pd.concat(blocks, axis=1)
    out.index = customers
    return out.astype(np.float64)


class ProfileEncoder:
    """Encode profile columns as floats with vocabularies learnt from training customers.

    Numeric (and boolean) columns are imputed with their training median. Other columns are
    categorical: the ``top_k`` most frequent training values (ties by value) get codes
    ``0 .. k-1``; any other value, including one never seen in training, gets code ``k``
    ("other"); a missing value stays NaN. Datetime columns are skipped (a profile date has
    no meaning without the as-of time; derive a numeric column upstream).

    Parameters
    ----------
    top_k
        Size of each categorical vocabulary before "other".
    """

    def __init__(self, top_k: int = 20) -> None:
        self.top_k = top_k

    def fit(self, profiles: pd.DataFrame) -> Self:
        """Learn vocabularies and medians from ``profiles`` (training customers only)."""
        if self.top_k < 1:
            raise ConfigError(f"ProfileEncoder top_k must be >= 1; got {self.top_k}")
        self.medians_: dict[str, float | None] = {}
        self.vocabularies_: dict[str, list[str]] = {}
        for column in profiles.columns:
            if column == CUSTOMER_ID:
                continue
            values = profiles[column]
            if pd.api.types.is_datetime64_any_dtype(values):
                continue
            if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                median = values.astype(np.float64).median()
                self.medians_[str(column)] = None if pd.isna(median) else float(median)
                continue
            counts = values.dropna().astype(str).value_counts()
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            self.vocabularies_[str(column)] = [str(value) for value, _ in ranked[: self.top_k]]
        return self

    @property
    def feature_names(self) -> list[str]:
        """Output column names, numeric then categorical, in fit order."""
        self._check_fitted()
        return [f"profile_{c}" for c in self.medians_] + self.categorical_features

    @property
    def categorical_features(self) -> list[str]:
        """Output columns that hold category codes (for LightGBM ``categorical_feature``)."""
        self._check_fitted()
        return [f"profile_{c}" for c in self.vocabularies_]

    def transform(self, profiles: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
        """Encode the profiles of ``customers`` (missing customers or columns: median / NaN).

        Returns
        -------
        DataFrame
            Indexed by ``customers``, float64 columns :attr:`feature_names`.
        """
        self._check_fitted()
        rows = profiles.drop_duplicates(CUSTOMER_ID, keep="last").set_index(CUSTOMER_ID)
        rows = rows.reindex(customers)
        out = pd.DataFrame(index=customers)
        for column, median in self.medians_.items():
            raw = rows[column] if column in rows.columns else pd.Series(np.nan, index=customers)
            values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
            out[f"profile_{column}"] = values if median is None else values.fillna(median)
        for column, vocabulary in self.vocabularies_.items():
            raw = rows[column] if column in rows.columns else pd.Series(np.nan, index=customers)
            codes = raw.dropna().astype(str).map({v: float(i) for i, v in enumerate(vocabulary)})
            out[f"profile_{column}"] = codes.fillna(float(len(vocabulary))).reindex(customers)
        return out.astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted state (inverse of :meth:`from_dict`)."""
        self._check_fitted()
        return {"top_k": self.top_k, "medians": self.medians_, "vocabularies": self.vocabularies_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ProfileEncoder:
        """Rebuild an encoder written by :meth:`to_dict`."""
        encoder = cls(top_k=int(state["top_k"]))
        encoder.medians_ = {str(k): v for k, v in state["medians"].items()}
        encoder.vocabularies_ = {str(k): list(v) for k, v in state["vocabularies"].items()}
        return encoder

    def _check_fitted(self) -> None:
        if not hasattr(self, "medians_"):
            raise NotFittedError("ProfileEncoder is not fitted; call fit(profiles) first")


def tabular_features(
    data: CustomerData,
    as_of: pd.Timestamp,
    profile_encoder: ProfileEncoder | None = None,
    windows_days: Sequence[int] = DEFAULT_WINDOWS,
    event_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """All tabular features at ``as_of``: one row per customer seen up to ``as_of``.

    Parameters
    ----------
    profile_encoder
        A fitted :class:`ProfileEncoder`; profile columns are left out without one (or when
        ``data`` has no profiles).
    event_types
        Passed to :func:`behaviour_features` (keep the training vocabulary at predict time).

    Returns
    -------
    DataFrame
        Indexed by the sorted ``customer_id`` of ``data.until(as_of).customers()``; float64
        columns in a fixed order: transaction, behaviour, profile features.
    """
    past = data.until(as_of)
    customers = past.customers()
    blocks = [
        transaction_features(past.transactions, customers, as_of, windows_days),
        behaviour_features(past.events, customers, as_of, windows_days, event_types),
    ]
    if profile_encoder is not None and data.profiles is not None:
        blocks.append(profile_encoder.transform(data.profiles, customers))
    out = pd.concat(blocks, axis=1)
    out.index.name = CUSTOMER_ID
    return out
