"""Explanations of forecasts: global driver importance and each customer's top drivers.

Both work on the contribution table of :meth:`~ltvcast.models.base.Forecaster.explain`: one row
per customer, one column per driver plus ``base_value``, each row summing to the customer's
``predicted_value`` (tree SHAP for LightGBM, integrated gradients for the sequence model,
recency/frequency/T/monetary for BTYD).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.models.base import Forecaster

BASE = "base_value"


def explain_customers(
    forecaster: Forecaster,
    data: CustomerData,
    as_of: pd.Timestamp,
    customers: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Contributions for ``customers`` (default: everyone seen up to ``as_of``).

    Features are per-customer, so the data is cut to the requested customers before the model
    explains them (one customer out of millions costs one customer's work).

    Raises
    ------
    ConfigError
        When a requested customer has no transaction or event up to ``as_of``.
    """
    if customers is None:
        return forecaster.explain(data, as_of)
    wanted = pd.Index([str(c) for c in customers], name=CUSTOMER_ID)
    subset = only_customers(data, wanted)
    seen = subset.until(as_of).customers()
    absent = wanted.difference(seen)
    if len(absent):
        raise ConfigError(
            f"customer(s) {absent[:5].tolist()} have no transaction or event up to "
            f"{as_of:%Y-%m-%d %H:%M}; nothing to explain"
        )
    return forecaster.explain(subset, as_of).reindex(wanted)


def explain_sample(
    forecaster: Forecaster, data: CustomerData, as_of: pd.Timestamp, max_customers: int = 2000
) -> pd.DataFrame:
    """Contributions of at most ``max_customers`` customers, evenly spaced in id order (a
    deterministic sample that keeps global importance cheap on millions of customers)."""
    ids = data.until(as_of).customers()
    keep = np.linspace(0, len(ids) - 1, min(len(ids), max_customers)).astype(np.int64)
    return explain_customers(forecaster, data, as_of, ids[keep])


def global_importance(contributions: pd.DataFrame) -> pd.DataFrame:
    """Drivers ranked by mean absolute contribution over customers.

    Returns
    -------
    DataFrame
        ``feature``, ``mean_abs`` (value units), ``share`` (of the total of ``mean_abs``) and
        ``mean`` (signed: on average the driver raises or lowers forecasts), largest first.
    """
    drivers = _drivers(contributions)
    mean_abs = drivers.abs().mean()
    total = float(mean_abs.sum())
    table = pd.DataFrame(
        {
            "feature": mean_abs.index,
            "mean_abs": mean_abs.to_numpy(),
            "share": mean_abs.to_numpy() / total if total > 0 else 0.0,
            "mean": drivers.mean().to_numpy(),
        }
    )
    return table.sort_values(["mean_abs", "feature"], ascending=[False, True]).reset_index(
        drop=True
    )


def top_drivers(contributions: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """Each customer's ``k`` drivers with the largest absolute contribution.

    Returns
    -------
    DataFrame
        Long format: ``customer_id``, ``rank`` (1 = strongest), ``feature``, ``contribution``.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1; got {k}")
    drivers = _drivers(contributions)
    long = drivers.reset_index(names=CUSTOMER_ID).melt(
        id_vars=CUSTOMER_ID, var_name="feature", value_name="contribution"
    )
    long["_abs"] = long["contribution"].abs()
    long = long.sort_values([CUSTOMER_ID, "_abs", "feature"], ascending=[True, False, True])
    long = long.groupby(CUSTOMER_ID, sort=False).head(k)
    long["rank"] = long.groupby(CUSTOMER_ID, sort=False).cumcount() + 1
    return long[[CUSTOMER_ID, "rank", "feature", "contribution"]].reset_index(drop=True)


def render_drivers(contributions: pd.Series, k: int = 8, *, unit: str = "") -> str:
    """Text waterfall of one customer's forecast: base value, top ``k`` drivers, the rest.

    Parameters
    ----------
    contributions
        One row of a contribution table (drivers + ``base_value``).
    unit
        Printed after the numbers (e.g. a currency code).
    """
    if BASE not in contributions.index:
        raise SchemaError(f"contributions lack {BASE!r}; got {list(contributions.index)[:5]}")
    drivers = contributions.drop(BASE).astype(np.float64)
    order = drivers.abs().sort_values(ascending=False, kind="stable").index
    top, rest = drivers[order[:k]], drivers[order[k:]]
    rows = [("base value (average customer)", f"{contributions[BASE]:,.2f}")]
    rows += [(f"  {name!s}", f"{value:+,.2f}") for name, value in top.items()]
    if len(rest):
        rows.append((f"  ({len(rest)} other drivers)", f"{rest.sum():+,.2f}"))
    rows.append(("= predicted value", f"{float(contributions.sum()):,.2f}"))
    width = max(len(label) for label, _ in rows)
    digits = max(len(number) for _, number in rows)
    lines = [f"  {label:<{width}}  {number:>{digits}}" for label, number in rows]
    if unit:
        lines[-1] += f" {unit}"
    return "\n".join(lines)


def _drivers(contributions: pd.DataFrame) -> pd.DataFrame:
    if BASE not in contributions.columns:
        raise SchemaError(
            f"contributions lack the {BASE!r} column; got {list(contributions.columns)[:5]}"
        )
    return contributions.drop(columns=BASE).astype(np.float64)


def only_customers(data: CustomerData, customers: Iterable[str]) -> CustomerData:
    """The bundle restricted to the rows of ``customers`` (features are per customer, so a
    model scores or explains them on this subset exactly as on the whole data)."""
    wanted = pd.Index(list(customers))

    def rows(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame[CUSTOMER_ID].isin(wanted)]

    return CustomerData(
        rows(data.transactions),
        None if data.events is None else rows(data.events),
        None if data.profiles is None else rows(data.profiles),
    )
