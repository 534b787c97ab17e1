"""The purchase process: orders, their values and returns, and the transaction table
(steps 2 and 3 of the generative model in :mod:`ltvcast.data.synthetic`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, ITEM_ID, ORDER_ID, QUANTITY, TIMESTAMP
from ltvcast.data.synthetic._clock import Clock, nhpp
from ltvcast.data.synthetic._columns import id_array, text_column, to_time

_SPEND_SHAPE = 3.0
_EXTRA_ITEMS = 0.5  # items per order = 1 + Poisson(0.5)
_MEAN_ITEMS = 1.0 + _EXTRA_ITEMS
_RETURN_DELAY, _RETURN_MEAN_LAG = 2.0, 10.0  # days: lag = 2 + Exp(mean 10)
_CATALOGUE = 2000


def order_values(rng: np.random.Generator, spend_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantity and gross amount of orders with the given expected order values."""
    quantity = 1 + rng.poisson(_EXTRA_ITEMS, len(spend_mean))
    amount = rng.gamma(_SPEND_SHAPE * quantity, spend_mean / (_SPEND_SHAPE * _MEAN_ITEMS))
    return quantity, np.maximum(np.round(amount, 2), 0.01)


def draw_returns(
    rng: np.random.Generator, return_prob: np.ndarray, quantity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether each order is returned, how many items, and the lag in days."""
    n = len(quantity)
    returned = rng.random(n) < return_prob
    items = 1 + np.floor(rng.random(n) * quantity).astype(np.int64)
    lag = _RETURN_DELAY + rng.exponential(_RETURN_MEAN_LAG, n)
    return returned, items, lag


def return_cdf(lag: np.ndarray) -> np.ndarray:
    """P(return lag <= ``lag``) for a returned order."""
    return 1.0 - np.exp(-np.maximum(lag - _RETURN_DELAY, 0.0) / _RETURN_MEAN_LAG)


def return_fraction(quantity: np.ndarray) -> np.ndarray:
    """Expected share of an order's amount given back when it is returned: E[k/q]."""
    return (quantity + 1.0) / (2.0 * quantity)


#: Expected share of a future order's amount given back when returned (over q):
#: E[amount·k/q] = m·E[(q+1)/2]/E[q].
FUTURE_RETURN_SHARE = (_MEAN_ITEMS + 1.0) / (2.0 * _MEAN_ITEMS)


def draw_orders(
    rng: np.random.Generator, params: dict[str, np.ndarray], clock: Clock, days: float
) -> dict[str, np.ndarray]:
    """Orders (first orders at signup + repeat orders while alive) with their returns."""
    signup = params["signup"]
    first = np.flatnonzero(params["first_order"])
    repeat, t = nhpp(
        rng, clock, params["purchase_rate"], signup, np.minimum(params["alive_until"], days)
    )
    cust = np.concatenate([first, repeat])
    time = np.concatenate([signup[first], t])
    order = np.lexsort((time, cust))
    cust, time = cust[order], time[order]
    quantity, amount = order_values(rng, params["spend_mean"][cust])
    returned, items, lag = draw_returns(rng, params["return_prob"][cust], quantity)
    return {
        "customer": cust,
        "time": time,
        "quantity": quantity,
        "amount": amount,
        "returned": returned,
        "return_items": np.where(returned, items, 0),
        "return_time": np.where(returned, time + lag, np.nan),
        "item": popular_items(rng, len(cust)),
    }


def popular_items(rng: np.random.Generator, n: int) -> np.ndarray:
    """Catalogue positions with Zipf-like popularity, density ∝ (j + 10)^-1.1 (inverse CDF)."""
    lo, hi = 10.0**-0.1, (10.0 + _CATALOGUE) ** -0.1
    j = (lo - rng.random(n) * (lo - hi)) ** -10.0 - 10.0
    return np.minimum(j.astype(np.int16), _CATALOGUE - 1)


def item_ids(items: np.ndarray) -> pd.Series:
    """Item ids (``P0042``) of catalogue positions."""
    return text_column(id_array("P", np.arange(_CATALOGUE), 4).take(pa.array(items)))


def order_table(orders: dict[str, np.ndarray], ids: pa.Array, origin: pd.Timestamp) -> pd.DataFrame:
    """Order-level truth table (see :class:`~ltvcast.data.synthetic.SimulatedStore`)."""
    cust = orders["customer"]
    starts = np.searchsorted(cust, cust, side="left")
    number = text_column(pc.cast(pa.array(np.arange(len(cust)) - starts + 1), pa.string()))
    cust_ids = text_column(ids.take(pa.array(cust)))
    amount = orders["amount"]
    quantity = orders["quantity"].astype(np.float64)
    back = np.round(amount * orders["return_items"] / quantity, 2)
    return pd.DataFrame(
        {
            ORDER_ID: cust_ids.str.replace("C", "O", n=1) + "-" + number,
            CUSTOMER_ID: cust_ids,
            TIMESTAMP: to_time(origin, orders["time"]),
            AMOUNT: amount,
            QUANTITY: quantity,
            ITEM_ID: item_ids(orders["item"]),
            "return_timestamp": np.where(
                orders["returned"],
                to_time(origin, np.nan_to_num(orders["return_time"])),
                np.datetime64("NaT", "us"),
            ),
            "return_amount": -back,
            "return_quantity": -orders["return_items"].astype(np.float64),
        }
    )


def canonical_transactions(orders: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Canonical transactions: one row per order, one negative row per return, up to ``end``."""
    columns = [CUSTOMER_ID, TIMESTAMP, AMOUNT, ORDER_ID, QUANTITY, ITEM_ID]
    sales = orders[columns]
    extra = ["return_timestamp", "return_amount", "return_quantity"]
    returns = orders.loc[orders["return_timestamp"].notna(), [*columns, *extra]]
    returns = returns.assign(
        **{
            TIMESTAMP: returns["return_timestamp"],
            AMOUNT: returns["return_amount"],
            QUANTITY: returns["return_quantity"],
        }
    )[columns]
    rows = pd.concat([sales, returns], ignore_index=True)
    rows = rows[rows[TIMESTAMP] <= end]
    return rows.sort_values([TIMESTAMP, ORDER_ID], kind="stable").reset_index(drop=True)
