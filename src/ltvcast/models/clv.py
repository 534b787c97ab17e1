"""CLV quantities any BTYD purchase model gives from its expected-purchases curve.

Every RFM-level purchase model (:class:`~ltvcast.models.bgnbd.BetaGeoModel`, its MBG/NBD,
:class:`~ltvcast.models.pareto_nbd.ParetoNBDModel`, the (M)BG/CNBD-k) has ``expected_purchases(t,
x, t_x, T)``, the conditional expected repeat purchases in ``(T, T + t]``, increasing in ``t``;
with ``x = t_x = T = 0`` it is the unconditional curve of a customer who has just made their
first purchase. This module adds what CLV users derive from that curve:

- :func:`discounted_purchases`: discounted expected (residual) transactions, DERT (Fader,
  Hardie & Lee 2005, "RFM and CLV"), over a finite horizon.

Discounting is continuous: a purchase ``u`` years ahead counts ``exp(-delta u)``, with
``delta`` the annual continuously compounded rate (an annual effective rate ``d`` is
``delta = log(1 + d)``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy.special import roots_legendre

from ltvcast.exceptions import ConfigError
from ltvcast.models.bgnbd import ArrayLike, FloatArray

#: Days in a year of the discount rate.
YEAR_DAYS = 365.25
#: Gauss-Legendre nodes of the discount integral (exact to ~1e-12 for these smooth curves).
DISCOUNT_NODES = 32
#: The largest discount rate accepted (per year, continuous): 10 means 99.995% a year.
MAX_DISCOUNT_RATE = 10.0


class PurchaseCurve(Protocol):
    """A fitted purchase model's conditional expected repeat purchases."""

    def expected_purchases(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected purchases in ``(T, T + t]`` given ``(x, t_x, T)``."""
        ...


def check_discount_rate(rate: float) -> float:
    """``rate`` as a float in ``[0, MAX_DISCOUNT_RATE]``, or :class:`ConfigError`."""
    value = float(rate)
    if not 0.0 <= value <= MAX_DISCOUNT_RATE:
        raise ConfigError(
            f"discount rate must be an annual rate between 0 and {MAX_DISCOUNT_RATE:g} "
            f"(e.g. 0.1 for 10%); got {rate!r}"
        )
    return value


def discounted_purchases(
    model: PurchaseCurve,
    t: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    rate: float,
    unit_days: float,
) -> FloatArray:
    """Discounted expected purchases in ``(T, T + t]``: ``int_0^t exp(-d u) dE[X(u)]``.

    Integrated by parts, ``exp(-d t) E[X(t)] + d int_0^t exp(-d u) E[X(u)] du``, the integral
    by :data:`DISCOUNT_NODES`-point Gauss-Legendre quadrature, so only ``E[X(u)]`` is needed
    (every purchase model has it in closed form or as an exact series).

    Parameters
    ----------
    t
        Horizon in the model's time unit.
    rate
        Annual continuously compounded discount rate (:func:`check_discount_rate`).
    unit_days
        Days per time unit of the model (7 for weeks).
    """
    delta = check_discount_rate(rate) * unit_days / YEAR_DAYS
    at_end = model.expected_purchases(t, frequency, recency, T)
    if delta == 0.0 or t == 0.0:
        return at_end
    nodes, weights = roots_legendre(DISCOUNT_NODES)
    u = 0.5 * t * (nodes + 1.0)
    integral = np.zeros_like(at_end)
    for node, weight in zip(u, weights, strict=True):
        integral += (
            weight * np.exp(-delta * node) * model.expected_purchases(node, frequency, recency, T)
        )
    out: FloatArray = np.exp(-delta * t) * at_end + delta * 0.5 * t * integral
    return out
