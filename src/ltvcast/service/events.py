"""``POST /v1/events`` items -> a canonical event frame, bad items set aside with reasons."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ltvcast.data.purchases import amount_rule_violations
from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, EVENT_TYPE, TIMESTAMP, TIMESTAMP_RANGE
from ltvcast.service.ingest import EVENT_ID
from ltvcast.service.wire import EVENTS, EventIn, Rejection, validation_message
from ltvcast.timeframe import to_naive_utc

#: Column of :func:`validate_events`' frame: the item's index in the request.
POSITION = "position"
#: Items validated at a time (see :func:`validate_events`).
SLICE = 200
#: What makes two events with one ``event_id`` the same event.
CONTENT = (CUSTOMER_ID, TIMESTAMP, EVENT_TYPE, AMOUNT)


async def validate_events(
    items: list[Any], pause: Callable[[], Awaitable[None]]
) -> tuple[pd.DataFrame, list[Rejection]]:
    """Validate the items (failing ones set aside with their reasons) and return the valid
    events as a frame (see :func:`event_frame`, plus :data:`POSITION`).

    Items are validated :data:`SLICE` at a time, awaiting ``pause`` between slices, so a
    large batch never holds up the requests served next to it for long.
    """
    reasons: dict[int, list[str]] = {}
    good: list[EventIn] = []
    for start in range(0, len(items), SLICE):
        part = items[start : start + SLICE]
        try:
            good += EVENTS.validate_python(part)
        except ValidationError as err:
            bad: set[int] = set()
            for item in err.errors():
                index = int(item["loc"][0])
                sub = ValidationError.from_exception_data(err.title, [item])  # type: ignore[list-item]
                reasons.setdefault(start + index, []).append(validation_message(sub, skip=1))
                bad.add(index)
            good += EVENTS.validate_python([item for i, item in enumerate(part) if i not in bad])
        await pause()  # serve what is waiting
    positions = np.array([i for i in range(len(items)) if i not in reasons], dtype=np.int64)
    frame, broken = event_frame(good)
    for row, reason in broken.items():
        reasons[int(positions[row])] = [reason]
    frame[POSITION] = positions
    if broken:
        frame = frame.drop(index=list(broken)).reset_index(drop=True)
    rejected = [Rejection(index=i, reason="; ".join(r)) for i, r in sorted(reasons.items())]
    return frame, rejected


def event_frame(events: list[EventIn]) -> tuple[pd.DataFrame, dict[int, str]]:
    """Validated events as a frame (events without an ``event_id`` get a random one, times
    in naive UTC) and the rows that break the amount rule, with the reason."""
    kinds = np.array([e["event_type"] for e in events], dtype=object)
    amounts = [e.get("amount") for e in events]
    has_amount = np.array([a is not None for a in amounts], dtype=bool)
    stamps = to_naive_utc(pd.to_datetime([e["timestamp"] for e in events], utc=True))
    frame = pd.DataFrame(
        {
            EVENT_ID: [e.get("event_id") or f"auto-{uuid.uuid4().hex}" for e in events],
            CUSTOMER_ID: pd.Series([e["customer_id"] for e in events], dtype="str"),
            TIMESTAMP: stamps.as_unit("us"),
            EVENT_TYPE: pd.Series(kinds, dtype="str"),
            AMOUNT: np.array([np.nan if a is None else a for a in amounts], dtype=np.float64),
        }
    )
    return frame, amount_rule_violations(kinds, has_amount)


def refuse(
    frame: pd.DataFrame, mask: np.ndarray, reason: Callable[[pd.DataFrame], pd.Series]
) -> tuple[pd.DataFrame, list[Rejection]]:
    """Set aside the rows of ``frame`` under ``mask``; ``reason`` words each of them (it is
    called on those rows only)."""
    if not mask.any():
        return frame, []
    refused = frame.loc[mask]
    out = [
        Rejection(index=int(i), reason=str(r))
        for i, r in zip(refused[POSITION], reason(refused), strict=True)
    ]
    return frame.loc[~mask], out


def time_rule(
    frame: pd.DataFrame, limit: pd.Timestamp, now: pd.Timestamp
) -> tuple[np.ndarray, Callable[[pd.DataFrame], pd.Series]]:
    """Rows dated after ``limit`` (the server's clock plus its tolerance) or before the
    supported range (:data:`~ltvcast.data.schemas.TIMESTAMP_RANGE`), and their reasons."""
    stamps = frame[TIMESTAMP]
    out = ((stamps > limit) | (stamps < TIMESTAMP_RANGE[0])).to_numpy()

    def reason(rows: pd.DataFrame) -> pd.Series:
        text = "timestamp: " + rows[TIMESTAMP].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(str)
        future = text + (
            f" is after the server's clock ({now:%Y-%m-%dT%H:%M:%S} UTC) plus its tolerance; "
            "events from the future are refused"
        )
        past = text + f" is before {TIMESTAMP_RANGE[0]:%Y-%m-%d}, outside the supported range"
        return future.where(rows[TIMESTAMP] > limit, past)

    return out, reason


def id_reason(what: str) -> Callable[[pd.DataFrame], pd.Series]:
    """Reasons naming each row's ``event_id``, then ``what``."""
    return lambda rows: "event_id: " + rows[EVENT_ID].astype(str) + " " + what


def batch_conflicts(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Later rows repeating an earlier ``event_id`` of the batch: with other content
    (refused) and with the same content (retries, counted as duplicates)."""
    repeated = frame.duplicated(EVENT_ID, keep="first").to_numpy()
    if not repeated.any():
        return repeated, repeated
    first = frame.loc[~repeated].set_index(EVENT_ID)[list(CONTENT)]
    later = frame.loc[repeated]
    earlier = first.loc[later[EVENT_ID]]
    same = (earlier[list(CONTENT[:3])].to_numpy() == later[list(CONTENT[:3])].to_numpy()).all(
        axis=1
    ) & (
        (earlier[AMOUNT].to_numpy() == later[AMOUNT].to_numpy())
        | (earlier[AMOUNT].isna().to_numpy() & later[AMOUNT].isna().to_numpy())
    )
    conflict = np.zeros(len(frame), dtype=bool)
    retry = np.zeros(len(frame), dtype=bool)
    conflict[np.flatnonzero(repeated)[~same]] = True
    retry[np.flatnonzero(repeated)[same]] = True
    return conflict, retry
