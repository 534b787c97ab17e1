"""Segments built from forecasts (not from past RFM): a value x risk grid.

Every customer falls in exactly one segment. With a *high cut* and a *low cut* on
``predicted_value``, an *active cut* on ``p_active`` and a definition of *new*, the rules are
applied in this order (first match wins):

=====================  =====================================================================
segment                rule
=====================  =====================================================================
champions              high value and active
high_value_at_risk     not active, and high value or (mid value, not new, high value-if-active)
promising_new          mid value and new
steady                 mid value and active
hibernating            mid or low value and not active
low_value              low value and active
=====================  =====================================================================

where *high value* is ``predicted_value >= high cut``, *mid value* ``low cut <= predicted_value <
high cut``, *low value* the rest (a forecast of zero is always low value, whatever the cuts: a
quantile cut can be 0 when most customers are forecast to buy nothing), *active* is
``p_active >= active cut``, *value-if-active* is ``predicted_value / p_active`` (what
the customer is forecast to spend if they do buy: what a churn would lose; high at or above
its own cut, fitted at the same quantile as the high value cut), and *new* is first seen at
most ``new_tenure_days`` before as-of with at most ``new_max_purchases`` purchase days. Cuts
are given as quantiles of the forecasts or as absolute numbers (:class:`SegmentRules`);
:meth:`SegmentRules.fit` turns them into the absolute :class:`FittedSegmentRules` that label
any customer, one at a time included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.exceptions import ConfigError, SchemaError

CHAMPIONS = "champions"
HIGH_VALUE_AT_RISK = "high_value_at_risk"
PROMISING_NEW = "promising_new"
STEADY = "steady"
HIBERNATING = "hibernating"
LOW_VALUE = "low_value"

#: Segments in display order (most valuable first).
SEGMENTS = (CHAMPIONS, HIGH_VALUE_AT_RISK, PROMISING_NEW, STEADY, HIBERNATING, LOW_VALUE)

#: What a CRM team should do with each segment.
ACTIONS = {
    CHAMPIONS: "Reward and retain: loyalty perks, early access; no discounts needed.",
    HIGH_VALUE_AT_RISK: "Rescue now: personal outreach or a retention offer before they lapse.",
    PROMISING_NEW: "Nurture: onboarding series and a second-purchase incentive.",
    STEADY: "Grow: cross-sell and regular newsletters to lift basket and frequency.",
    HIBERNATING: "Win back cheaply: automated reactivation email only.",
    LOW_VALUE: "Serve at low cost: organic channels, no paid contact.",
}

Mode = Literal["quantile", "absolute"]


@dataclass(frozen=True)
class FittedSegmentRules:
    """Absolute cuts that label customers; see the module docstring for the rules."""

    high_value_cut: float
    low_value_cut: float
    active_cut: float
    new_tenure_days: float
    new_max_purchases: float
    high_stake_cut: float = float("inf")

    def assign(self, predictions: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
        """Segment of each customer of ``predictions`` (any number of rows, one included).

        Parameters
        ----------
        predictions
            ``customer_id``, ``predicted_value``, ``p_active``.
        history
            ``customer_id``, ``tenure_days``, ``purchases`` (see
            :func:`~ltvcast.features.rfm.customer_history`); customers missing from it count
            as new.

        Returns
        -------
        Series
            Segment names indexed by ``customer_id``, in the order of ``predictions``.
        """
        _require(predictions, "predictions", (CUSTOMER_ID, "predicted_value", "p_active"))
        _require(history, "history", (CUSTOMER_ID, "tenure_days", "purchases"))
        ids = predictions[CUSTOMER_ID].to_numpy()
        past = history.set_index(CUSTOMER_ID)[["tenure_days", "purchases"]].reindex(ids)
        tenure = past["tenure_days"].fillna(0.0).to_numpy(np.float64)
        purchases = past["purchases"].fillna(0.0).to_numpy(np.float64)
        value = predictions["predicted_value"].to_numpy(np.float64)
        p_active = predictions["p_active"].to_numpy(np.float64)
        positive = value > 0
        high = positive & (value >= self.high_value_cut)
        mid = positive & ~high & (value >= self.low_value_cut)
        active = p_active >= self.active_cut
        new = (tenure <= self.new_tenure_days) & (purchases <= self.new_max_purchases)
        stake = np.divide(
            value, p_active, out=np.zeros_like(value), where=positive & (p_active > 0)
        )
        rescue = ~active & (high | (mid & ~new & (stake >= self.high_stake_cut)))
        labels = np.select(
            [high & active, rescue, mid & new, mid & active, ~active],
            [CHAMPIONS, HIGH_VALUE_AT_RISK, PROMISING_NEW, STEADY, HIBERNATING],
            default=LOW_VALUE,
        )
        return pd.Series(labels, index=pd.Index(ids, name=CUSTOMER_ID), name="segment")

    def label(
        self, predicted_value: float, p_active: float, tenure_days: float, purchases: float
    ) -> str:
        """Segment of one customer (what the service calls for a single score)."""
        one = pd.DataFrame(
            {CUSTOMER_ID: ["_"], "predicted_value": [predicted_value], "p_active": [p_active]}
        )
        history = pd.DataFrame(
            {CUSTOMER_ID: ["_"], "tenure_days": [tenure_days], "purchases": [purchases]}
        )
        return str(self.assign(one, history).iloc[0])

    def to_dict(self) -> dict[str, float]:
        """JSON-able cuts (stored next to a model for the service)."""
        return {key: float(val) for key, val in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FittedSegmentRules:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                **{key: float(values[key]) for key in cls.__dataclass_fields__ if key in values}
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"segment rules need numbers for {list(cls.__dataclass_fields__)}: {err}"
            ) from err


@dataclass(frozen=True)
class SegmentRules:
    """Configurable cuts of the segment grid.

    Parameters
    ----------
    high_value, low_value
        Value cuts: quantiles of ``predicted_value`` in [0, 1] when ``value_mode`` is
        ``"quantile"`` (default: top 20% are high value, below the median low value), or
        amounts when ``"absolute"``.
    active
        P(active) cut: a quantile of ``p_active`` when ``active_mode`` is ``"quantile"``
        (default: customers below the median P(active) are at risk), or a probability when
        ``"absolute"``. The default is relative because models differ in what P(active) means
        over a short horizon (P(alive) for BTYD, P(a purchase in the horizon) for GBDT): with
        an absolute 0.5 and a 60- or 90-day horizon, nearly every customer counts as inactive
        and the steady and low-value segments stay empty.
    new_tenure_days, new_max_purchases
        Customers first seen at most ``new_tenure_days`` before as-of and with at most
        ``new_max_purchases`` purchase days are new.
    """

    high_value: float = 0.8
    low_value: float = 0.5
    value_mode: Mode = "quantile"
    active: float = 0.5
    active_mode: Mode = "quantile"
    new_tenure_days: float = 90.0
    new_max_purchases: float = 2.0

    def __post_init__(self) -> None:
        for name in ("value_mode", "active_mode"):
            mode = getattr(self, name)
            if mode not in ("quantile", "absolute"):
                raise ConfigError(
                    f"SegmentRules.{name} must be 'quantile' or 'absolute'; got {mode!r}"
                )
        if self.low_value > self.high_value:
            raise ConfigError(
                f"SegmentRules: low_value ({self.low_value}) must not exceed high_value "
                f"({self.high_value})"
            )
        quantiles = [("high_value", self.high_value), ("low_value", self.low_value)] * (
            self.value_mode == "quantile"
        ) + [("active", self.active)]
        for name, val in quantiles:
            if not 0.0 <= val <= 1.0:
                raise ConfigError(f"SegmentRules.{name} must lie in [0, 1]; got {val}")
        for name in ("new_tenure_days", "new_max_purchases"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SegmentRules.{name} must be >= 0; got {getattr(self, name)}")

    def fit(self, predictions: pd.DataFrame) -> FittedSegmentRules:
        """Turn quantile cuts into absolute ones on ``predictions`` (absolute cuts pass through)."""
        _require(predictions, "predictions", ("predicted_value", "p_active"))
        if self.value_mode == "quantile" or self.active_mode == "quantile":
            if not len(predictions):
                raise ConfigError("cannot fit quantile segment cuts on an empty prediction table")
        value = predictions["predicted_value"].to_numpy(np.float64)
        p_active = predictions["p_active"].to_numpy(np.float64)
        positive = (value > 0) & (p_active > 0)
        stake = np.divide(value, p_active, out=np.zeros_like(value), where=positive)
        if self.value_mode == "quantile":
            high, low = np.quantile(value, [self.high_value, self.low_value])
            high_stake = np.quantile(stake, self.high_value) if len(stake) else np.inf
        else:
            high, low = self.high_value, self.low_value
            high_stake = self.high_value
        active = (
            np.quantile(p_active, self.active) if self.active_mode == "quantile" else self.active
        )
        return FittedSegmentRules(
            float(high),
            float(low),
            float(active),
            self.new_tenure_days,
            self.new_max_purchases,
            float(high_stake),
        )


def assign_segments(
    predictions: pd.DataFrame, history: pd.DataFrame, rules: SegmentRules | None = None
) -> pd.Series:
    """Fit ``rules`` (default :class:`SegmentRules`) on ``predictions`` and label every customer.

    Returns
    -------
    Series
        Segment names indexed by ``customer_id``, in the order of ``predictions``.
    """
    return (rules or SegmentRules()).fit(predictions).assign(predictions, history)


def segment_summary(predictions: pd.DataFrame, segments: pd.Series) -> pd.DataFrame:
    """Size, predicted revenue and recommended action of every segment (all six, in order).

    Parameters
    ----------
    predictions
        ``customer_id``, ``predicted_value``, ``p_active``.
    segments
        Segment names indexed by ``customer_id`` (as :func:`assign_segments` returns).

    Returns
    -------
    DataFrame
        ``segment``, ``customers``, ``share``, ``predicted_revenue``, ``revenue_share``,
        ``mean_value``, ``mean_p_active``, ``action``.
    """
    _require(predictions, "predictions", (CUSTOMER_ID, "predicted_value", "p_active"))
    frame = predictions.assign(segment=segments.reindex(predictions[CUSTOMER_ID]).to_numpy())
    grouped = frame.groupby("segment")
    table = pd.DataFrame(
        {
            "customers": grouped.size(),
            "predicted_revenue": grouped["predicted_value"].sum(),
            "mean_p_active": grouped["p_active"].mean(),
        }
    ).reindex(list(SEGMENTS))
    table[["customers", "predicted_revenue"]] = table[["customers", "predicted_revenue"]].fillna(0)
    table["customers"] = table["customers"].astype(np.int64)
    total_customers = max(int(table["customers"].sum()), 1)
    total_revenue = float(table["predicted_revenue"].sum())
    table["share"] = table["customers"] / total_customers
    table["revenue_share"] = table["predicted_revenue"] / total_revenue if total_revenue else 0.0
    table["mean_value"] = table["predicted_revenue"] / table["customers"].replace(0, np.nan)
    table["action"] = [ACTIONS[name] for name in table.index]
    table.index.name = "segment"
    columns = ["customers", "share", "predicted_revenue", "revenue_share", "mean_value"]
    return table[[*columns, "mean_p_active", "action"]].reset_index()


def _require(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [col for col in columns if col not in frame.columns]
    if missing:
        raise SchemaError(
            f"{name}: missing column(s) {', '.join(map(repr, missing))}; "
            f"has {', '.join(map(repr, frame.columns))}"
        )
