"""What a customer request asks for beyond the forecast: drivers, intervals and curves,
computed from the customer's own rows at the forecast's as-of."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ltvcast.data.schemas import CustomerData
from ltvcast.pipeline import ScoringModel
from ltvcast.service.wire import CurvePoint, CustomerOut, Driver
from ltvcast.timeframe import Horizon


def add_details(
    scoring: ScoringModel,
    own: CustomerData,
    out: CustomerOut,
    explain: int,
    horizons: Sequence[Horizon] | None,
    discount_rate: float | None,
    intervals: bool,
) -> None:
    """Add to ``out`` what a customer request asked for beyond the forecast, computed from
    the customer's own rows at the forecast's as-of."""
    when = pd.Timestamp(out.as_of)
    if explain > 0:
        drivers = scoring.explain(own, top=explain, as_of=when)
        out.base_value = float(drivers["base_value"].iloc[0])
        out.drivers = [
            Driver(feature=str(f), contribution=float(c))
            for f, c in zip(drivers["feature"], drivers["contribution"], strict=True)
        ]
    if intervals and out.value_p10 is None:
        bands = scoring.predict(own, when, intervals=True).iloc[0]
        out.value_p10, out.value_p90 = float(bands["value_p10"]), float(bands["value_p90"])
    if horizons is not None or discount_rate is not None:
        spans = horizons or (scoring.horizon,)
        table = scoring.predict_curve(own, when, spans, discount_rate=discount_rate)
        out.curve = _curve_points(table.iloc[0], spans)


#: Quantities of a curve point, as the curve columns name them.
_CURVE = ("purchases", "value", "p_alive", "p_active", "discounted_value")


def _curve_points(row: pd.Series, horizons: Sequence[Horizon]) -> list[CurvePoint]:
    """One customer's curve columns (``purchases_30d`` ...) as points."""
    return [
        CurvePoint(
            horizon=str(h),
            **{k: float(row[f"{k}_{h}"]) for k in _CURVE if f"{k}_{h}" in row.index},
        )
        for h in horizons
    ]
