"""Wire payloads of the HTTP service (pydantic, strict types, unknown fields refused)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    model_validator,
)

from ltvcast.scoring.online import PURCHASE


def _naive_utc(stamp: datetime) -> datetime:
    """Aware times are converted to UTC; naive ones are taken as UTC already."""
    return stamp if stamp.tzinfo is None else stamp.astimezone(UTC).replace(tzinfo=None)


Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
EventType = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)
]
Timestamp = Annotated[datetime, Strict(False), AfterValidator(_naive_utc)]
Amount = Annotated[float, AllowInfNan(False)]


class EventIn(BaseModel):
    """One event: a purchase (with ``amount``; negative for a return) or a behaviour event."""

    model_config = ConfigDict(strict=True, extra="forbid")

    customer_id: Id
    timestamp: Timestamp = Field(description="ISO-8601; without a zone it is taken as UTC.")
    event_type: EventType = Field(description="purchase, view, click, cart ... (any string).")
    amount: Amount | None = Field(None, description="Required for purchases, refused otherwise.")
    event_id: Id | None = Field(
        None, description="Idempotency key: a retry with the same id is counted once."
    )

    @model_validator(mode="after")
    def _amount_matches_type(self) -> EventIn:
        if self.event_type == PURCHASE and self.amount is None:
            raise ValueError("amount: a purchase needs an amount")
        if self.event_type != PURCHASE and self.amount is not None:
            raise ValueError(
                f"amount: only purchase events carry an amount, not {self.event_type!r}"
            )
        return self


class EventsIn(BaseModel):
    """``POST /v1/events`` body; items are checked one by one so bad ones do not sink good ones."""

    model_config = ConfigDict(strict=True, extra="forbid")

    events: list[Any] = Field(
        description="Events shaped as EventIn.",
        json_schema_extra={"items": EventIn.model_json_schema()},
    )


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
    as_of: datetime
    model_version: str


class Driver(BaseModel):
    feature: str
    contribution: float


class CustomerOut(Forecast):
    customer_id: str
    last_event_at: datetime | None
    #: With ``?explain=true``: the model's base value and the strongest drivers; base value
    #: plus every driver's contribution (not only these) adds up to ``predicted_value``.
    base_value: float | None = None
    drivers: list[Driver] | None = None


class ReloadOut(BaseModel):
    reloaded: bool
    model_version: str
    customers: int


class HealthOut(BaseModel):
    status: str
    model_version: str
    customers: int
    clock: datetime | None


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
