"""Dirty rows: corrupted copies of clean rows, each next to its source (step 5 of the
generative model in :mod:`ltvcast.data.synthetic`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, EVENT_TYPE, TIMESTAMP

_BAD_TIMESTAMPS = np.array(["", "not a date", "2023-02-30 12:00:00", "31/13/2023 25:61"])
_BAD_AMOUNTS = np.array(["", "N/A", "12,5O", "abc", "$-"])
_UNKNOWN_EVENTS = np.array(["page", "popup_view", "search", "wishlist"])


_Corruption = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


def _stamp_text(stamps: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` text of datetime64 values (an object array)."""
    text = pc.cast(pa.array(stamps.astype("datetime64[s]")), pa.string())
    return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)


def _as_text(frame: pd.DataFrame, rng: np.random.Generator, rate: float) -> pd.DataFrame:
    """Timestamps (and amounts) as raw text; a share ``rate`` of valid timestamps carries a
    UTC offset (same instant)."""
    stamps = frame[TIMESTAMP].to_numpy()
    text = _stamp_text(stamps)
    shifted = np.flatnonzero(rng.random(len(frame)) < rate)
    hours = rng.choice(np.array([-5, 1, 2, 8]), len(shifted))
    local = _stamp_text(stamps[shifted] + hours.astype("timedelta64[h]")).astype(str)
    suffix = np.char.add(np.where(hours < 0, "-0", "+0"), np.abs(hours).astype(str))
    text[shifted] = np.char.add(np.char.replace(local, " ", "T"), np.char.add(suffix, ":00"))
    out = frame.assign(**{TIMESTAMP: pd.array(text, dtype="str")})
    if AMOUNT in frame:
        amounts = pc.cast(pa.array(frame[AMOUNT].to_numpy()), pa.string())
        out[AMOUNT] = pd.array(amounts, dtype="str")
    return out


def _inject(
    rng: np.random.Generator, frame: pd.DataFrame, rate: float, corruptions: Sequence[_Corruption]
) -> pd.DataFrame:
    """Add about ``rate * len(frame)`` corrupted copies of random rows, next to their source."""
    n = len(frame)
    parts = [frame.assign(_pos=np.arange(n, dtype=np.float64))]
    for corrupt in corruptions:
        src = np.sort(rng.integers(0, n, rng.binomial(n, rate / len(corruptions))))
        copies = frame.iloc[src].reset_index(drop=True).assign(_pos=src + 0.5)
        parts.append(corrupt(copies, rng))
    out = pd.concat(parts, ignore_index=True).sort_values("_pos", kind="stable")
    return out.drop(columns="_pos").reset_index(drop=True)


def _missing_id(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows.assign(**{CUSTOMER_ID: pd.array([None] * len(rows), dtype="str")})


def _bad_timestamp(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows.assign(**{TIMESTAMP: pd.array(rng.choice(_BAD_TIMESTAMPS, len(rows)), dtype="str")})


def _bad_amount(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows.assign(**{AMOUNT: pd.array(rng.choice(_BAD_AMOUNTS, len(rows)), dtype="str")})


def _zero_amount(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Zero-amount copies of sales only, so that keeping them adds no purchase day."""
    rows = rows[~rows[AMOUNT].str.startswith("-")]
    return rows.assign(**{AMOUNT: pd.array(["0.00"] * len(rows), dtype="str")})


def _unknown_type(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows.assign(
        **{EVENT_TYPE: pd.array(rng.choice(_UNKNOWN_EVENTS, len(rows)), dtype="str")}
    )


def _duplicate(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows


def dirty_transactions(rng: np.random.Generator, txn: pd.DataFrame, rate: float) -> pd.DataFrame:
    """Transactions with about ``rate`` dirty rows per clean row, as text."""
    corruptions = [_missing_id, _bad_timestamp, _bad_amount, _duplicate, _zero_amount]
    return _inject(rng, _as_text(txn, rng, rate), rate, corruptions)


def dirty_events(rng: np.random.Generator, ev: pd.DataFrame, rate: float) -> pd.DataFrame:
    """Events with about ``rate`` dirty rows per clean row, as text (no rows: unchanged)."""
    if not len(ev):
        return ev
    corruptions = [_missing_id, _bad_timestamp, _duplicate, _unknown_type]
    return _inject(rng, _as_text(ev, rng, rate), rate, corruptions)
