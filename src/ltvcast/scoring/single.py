"""One customer described in JSON: the request body of ``ltvcast score`` and ``POST /v1/score``.

The payload (every part optional, but at least one transaction or event is needed)::

    {"as_of": "2024-05-01T00:00:00Z",
     "transactions": [{"timestamp": "...", "amount": 25.0}, ...],
     "events": [{"timestamp": "...", "event_type": "view"}, ...],
     "profile": {"age": 30, "gender": "male", "city_tier": 1}}

Errors are :class:`~ltvcast.exceptions.SchemaError` whose message starts with the JSON path of
the offending value, e.g. ``transactions[3].amount: must be a number``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ltvcast.data.schemas import (
    AMOUNT,
    CUSTOMER_ID,
    EVENT_TYPE,
    MAX_ABS_AMOUNT,
    TIMESTAMP,
    TIMESTAMP_RANGE,
    CustomerData,
)
from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.timeframe import parse_as_of, to_naive_utc

#: The id given to the customer a request describes.
REQUEST_CUSTOMER_ID = "request"

_TOP_LEVEL_KEYS = ("as_of", "transactions", "events", "profile")
_PROFILE_SCALARS = (str, int, float, bool, type(None))


def parse_timestamp(value: object, path: str) -> pd.Timestamp:
    """Parse an ISO-8601 string into a tz-naive UTC timestamp.

    Raises
    ------
    SchemaError
        ``"{path}: must be an ISO-8601 timestamp string; got ..."`` for anything else.
    """
    if not isinstance(value, str) or not value.strip():
        raise SchemaError(f"{path}: must be an ISO-8601 timestamp string; got {value!r}")
    try:
        stamp = pd.Timestamp(value.strip())
    except (ValueError, TypeError, OverflowError):
        raise SchemaError(f"{path}: must be an ISO-8601 timestamp string; got {value!r}") from None
    if pd.isna(stamp):
        raise SchemaError(f"{path}: must be an ISO-8601 timestamp string; got {value!r}")
    stamp = to_naive_utc(stamp)
    low, high = TIMESTAMP_RANGE
    if not low <= stamp <= high:
        raise SchemaError(
            f"{path}: {value.strip()!r} lies outside the supported range "
            f"{low:%Y-%m-%d} .. {high:%Y-%m-%d}"
        )
    return stamp


def parse_amount(value: object, path: str) -> float:
    """Check that ``value`` is a finite JSON number (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{path}: must be a number; got {value!r}")
    if not math.isfinite(value):
        raise SchemaError(f"{path}: must be a finite number; got {value!r}")
    if abs(value) > MAX_ABS_AMOUNT:
        raise SchemaError(f"{path}: |amount| must be at most {MAX_ABS_AMOUNT:,.0f}; got {value!r}")
    return float(value)


def parse_event_type(value: object, path: str) -> str:
    """Check that ``value`` is a non-empty string; returns it stripped and lower-cased."""
    if not isinstance(value, str) or not value.strip():
        raise SchemaError(f"{path}: must be a non-empty string such as 'view'; got {value!r}")
    return value.strip().lower()


def parse_score_request(payload: dict[str, Any]) -> tuple[CustomerData, pd.Timestamp | None]:
    """Turn a score request into a one-customer :class:`CustomerData` and its as-of time.

    Parameters
    ----------
    payload
        The decoded JSON object (see the module docstring). The customer gets the id
        :data:`REQUEST_CUSTOMER_ID`.

    Returns
    -------
    (CustomerData, Timestamp or None)
        The bundle (profiles only when a profile was given) and the parsed ``as_of``
        (``None`` when absent; a bare date means through the end of that day).

    Raises
    ------
    SchemaError
        For unknown keys, wrong types, unparsable timestamps, non-finite amounts, or a request
        with neither transactions nor events; the message starts with the JSON path.
    """
    if not isinstance(payload, dict):
        raise SchemaError(f"request body must be a JSON object; got {type(payload).__name__}")
    unknown = sorted(set(payload) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise SchemaError(
            f"{unknown[0]}: unknown field; a score request has {', '.join(_TOP_LEVEL_KEYS)}"
        )
    as_of = _parse_as_of(payload.get("as_of"))
    tx_items = _items(payload, "transactions", (TIMESTAMP, AMOUNT))
    ev_items = _items(payload, "events", (TIMESTAMP, EVENT_TYPE))
    if not tx_items and not ev_items:
        raise SchemaError("transactions, events: the request needs at least one of them")
    transactions = pd.DataFrame(
        {
            CUSTOMER_ID: [REQUEST_CUSTOMER_ID] * len(tx_items),
            TIMESTAMP: pd.to_datetime(
                [
                    parse_timestamp(t[TIMESTAMP], f"transactions[{i}].timestamp")
                    for i, t in enumerate(tx_items)
                ]
            ),
            AMOUNT: pd.Series(
                [
                    parse_amount(t[AMOUNT], f"transactions[{i}].amount")
                    for i, t in enumerate(tx_items)
                ],
                dtype="float64",
            ),
        }
    )
    events = pd.DataFrame(
        {
            CUSTOMER_ID: [REQUEST_CUSTOMER_ID] * len(ev_items),
            TIMESTAMP: pd.to_datetime(
                [
                    parse_timestamp(e[TIMESTAMP], f"events[{i}].timestamp")
                    for i, e in enumerate(ev_items)
                ]
            ),
            EVENT_TYPE: [
                parse_event_type(e[EVENT_TYPE], f"events[{i}].event_type")
                for i, e in enumerate(ev_items)
            ],
        }
    )
    profiles = _parse_profile(payload.get("profile"))
    data = CustomerData(
        transactions=transactions, events=events if ev_items else None, profiles=profiles
    )
    return data, as_of


def _parse_as_of(value: object) -> pd.Timestamp | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError(f"as_of: must be a date or ISO-8601 timestamp string; got {value!r}")
    try:
        return parse_as_of(value, pd.Timestamp(0))
    except ConfigError:
        raise SchemaError(
            f"as_of: must be a date or ISO-8601 timestamp string; got {value!r}"
        ) from None


def _items(payload: dict[str, Any], key: str, required: tuple[str, ...]) -> list[dict[str, Any]]:
    items = payload.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise SchemaError(f"{key}: must be a list of objects; got {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SchemaError(f"{key}[{i}]: must be an object; got {item!r}")
        for field in required:
            if field not in item:
                raise SchemaError(f"{key}[{i}].{field}: required")
        extra = sorted(set(item) - set(required))
        if extra:
            raise SchemaError(
                f"{key}[{i}].{extra[0]}: unknown field; allowed: {', '.join(required)}"
            )
    return items


def _parse_profile(profile: object) -> pd.DataFrame | None:
    if profile is None:
        return None
    if not isinstance(profile, dict):
        raise SchemaError(f"profile: must be an object; got {type(profile).__name__}")
    for key, value in profile.items():
        if key == CUSTOMER_ID:
            raise SchemaError(f"profile.{key}: not allowed; the request names no customer")
        if not isinstance(value, _PROFILE_SCALARS) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise SchemaError(
                f"profile.{key}: must be a string, number, boolean or null; got {value!r}"
            )
    return pd.DataFrame([{CUSTOMER_ID: REQUEST_CUSTOMER_ID, **profile}])
