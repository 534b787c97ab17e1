"""Behaviour events: a funnel session before every order, and browse-only sessions (step 4
of the generative model in :mod:`ltvcast.data.synthetic`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ltvcast.data.schemas import CUSTOMER_ID, EVENT_TYPE, ITEM_ID, KNOWN_EVENT_TYPES, TIMESTAMP
from ltvcast.data.synthetic._clock import Clock, nhpp
from ltvcast.data.synthetic._columns import second_time, text_column
from ltvcast.data.synthetic._orders import item_ids, popular_items

_SESSIONS_PER_CUSTOMER = 1_000_000  # session_id = customer number * this + rank
_DECAY_DAYS, _DECAY_FLOOR, _GHOST = 30.0, 0.2, 0.04
# Per event type (in funnel order), the span of the session (as a fraction of its
# duration) where events of that type fall.
_EVENT_TYPES = KNOWN_EVENT_TYPES
_EVENT_SPAN = ((0.0, 0.85), (0.0, 0.85), (0.6, 0.92), (0.92, 0.99), (1.0, 1.0))


def empty_events() -> pd.DataFrame:
    """An events table with no rows and the canonical columns."""
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series([], dtype="str"),
            TIMESTAMP: pd.Series([], dtype="datetime64[us]"),
            EVENT_TYPE: pd.Series([], dtype="str"),
            ITEM_ID: pd.Series([], dtype="str"),
            "session_id": pd.Series([], dtype=np.int64),
        }
    )


def draw_events(
    rng: np.random.Generator,
    params: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    clock: Clock,
    days: float,
    ids: pa.Array,
    offset: int,
    origin: pd.Timestamp,
) -> pd.DataFrame:
    """Behaviour events: a funnel session before every order plus browse-only sessions."""
    signup, until = params["signup"], params["alive_until"]
    # Browse sessions: thinning of a seasonal process by the pre-dropout decay.
    cand, t = nhpp(rng, clock, params["browse_rate"], signup, np.full(len(signup), days))
    left = until[cand] - t
    keep_p = np.where(left >= 0, 1.0 - (1.0 - _DECAY_FLOOR) * np.exp(-left / _DECAY_DAYS), _GHOST)
    keep = rng.random(len(cand)) < keep_p
    no_first = np.flatnonzero(~params["first_order"])
    browse_cust = np.concatenate([no_first, cand[keep]])
    browse_start = np.concatenate([signup[no_first], t[keep]])
    n_buy, n_browse = len(orders["customer"]), len(browse_cust)

    buy_duration = np.clip(rng.lognormal(np.log(20.0), 0.9, n_buy), 5.0, 360.0) / 1440.0
    browse_duration = np.clip(rng.lognormal(np.log(8.0), 0.9, n_browse), 1.0, 360.0) / 1440.0
    cust = np.concatenate([orders["customer"], browse_cust])
    begin = np.concatenate([orders["time"] - buy_duration, browse_start])
    duration = np.concatenate([buy_duration, browse_duration])
    buying = np.arange(len(cust)) < n_buy
    focal = np.concatenate([orders["item"], popular_items(rng, n_browse)])

    # Counts per session of view, click, cart, checkout, purchase.
    draw = rng.random((2, len(cust)))
    cart = np.where(buying, 1 + rng.poisson(0.2, len(cust)), draw[0] < 0.12)
    checkout = np.where(buying, 1 + (draw[1] < 0.15), (cart > 0) & (draw[1] < 0.3))
    counts = (
        1 + rng.poisson(np.where(buying, 2.5, 1.5)),
        rng.poisson(np.where(buying, 1.5, 0.8)),
        cart,
        checkout,
        buying,
    )

    order = np.argsort((cust.astype(np.int64) << 30) + np.floor(begin * 86_400).astype(np.int64))
    rank = np.empty(len(cust), dtype=np.int64)
    rank[order] = np.arange(len(cust)) - np.searchsorted(cust[order], cust[order], side="left")
    session_id = (offset + 1 + cust) * _SESSIONS_PER_CUSTOMER + rank

    # One pass per event type; the sort key is (second, event type) so a session reads
    # in funnel order and the purchase (at the order's second) comes last.
    parts_session, parts_key, parts_item = [], [], []
    for kind, (count, (lo, hi)) in enumerate(zip(counts, _EVENT_SPAN, strict=True)):
        sess = np.repeat(np.arange(len(cust), dtype=np.int32), np.asarray(count, dtype=np.int64))
        frac = lo + (hi - lo) * rng.random(len(sess))
        second = np.floor((begin[sess] + frac * duration[sess]) * 86_400).astype(np.int64)
        item = focal[sess]
        if kind < 2:  # views and clicks wander around the catalogue
            item = np.where(rng.random(len(sess)) < 0.4, item, popular_items(rng, len(sess)))
        inside = second < days * 86_400
        parts_session.append(sess[inside])
        parts_key.append(second[inside] * len(_EVENT_TYPES) + kind)
        parts_item.append(item[inside])
    key = np.concatenate(parts_key)
    order = np.argsort(key)
    key = key[order]
    sess = np.concatenate(parts_session)[order]
    return pd.DataFrame(
        {
            CUSTOMER_ID: text_column(ids.take(pa.array(cust[sess]))),
            TIMESTAMP: second_time(origin, key // len(_EVENT_TYPES)),
            EVENT_TYPE: text_column(pa.array(_EVENT_TYPES).take(pa.array(key % len(_EVENT_TYPES)))),
            ITEM_ID: item_ids(np.concatenate(parts_item)[order]),
            "session_id": session_id[sess],
        }
    )
