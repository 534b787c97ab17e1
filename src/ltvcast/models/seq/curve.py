"""The direct model's horizon curve: one consistent LTV(t) from one network.

Design. The model's own horizon keeps its heads (the ZILN distribution of spend and the
Poisson mean of purchases) and the hybrid's blend with BTYD, so its forecast is the one
:meth:`~ltvcast.models.seq.estimator.SeqForecaster.predict` gives, and that forecast is the
same as without a curve: the curve's steps read the network's shared layer with its gradient
stopped and start from their own random draws (on the inner backtests of
``bench/bench_seq.py --inner``, letting the curve's losses train the shared layer raised the
own horizon's MAE). The other horizons of the
curve (:data:`CURVE_HORIZONS` clipped to what the training data can label, :func:`knots`)
get one purchase-count step each (:func:`~ltvcast.models.seq.network.curve_log_means`):
from the own horizon outwards, each longer horizon multiplies the mean purchases by
``exp(softplus(step)) >= 1`` and each shorter one divides them by it, so the purchase curve
never decreases, whatever the weights. The steps are trained with a Poisson loss at every
origin whose label window for that horizon ends inside the training data, and in the hybrid
they start at BTYD's own curve at that origin (:func:`~ltvcast.models.seq.hybrid.curve_offsets`).

The network's value is its purchases times a spend per purchase (``network_value=
"purchases"``, as BTYD's curve is: Gamma-Gamma's spend does not depend on the horizon), so a
customer's value, purchases and P(active) curves are the own horizon's forecast times the
ratio ``R(h)`` of mean purchases at ``h`` to those at the own horizon (:func:`curve_columns`):

- ``purchases_h = predicted_purchases * R(h)`` and ``value_h = predicted_value * R(h)``,
  non-decreasing in ``h``;
- ``p_active_h = 1 - (1 - p_active)^R(h)``: P(at least one purchase in ``(as_of, as_of + h]``)
  when purchases arrive as a Poisson process with the curve's mean (not BTYD's P(alive));
- ``discounted_value_h``: the value curve discounted continuously at the annual rate.

Between the trained horizons (and from 0 to the first) ``R`` is linear in days.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ltvcast.exceptions import ConfigError
from ltvcast.models.clv import YEAR_DAYS, check_discount_rate
from ltvcast.timeframe import Horizon, parse_horizons

#: The curve's default horizons (those the training data can label are kept).
CURVE_HORIZONS = ("30d", "90d", "180d", "1y")


def knots(
    horizon: Horizon,
    horizons: str | Sequence[str | Horizon] | None,
    period_days: int,
    max_periods: int,
) -> tuple[tuple[Horizon, ...], tuple[int, ...]]:
    """The curve's horizons (shortest first, ``horizon`` among them) and their periods.

    ``horizons`` (default :data:`CURVE_HORIZONS`) are rounded to whole periods of
    ``period_days``; one that rounds to the periods of a shorter one (the own horizon first)
    is left out, as is one longer than ``max_periods`` (no origin can label it).
    """
    chosen = parse_horizons(horizons if horizons is not None else CURVE_HORIZONS)
    own = max(1, round(horizon.days / period_days))
    kept: dict[int, Horizon] = {own: horizon}
    for h in chosen:
        periods = max(1, round(h.days / period_days))
        if periods <= max_periods and periods not in kept:
            kept[periods] = h
    order = sorted(kept)
    return tuple(kept[p] for p in order), tuple(order)


def check_horizons(longest: Horizon, horizons: Sequence[Horizon]) -> None:
    """:class:`ConfigError` for a horizon longer than the curve's ``longest``."""
    beyond = [str(h) for h in horizons if h.days > longest.days + 1e-9]
    if beyond:
        raise ConfigError(
            f"seq: the longest horizon this model was trained for is {longest}; "
            f"it has no forecast for {', '.join(beyond)}"
        )


def curve_columns(
    forecast: dict[str, np.ndarray],
    ratios: np.ndarray,
    knot_days: Sequence[float],
    horizons: Sequence[Horizon],
    discount_rate: float | None = None,
) -> dict[str, np.ndarray]:
    """Per horizon ``h``: ``purchases_h``, ``value_h``, ``p_active_h`` (and
    ``discounted_value_h`` with a ``discount_rate``) from one network's ``forecast`` columns
    and curve ``ratios`` ``(customers, len(knot_days))`` at the trained ``knot_days``.

    ``horizons`` must not be longer than the last knot (:func:`check_horizons`).
    """
    days = np.concatenate([[0.0], np.asarray(knot_days, dtype=np.float64)])
    curve = np.concatenate([np.zeros((len(ratios), 1)), ratios], axis=1)
    p = np.clip(forecast["p_active"], 0.0, 1.0)
    delta = None if discount_rate is None else check_discount_rate(discount_rate) / YEAR_DAYS
    out: dict[str, np.ndarray] = {}
    for h in horizons:
        ratio = _interpolate(curve, days, h.days)
        out[f"purchases_{h}"] = forecast["predicted_purchases"] * ratio
        out[f"value_{h}"] = forecast["predicted_value"] * ratio
        out[f"p_active_{h}"] = 1.0 - (1.0 - p) ** ratio
        if delta is not None:
            out[f"discounted_value_{h}"] = forecast["predicted_value"] * _discounted(
                curve, days, h.days, delta
            )
    return out


def _interpolate(curve: np.ndarray, days: np.ndarray, at: float) -> np.ndarray:
    """``curve`` ``(n, k)`` at knots ``days`` linearly interpolated at day ``at``."""
    j = int(np.clip(np.searchsorted(days, at), 1, len(days) - 1))
    share = (at - days[j - 1]) / (days[j] - days[j - 1])
    out: np.ndarray = curve[:, j - 1] + share * (curve[:, j] - curve[:, j - 1])
    return out


def _discounted(curve: np.ndarray, days: np.ndarray, at: float, delta: float) -> np.ndarray:
    """``int_0^at exp(-delta u) dC(u)`` of the piecewise-linear ``curve`` (``delta`` per day)."""
    total = np.zeros(len(curve))
    for j in range(1, len(days)):
        start, end = days[j - 1], min(days[j], at)
        if end <= start:
            break
        step = _interpolate(curve, days, end) - curve[:, j - 1]
        weight = (
            1.0
            if delta == 0.0
            else (np.exp(-delta * start) - np.exp(-delta * end)) / (delta * (end - start))
        )
        total += step * weight
    return total
