"""What the application layer records and answers: a model's training summary, one
customer's forecast, and the manifest keys the layer owns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ltvcast.data.clean import CleaningReport
from ltvcast.data.schemas import CUSTOMER_ID, PREDICTION_COLUMNS, QUANTILE_COLUMNS, CustomerData
from ltvcast.exceptions import ArtifactError
from ltvcast.strategy.explain import BASE, top_drivers

#: Forecast fields of every answer, in order (``value_p10``/``value_p90`` empty when the
#: model gives no quantiles).
FORECAST_COLUMNS = (*PREDICTION_COLUMNS[1:], *QUANTILE_COLUMNS)
#: Manifest keys this layer writes next to the forecaster's own.
MANIFEST_KEYS = (
    "training_window",
    "customers",
    "event_types",
    "profile_columns",
    "cleaning",
    "segment_rules",
    "reason",
    "notes",
)


@dataclass(frozen=True)
class TrainingSummary:
    """What a model was trained on, stored in its manifest."""

    start: pd.Timestamp
    end: pd.Timestamp
    customers: int
    event_types: tuple[str, ...] = ()
    profile_columns: tuple[str, ...] = ()
    cleaning: dict[str, Any] | None = None
    #: Why this model makes the forecasts (``auto``'s choice), if a meta-model chose it.
    reason: str | None = None
    #: What else happened while training (a fallback to another model).
    notes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        data: CustomerData,
        as_of: pd.Timestamp,
        cleaning: CleaningReport | None = None,
        reason: str | None = None,
        notes: Iterable[str] = (),
    ) -> TrainingSummary:
        """Summarise the training data up to ``as_of``."""
        profiles = data.profiles
        return cls(
            start=data.first_timestamp(),
            end=as_of,
            customers=len(data.until(as_of).customers()),
            event_types=data.event_types,
            profile_columns=()
            if profiles is None
            else tuple(str(c) for c in profiles.columns if c != CUSTOMER_ID),
            cleaning=None if cleaning is None else cleaning.to_dict(),
            reason=reason,
            notes=tuple(notes),
        )

    def to_manifest(self) -> dict[str, Any]:
        """The manifest keys of :data:`MANIFEST_KEYS` (but ``segment_rules``)."""
        return {
            "training_window": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "customers": self.customers,
            "event_types": list(self.event_types),
            "profile_columns": list(self.profile_columns),
            "cleaning": self.cleaning,
            "reason": self.reason,
            "notes": list(self.notes),
        }

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> TrainingSummary | None:
        """Inverse of :meth:`to_manifest`; ``None`` for a model saved without it."""
        window = manifest.get("training_window")
        if not isinstance(window, dict):
            return None
        try:
            return cls(
                start=pd.Timestamp(window["start"]),
                end=pd.Timestamp(window["end"]),
                customers=int(manifest.get("customers", 0)),
                event_types=tuple(manifest.get("event_types") or ()),
                profile_columns=tuple(manifest.get("profile_columns") or ()),
                cleaning=manifest.get("cleaning"),
                reason=manifest.get("reason"),
                notes=tuple(manifest.get("notes") or ()),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ArtifactError(f"manifest: unreadable training_window ({err})") from err


@dataclass(frozen=True)
class CustomerForecast:
    """One customer's answer: forecast, segment, and (when asked) the forecast's drivers."""

    customer_id: str
    as_of: pd.Timestamp
    #: :data:`FORECAST_COLUMNS` -> value (``None`` where the model gives none).
    values: dict[str, float | None]
    segment: str
    tenure_days: float
    purchases: float
    #: Drivers and ``base_value`` summing to ``predicted_value`` (``None``: not asked, or
    #: the model gives no explanations).
    contributions: pd.Series | None = None

    def answer(self) -> dict[str, Any]:
        """The forecast fields, ``segment`` and ``as_of``: what every edge shows."""
        return {**self.values, "segment": self.segment, "as_of": self.as_of}

    def top_drivers(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` drivers with the largest absolute contribution."""
        if self.contributions is None:
            return []
        frame = self.contributions.to_frame(self.customer_id).T
        top = top_drivers(frame, k)
        return list(zip(top["feature"].astype(str), top["contribution"].astype(float), strict=True))

    @property
    def base_value(self) -> float | None:
        """The explanation's base value (``None`` without contributions)."""
        return None if self.contributions is None else float(self.contributions[BASE])
