"""``POST /v1/events`` items -> a canonical event frame, bad items set aside with reasons."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ltvcast.data.purchases import amount_rule_violations
from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, EVENT_TYPE, TIMESTAMP
from ltvcast.service.ingest import EVENT_ID
from ltvcast.service.wire import EVENTS, EventIn, Rejection, validation_message
from ltvcast.timeframe import to_naive_utc


def validate_events(items: list[Any]) -> tuple[pd.DataFrame, list[Rejection]]:
    """Validate all items in one pass (failing ones set aside with their reasons) and return
    the valid events as a frame (see :func:`event_frame`)."""
    reasons: dict[int, list[str]] = {}
    try:
        good = EVENTS.validate_python(items)
    except ValidationError as err:
        for item in err.errors():
            index = int(item["loc"][0])
            sub = ValidationError.from_exception_data(err.title, [item])  # type: ignore[list-item]
            reasons.setdefault(index, []).append(validation_message(sub, skip=1))
        good = EVENTS.validate_python([item for i, item in enumerate(items) if i not in reasons])
    positions = np.array([i for i in range(len(items)) if i not in reasons], dtype=np.int64)
    frame, broken = event_frame(good)
    for row, reason in broken.items():
        reasons[int(positions[row])] = [reason]
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
