"""Wire payloads of the HTTP service (pydantic, strict types, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NotRequired

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    with_config,
)
from typing_extensions import TypedDict

from ltvcast.data.schemas import MAX_ABS_AMOUNT

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
EventType = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)
]
Amount = Annotated[float, AllowInfNan(False), Field(ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT)]
#: Times in answers: naive UTC inside, RFC 3339 with a ``Z`` on the wire.
UTCTime = Annotated[
    datetime,
    PlainSerializer(lambda t: t.isoformat() + "Z", return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


@with_config(ConfigDict(strict=True, extra="forbid"))
class EventIn(TypedDict):
    """One event: a purchase (with ``amount``; negative for a return) or a behaviour event.

    A typed dict, not a model: a batch of 1,000 validates without building 1,000 objects.
    Two rules span fields and are checked on the whole batch at once (see
    ``ltvcast.service.events``): a purchase needs an ``amount``, other events must not have
    one; and timestamps with a zone are converted to naive UTC.
    """

    customer_id: Id
    timestamp: Annotated[
        datetime, Strict(False), Field(description="ISO-8601; without a zone it is taken as UTC.")
    ]
    event_type: Annotated[EventType, Field(description="purchase, view, click, cart ... (any).")]
    amount: NotRequired[
        Annotated[Amount | None, Field(description="Required for purchases, refused otherwise.")]
    ]
    event_id: NotRequired[
        Annotated[
            Id | None,
            Field(description="Idempotency key: a retry with the same id is counted once."),
        ]
    ]


#: Validates a batch of :class:`EventIn` items.
EVENTS = TypeAdapter(list[EventIn])


class EventsIn(BaseModel):
    """``POST /v1/events`` body; items are checked one by one so bad ones do not sink good ones."""

    model_config = ConfigDict(strict=True, extra="forbid")

    events: list[Any] = Field(
        description="Events shaped as EventIn.",
        json_schema_extra={"items": TypeAdapter(EventIn).json_schema()},
    )


class Problem(BaseModel):
    """Every error answer: one line that says what is wrong."""

    detail: str


class Rejection(BaseModel):
    index: int
    reason: str


class EventsOut(BaseModel):
    accepted: int = Field(description="Valid events, now durably stored (retries included).")
    duplicates: int = Field(description="Accepted events whose event_id was already stored.")
    rejected: list[Rejection]


class Forecast(BaseModel):
    predicted_value: float
    predicted_purchases: float
    p_active: float
    value_p10: float | None
    value_p90: float | None
    segment: str
    as_of: UTCTime
    model_version: str


class Driver(BaseModel):
    feature: str
    contribution: float


class CurvePoint(BaseModel):
    """The forecast over ``(as_of, as_of + horizon]`` from the one fitted model (BTYD or
    seq)."""

    horizon: str
    purchases: float = Field(description="Expected repeat purchases.")
    value: float = Field(description="Their expected value.")
    p_alive: float | None = Field(None, description="P(alive) at as_of + horizon (BTYD).")
    p_active: float | None = Field(
        None, description="P(a purchase in (as_of, as_of + horizon]) (seq)."
    )
    discounted_value: float | None = Field(
        None, description="Value with continuous annual discounting (with discount_rate)."
    )


class CustomerOut(Forecast):
    customer_id: str
    last_event_at: UTCTime | None
    #: With ``?explain=true``: the model's base value and the strongest drivers; base value
    #: plus every driver's contribution (not only these) adds up to ``predicted_value``.
    base_value: float | None = None
    drivers: list[Driver] | None = None
    #: With ``?horizons=30d,90d``: the forecast at each horizon.
    curve: list[CurvePoint] | None = None


class RecommendedItem(BaseModel):
    rank: int
    item_id: str
    score: float


class RecommendationsOut(BaseModel):
    """A customer's next best action (with the figures that decided it) and items."""

    customer_id: str
    as_of: UTCTime
    model_version: str
    segment: str
    action: str
    action_value: float
    action_reason: str
    #: Empty when the store's transactions name no items.
    items: list[RecommendedItem]


class NewCustomerOut(BaseModel):
    """What a customer who has just made a first purchase is expected to do."""

    model_version: str
    curve: list[CurvePoint]


class ReloadOut(BaseModel):
    reloaded: bool
    model_version: str
    customers: int


class HealthOut(BaseModel):
    status: str
    model_version: str
    customers: int
    clock: UTCTime | None


def validation_message(error: ValidationError, skip: int = 0) -> str:
    """One line per problem: ``path: message`` (``skip`` leading path parts dropped)."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"][skip:])
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(
            message if not path or message.startswith(f"{path}:") else f"{path}: {message}"
        )
    return "; ".join(lines)
