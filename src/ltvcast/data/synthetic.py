"""A simulated e-commerce store with known ground truth.

:func:`simulate_store` draws customers, their profiles, behaviour events and transactions
from a fully specified generative model and keeps every customer's latent parameters, so
:meth:`SimulatedStore.truth` can state the *exact* expected value of any future window.
It feeds ``ltvcast demo`` (nothing is downloaded), tests with known truth, and the scale
benchmark (:func:`iter_simulated_chunks`, bounded memory).

Generative model (time in days since ``start``, midnight)
---------------------------------------------------------
1. **Acquisition.** Signup times follow a non-homogeneous Poisson process whose intensity
   grows linearly (+60% over the period) and peaks with the retail calendar (cohort
   seasonality). Profiles: ``age`` (18-80), ``gender`` (no effect on behaviour: a null
   feature), ``city_tier`` (1-3), ``channel`` (organic, paid_search, paid_social, referral,
   email), ``device`` (mobile, desktop).
2. **Latent parameters** (Pareto/NBD with gamma-gamma spend, Schmittlein, Morrison &
   Colombo 1987; Fader, Hardie & Lee 2005), each scaled by profile multipliers:

   - a customer is a *never-repeat* customer (purchase rate 0) with a channel-dependent
     probability (20-35%); everyone else has ``purchase_rate`` λ ~ Gamma(0.6, mean 4/year)
     per day at seasonal level 1, times channel, city-tier and age effects; customers
     acquired in the holiday season (15 Nov - 31 Dec) buy 25% less often and churn 30%
     faster;
   - ``dropout_rate`` μ ~ Gamma(1, mean 1/300 per day) times channel effects; the customer
     is alive until ``alive_until`` = signup + Exp(μ) (exponential lifetime);
   - ``spend_mean`` m = 65 · effects · 3 / G with G ~ Gamma(4, 1) (an inverse-gamma order
     value, as in the gamma-gamma model of Colombo & Jiang 1999); an order holds
     ``q = 1 + Poisson(0.5)`` items and is worth Gamma(3q, m / (3 · 1.5)), so E[order] = m;
   - ``return_prob`` ρ ~ Beta(1.2, 10) (younger customers return more); a returned order
     gives back k ~ U{1..q} items (amount · k / q) after 2 + Exp(10) days, as a negative row
     with the same ``order_id``;
   - ``engagement`` ~ Gamma(2, 0.5) (mobile users browse 30% more, desktop 25% less).
3. **Orders.** A fraction of customers (55-65% by channel) registers at checkout and places
   a first order at signup. While alive, orders arrive as a non-homogeneous Poisson process
   with intensity λ · s(t), where s is the seasonal profile of :func:`seasonality`
   (hour of day × day of week × retail calendar: Black Friday, Christmas run-up and
   post-Christmas lull, January and mid-July sales, a mild winter high), drawn exactly
   by time rescaling on an hourly grid (Brown et al. 2002).
4. **Behaviour events** (Moe & Fader 2004: visits precede and predict purchases). Every
   order ends a session of views and clicks, at least one cart and one checkout event, and
   the purchase event at the order time; the session starts 5 minutes to 6 hours before.
   Browse-only sessions (views, clicks, sometimes a cart, rarely an abandoned checkout)
   arrive at rate engagement · (0.02 + 3λ) · s(t), decaying to 20% of that over the 30
   days before ``alive_until`` and to 4% after it (thinning, Lewis & Shedler 1979). So
   recent browsing carries signal about being alive that transactions alone do not.
   Customers who register at checkout have their first session just before signup
   (identity stitched at checkout); the others open a browse session at signup, and
   some of them never buy.
5. **Dirty rows** (``dirty_rate`` > 0): copies of clean rows with a missing customer id,
   an unparsable timestamp or amount (text), exact duplicates, zero amounts (copies of
   sales: keeping them adds no purchase day); events also get unknown event types
   (page, popup_view, search, wishlist: the kinds a Segment-style tracker emits).
   Timestamps and amounts are then text (as read from a raw file), and a share of valid
   timestamps carry a UTC offset (same instant). The clean rows stay the truth:
   :meth:`SimulatedStore.clean_transactions` returns them.

Ground truth (:meth:`SimulatedStore.truth`) is analytic: for a customer alive at ``as_of``
(a) with window end e, E[orders] = λ ∫_a^e s(t) e^{-μ(t-a)} dt, integrated exactly over
the hourly seasonal grid per calendar day (the survival term at the intensity-weighted day
midpoint); the value nets out the expected returns that land inside the window, including
those still pending for orders placed before ``as_of``.

References
----------
Schmittlein, Morrison & Colombo (1987), Counting your customers, Management Science 33(1).
Fader, Hardie & Lee (2005), "Counting your customers" the easy way, Marketing Science 24(2).
Colombo & Jiang (1999), A stochastic RFM model, Journal of Interactive Marketing 13(3).
Moe & Fader (2004), Dynamic conversion behavior at e-commerce sites, Management Science 50(3).
Lewis & Shedler (1979), Simulation of nonhomogeneous Poisson processes by thinning.
Brown, Barbieri, Ventura, Kass & Frank (2002), The time-rescaling theorem, Neural Computation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import (
    AMOUNT,
    CUSTOMER_ID,
    EVENT_TYPE,
    ITEM_ID,
    KNOWN_EVENT_TYPES,
    ORDER_ID,
    QUANTITY,
    TIMESTAMP,
)
from ltvcast.exceptions import ConfigError
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon

__all__ = [
    "SimulatedStore",
    "WindowSamples",
    "iter_simulated_chunks",
    "seasonality",
    "simulate_store",
    "write_store",
]

_US_PER_DAY = 86_400_000_000
_ID_WIDTH = 8  # C00000001: unique up to 10^8 customers (longer ids stay unique)
_SESSIONS_PER_CUSTOMER = 1_000_000  # session_id = customer number * this + rank

# Seasonality: hour of day (0-23), day of week (Monday first); each normalised to mean 1.
_HOUR_PROFILE = np.array(
    [0.45, 0.3, 0.2, 0.15, 0.12, 0.15, 0.3, 0.55, 0.8, 1.0, 1.1, 1.2,
     1.35, 1.3, 1.2, 1.15, 1.15, 1.2, 1.35, 1.55, 1.7, 1.75, 1.5, 0.95]
)  # fmt: skip
_HOUR_PROFILE = _HOUR_PROFILE / _HOUR_PROFILE.mean()
_DOW_PROFILE = np.array([1.06, 1.03, 1.0, 0.98, 0.93, 0.9, 1.1])
_DOW_PROFILE = _DOW_PROFILE / _DOW_PROFILE.mean()

# Population of latent parameters (rates per day).
_RATE_SHAPE, _RATE_MEAN = 0.6, 4.0 / 365.25
_DROPOUT_SHAPE, _DROPOUT_MEAN = 1.0, 1.0 / 300.0
_SPEND_BASE, _SPEND_SHAPE, _SPEND_HETEROGENEITY = 65.0, 3.0, 4.0
_EXTRA_ITEMS = 0.5  # items per order = 1 + Poisson(0.5)
_MEAN_ITEMS = 1.0 + _EXTRA_ITEMS
_RETURN_A, _RETURN_B = 1.2, 10.0
_RETURN_DELAY, _RETURN_MEAN_LAG = 2.0, 10.0  # days: lag = 2 + Exp(mean 10)
_BROWSE_BASE, _BROWSE_PER_RATE = 0.02, 3.0
_DECAY_DAYS, _DECAY_FLOOR, _GHOST = 30.0, 0.2, 0.04
_HOLIDAY_RATE, _HOLIDAY_DROPOUT = 0.75, 1.3
_ACQ_GROWTH = 0.6

_CHANNELS = ("organic", "paid_search", "paid_social", "referral", "email")
_CHANNEL_P = np.array([0.3, 0.25, 0.25, 0.1, 0.1])
_CHANNEL_RATE = np.array([1.15, 1.0, 0.7, 1.3, 1.25])
_CHANNEL_DROPOUT = np.array([0.85, 1.0, 1.4, 0.7, 0.8])
_CHANNEL_SPEND = np.array([1.0, 1.05, 0.9, 1.0, 0.95])
_CHANNEL_NO_REPEAT = np.array([0.2, 0.2, 0.35, 0.15, 0.25])
_CHANNEL_FIRST_ORDER = np.array([0.6, 0.65, 0.55, 0.6, 0.6])
_TIER_P = np.array([0.35, 0.4, 0.25])
_TIER_RATE = np.array([1.1, 1.0, 0.85])
_TIER_SPEND = np.array([1.2, 1.0, 0.85])
_GENDERS = ("female", "male", "other")
_GENDER_P = np.array([0.6, 0.37, 0.03])
_DEVICES = ("mobile", "desktop")
_DEVICE_P = np.array([0.65, 0.35])
_DEVICE_ENGAGEMENT = np.array([1.3, 0.75])

# Behaviour events: per session kind, (extra Poisson mean, minimum) counts and the span of
# the session (as a fraction of its duration) where that event type falls.
_EVENT_TYPES = KNOWN_EVENT_TYPES
_EVENT_SPAN = ((0.0, 0.85), (0.0, 0.85), (0.6, 0.92), (0.92, 0.99), (1.0, 1.0))
_CATALOGUE = 2000
_BAD_TIMESTAMPS = np.array(["", "not a date", "2023-02-30 12:00:00", "31/13/2023 25:61"])
_BAD_AMOUNTS = np.array(["", "N/A", "12,5O", "abc", "$-"])
_UNKNOWN_EVENTS = np.array(["page", "popup_view", "search", "wishlist"])


# --------------------------------------------------------------------------- seasonality
def seasonality(times: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """Relative purchase intensity s(t) at the given times (mean close to 1 over a year).

    The product of an hour-of-day profile, a day-of-week profile and a retail calendar
    (Black Friday / Cyber Monday peak, Christmas run-up and lull, January and mid-July
    sales, a mild winter high). Piecewise constant within each clock hour.
    """
    idx = pd.DatetimeIndex(times)
    return (
        _HOUR_PROFILE[idx.hour.to_numpy()]
        * _DOW_PROFILE[idx.day_of_week.to_numpy()]
        * _calendar(idx)
        / _calendar_mean()
    )


def _calendar(idx: pd.DatetimeIndex) -> np.ndarray:
    """Unnormalised retail-calendar factor of each time's date."""
    day = idx.normalize()
    doy = idx.day_of_year.to_numpy().astype(np.float64)
    nov1 = ((idx.year.to_numpy() - 1970).astype("datetime64[Y]") + np.timedelta64(10, "M")).astype(
        "datetime64[D]"
    )
    weekday = (nov1.astype(np.int64) + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
    thanksgiving = nov1 + ((3 - weekday) % 7 + 21).astype("timedelta64[D]")
    to_bf = (day.to_numpy().astype("datetime64[D]") - thanksgiving).astype(np.float64) - 1.0
    month, dom = idx.month.to_numpy(), idx.day.to_numpy()
    factor = 1.0 + 0.12 * np.cos(2.0 * np.pi * (doy - 355.0) / 365.25)
    factor += 1.2 * np.exp(-0.5 * ((to_bf - 1.0) / 2.0) ** 2)
    factor += 0.3 * ((month == 12) & (dom <= 20))
    factor -= 0.35 * ((month == 12) & (dom >= 24) & (dom <= 26))
    factor += 0.2 * ((month == 1) & (dom >= 2) & (dom <= 10))
    factor += 0.5 * np.exp(-0.5 * ((doy - 197.0) / 1.5) ** 2)
    return factor


@cache
def _calendar_mean() -> float:
    """Mean calendar factor over four years (normalises :func:`seasonality`)."""
    days = pd.date_range("2021-01-01", "2024-12-31", freq="D")
    return float(_calendar(days).mean())


@dataclass(frozen=True)
class _Clock:
    """A piecewise-constant intensity on an hourly grid; time in days since ``origin``.

    ``cum`` is the integral of the intensity from the grid start (in days × intensity),
    ``mom`` the integral of t times the intensity, both at hour boundaries; ``lookup``
    holds the hour where each of ``4 * hours`` equal slices of ``cum`` begins (a bucket
    index that makes :meth:`inverse` a few vector steps instead of a binary search).
    """

    h0: int
    rate: np.ndarray
    cum: np.ndarray
    mom: np.ndarray
    lookup: np.ndarray

    @classmethod
    def from_rate(cls, h0: int, rate: np.ndarray) -> _Clock:
        lo = np.arange(h0, h0 + len(rate), dtype=np.float64) / 24.0
        hi = lo + 1.0 / 24.0
        cum = np.concatenate([[0.0], np.cumsum(rate / 24.0)])
        mom = np.concatenate([[0.0], np.cumsum(rate * (hi**2 - lo**2) / 2.0)])
        slices = np.linspace(0.0, cum[-1], 4 * len(rate) + 1)
        lookup = np.clip(np.searchsorted(cum, slices, side="right") - 1, 0, len(rate) - 1)
        return cls(h0, rate, cum, mom, lookup)

    @classmethod
    def seasonal(cls, origin: pd.Timestamp, t0: float, t1: float) -> _Clock:
        """The :func:`seasonality` intensity over days ``[t0, t1]`` after ``origin``."""
        h0 = int(np.floor(t0 * 24.0)) - 1
        h1 = int(np.ceil(t1 * 24.0)) + 1
        hours = origin + pd.to_timedelta(np.arange(h0, h1), unit="h")
        return cls.from_rate(h0, seasonality(hours))

    def _locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.clip(np.floor(t * 24.0).astype(np.int64) - self.h0, 0, len(self.rate) - 1)
        return h, t - (h + self.h0) / 24.0

    def integral(self, t: np.ndarray) -> np.ndarray:
        """∫ intensity from the grid start to ``t``."""
        h, dt = self._locate(np.asarray(t, dtype=np.float64))
        return self.cum[h] + self.rate[h] * dt

    def moment(self, t: np.ndarray) -> np.ndarray:
        """∫ u · intensity(u) du from the grid start to ``t``."""
        t = np.asarray(t, dtype=np.float64)
        h, _ = self._locate(t)
        lo = (h + self.h0) / 24.0
        return self.mom[h] + self.rate[h] * (t**2 - lo**2) / 2.0

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """The time at which :meth:`integral` reaches ``u`` (time rescaling)."""
        last = len(self.rate) - 1
        slot = np.clip(u * ((len(self.lookup) - 1) / self.cum[-1]), 0, len(self.lookup) - 1)
        h = self.lookup[slot.astype(np.int64)]
        ahead = np.flatnonzero((h < last) & (self.cum[np.minimum(h + 1, last)] <= u))
        while len(ahead):  # a slice spans few hours: a handful of steps
            h[ahead] += 1
            ahead = ahead[
                (h[ahead] < last) & (self.cum[np.minimum(h[ahead] + 1, last)] <= u[ahead])
            ]
        return (h + self.h0) / 24.0 + (u - self.cum[h]) / self.rate[h]


def _nhpp(
    rng: np.random.Generator, clock: _Clock, rate: np.ndarray, t0: np.ndarray, t1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Events of independent processes with intensity ``rate[i] * clock`` on ``(t0[i], t1[i]]``.

    Returns the process index and time of every event (time rescaling: uniform points in
    integrated-intensity space mapped back through the clock's inverse).
    """
    lo = clock.integral(t0)
    span = np.maximum(clock.integral(np.maximum(t1, t0)) - lo, 0.0)
    counts = rng.poisson(rate * span)
    idx = np.repeat(np.arange(len(rate)), counts)
    times = clock.inverse(lo[idx] + rng.random(len(idx)) * span[idx])
    return idx, times


# --------------------------------------------------------------------------- orders
def _order_values(
    rng: np.random.Generator, spend_mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Quantity and gross amount of orders with the given expected order values."""
    quantity = 1 + rng.poisson(_EXTRA_ITEMS, len(spend_mean))
    amount = rng.gamma(_SPEND_SHAPE * quantity, spend_mean / (_SPEND_SHAPE * _MEAN_ITEMS))
    return quantity, np.maximum(np.round(amount, 2), 0.01)


def _draw_returns(
    rng: np.random.Generator, return_prob: np.ndarray, quantity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether each order is returned, how many items, and the lag in days."""
    n = len(quantity)
    returned = rng.random(n) < return_prob
    items = 1 + np.floor(rng.random(n) * quantity).astype(np.int64)
    lag = _RETURN_DELAY + rng.exponential(_RETURN_MEAN_LAG, n)
    return returned, items, lag


def _return_cdf(lag: np.ndarray) -> np.ndarray:
    """P(return lag <= ``lag``) for a returned order."""
    return 1.0 - np.exp(-np.maximum(lag - _RETURN_DELAY, 0.0) / _RETURN_MEAN_LAG)


def _return_fraction(quantity: np.ndarray) -> np.ndarray:
    """Expected share of an order's amount given back when it is returned: E[k/q]."""
    return (quantity + 1.0) / (2.0 * quantity)


#: Expected share of a future order's amount given back when returned (over q):
#: E[amount·k/q] = m·E[(q+1)/2]/E[q].
_FUTURE_RETURN_SHARE = (_MEAN_ITEMS + 1.0) / (2.0 * _MEAN_ITEMS)


# --------------------------------------------------------------------------- the store
class WindowSamples(NamedTuple):
    """Monte-Carlo futures of a window: one row per customer, one column per path."""

    customer_id: pd.Index
    value: np.ndarray
    purchases: np.ndarray


@dataclass(frozen=True)
class SimulatedStore:
    """A simulated store: observable tables plus the latent truth behind them.

    Attributes
    ----------
    transactions
        Canonical transactions (``customer_id, timestamp, amount, order_id, quantity,
        item_id``), returns as negative rows with the order's id; with ``dirty_rate > 0``,
        dirty rows mixed in and ``timestamp`` / ``amount`` as text.
    events
        ``customer_id, timestamp, event_type, item_id, session_id``; event types view,
        click, cart, checkout, purchase (+ unknown types when dirty).
    profiles
        ``customer_id, signup_date, age, gender, city_tier, channel, device``.
    params
        Latent truth per customer (rates per day at seasonal level 1): ``signup,
        purchase_rate, dropout_rate, alive_until`` (capped at 10^5 days after ``start``)
        ``, first_order, spend_mean, return_prob, engagement, browse_rate``.
    orders
        Clean order-level truth: ``order_id, customer_id, timestamp, amount`` (gross),
        ``quantity, item_id, return_timestamp`` (NaT when never returned; may fall after
        ``end``), ``return_amount`` (<= 0), ``return_quantity``.
    start, end
        The simulated period ``[start, end]``.
    """

    transactions: pd.DataFrame
    events: pd.DataFrame
    profiles: pd.DataFrame
    params: pd.DataFrame
    orders: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp

    def _days(self, times: pd.Series | pd.Timestamp) -> np.ndarray:
        """Days since ``start`` as float (NaN for NaT)."""
        stamps = np.asarray(pd.Series(times), dtype="datetime64[us]")
        days = (stamps - np.datetime64(self.start, "us")).astype(np.float64) / _US_PER_DAY
        return np.where(np.isnat(stamps), np.nan, days)

    def clean_transactions(self) -> pd.DataFrame:
        """The clean canonical transactions (orders and returns up to ``end``)."""
        return _transactions(self.orders, self.end)

    def _window(
        self, as_of: pd.Timestamp | str, horizon: Horizon | str
    ) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Window bounds in days, and the known and alive masks over ``params``."""
        as_of = parse_as_of(as_of, self.end)
        a = float(self._days(as_of)[0])
        e = float(self._days(parse_horizon(horizon).end(as_of))[0])
        known = self._days(self.params["signup"]) <= a
        alive = known & (self._days(self.params["alive_until"]) > a)
        return a, e, known, alive

    def _pending(self, a: float, e: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Orders placed by ``a`` and not returned by then: their rows in ``orders``, their
        customers' rows in ``params``, and the probability that the return lands in
        ``(a, e]`` (given the return-lag distribution and that none came before ``a``)."""
        placed = self._days(self.orders[TIMESTAMP])
        rows = np.flatnonzero((placed <= a) & ~(self._days(self.orders["return_timestamp"]) <= a))
        pos = pd.Index(self.params[CUSTOMER_ID]).get_indexer(self.orders[CUSTOMER_ID].iloc[rows])
        rho = self.params["return_prob"].to_numpy()[pos]
        t = placed[rows]
        prob = rho * (_return_cdf(e - t) - _return_cdf(a - t)) / (1.0 - rho * _return_cdf(a - t))
        return rows, pos, prob

    def truth(self, as_of: pd.Timestamp | str, horizon: Horizon | str) -> pd.DataFrame:
        """Expected value of each customer known at ``as_of`` over ``(as_of, as_of + h]``.

        Conditions on the true latent parameters, on whether the customer is alive at
        ``as_of``, and on the orders placed by then (for pending returns). With s the
        seasonal intensity, S(t) = e^{-μ(t-a)} and Λ(t) = ∫_a^t s:
        E[orders] = λ ∫ s S, P(active) = ∫ λ s S e^{-λΛ}, summed over calendar-day pieces
        of the window (exact seasonal integrals; S at each piece's centre of intensity).

        Parameters
        ----------
        as_of
            A timestamp, or a date meaning through the end of that day.

        Returns
        -------
        DataFrame
            ``customer_id``; ``true_value`` (expected net spend, returns landing in the
            window included); ``true_purchases`` (expected purchase days);
            ``p_active`` (P(at least one order)); ``alive`` (bool, alive at ``as_of``).
        """
        a, e, known, alive = self._window(as_of, horizon)
        clock = _Clock.seasonal(self.start, a, e)
        cuts = np.unique(np.concatenate([[a, e], np.arange(np.ceil(a), np.floor(e) + 1.0)]))
        cuts = cuts[(cuts >= a) & (cuts <= e)]
        w = np.diff(clock.integral(cuts))
        mid = np.diff(clock.moment(cuts)) / w - a
        before = np.concatenate([[0.0], np.cumsum(w)[:-1]])
        landed = w * _FUTURE_RETURN_SHARE * _return_cdf(e - a - mid)  # returned in window

        p = self.params
        lam = np.where(alive, p["purchase_rate"].to_numpy(), 0.0)
        mu = p["dropout_rate"].to_numpy()
        # Per piece k: survival at its centre of intensity, P(an order in it | alive), and
        # P(no order before it | alive): first-order exact in μ, exact when μ = 0.
        kept = np.zeros(len(p))  # expected orders, each weighted by the share it keeps
        days = np.zeros(len(p))
        active = np.zeros(len(p))
        rho = p["return_prob"].to_numpy()
        rows = np.flatnonzero(lam > 0)
        for block in np.array_split(rows, max(1, len(rows) // 32768)):
            lb = lam[block, None]
            surv = np.exp(-mu[block, None] * mid)
            hit = -np.expm1(-lb * w)
            kept[block] = lam[block] * (surv @ w - rho[block] * (surv @ landed))
            days[block] = (surv * hit).sum(axis=1)
            active[block] = (surv * hit * np.exp(-lb * before)).sum(axis=1)
        value = kept * p["spend_mean"].to_numpy()
        rows, pos, prob = self._pending(a, e)
        back = self.orders[AMOUNT].to_numpy()[rows] * _return_fraction(
            self.orders[QUANTITY].to_numpy()[rows]
        )
        value -= np.bincount(pos, weights=prob * back, minlength=len(p))
        out = pd.DataFrame(
            {
                CUSTOMER_ID: p[CUSTOMER_ID],
                "true_value": value,
                "true_purchases": days,
                "p_active": active,
                "alive": alive,
            }
        )
        return out[known].reset_index(drop=True)

    def sample_window(
        self,
        as_of: pd.Timestamp | str,
        horizon: Horizon | str,
        *,
        n_paths: int = 1000,
        customers: pd.Index | None = None,
        random_state: int | None = None,
    ) -> WindowSamples:
        """Re-simulate the window ``n_paths`` times from the latent state at ``as_of``.

        Uses the same samplers as :func:`simulate_store` (fresh lifetimes for customers
        alive at ``as_of``, orders, amounts, returns, pending returns of earlier orders),
        so the mean over paths converges to :meth:`truth` and the spread gives the true
        predictive distribution.

        Parameters
        ----------
        customers
            Ids to simulate (default: every customer known at ``as_of``, as in ``truth``).
        """
        rng = np.random.default_rng(random_state)
        a, e, known, alive = self._window(as_of, horizon)
        p = self.params
        ids = pd.Index(p[CUSTOMER_ID][known] if customers is None else customers)
        pos = pd.Index(p[CUSTOMER_ID]).get_indexer(ids)
        n = len(pos)
        rep = np.repeat(np.arange(n), n_paths)  # path k of customer j is j * n_paths + k
        src = pos[rep]
        lam = np.where(alive[src], p["purchase_rate"].to_numpy()[src], 0.0)
        death = a + rng.exponential(1.0 / p["dropout_rate"].to_numpy()[src])
        clock = _Clock.seasonal(self.start, a, e)
        path, t = _nhpp(rng, clock, lam, np.full(len(rep), a), np.minimum(death, e))
        quantity, amount = _order_values(rng, p["spend_mean"].to_numpy()[src[path]])
        returned, items, lag = _draw_returns(rng, p["return_prob"].to_numpy()[src[path]], quantity)
        back = returned & (t + lag <= e)
        net = amount - back * amount * items / quantity
        value = np.bincount(path, weights=net, minlength=len(rep))
        span = int(np.floor(e) - np.floor(a)) + 1
        day_key = np.unique(path * span + (np.floor(t) - np.floor(a)).astype(np.int64))
        purchases = np.bincount(day_key // span, minlength=len(rep)).astype(np.float64)

        # Pending returns of orders placed by as_of, drawn per path.
        rows, owner, prob = self._pending(a, e)
        at = pd.Index(pos).get_indexer(owner)
        mine = np.repeat(np.flatnonzero(at >= 0), n_paths)
        target = at[mine] * n_paths + np.tile(np.arange(n_paths), len(mine) // n_paths)
        q = self.orders[QUANTITY].to_numpy()[rows[mine]]
        k = 1 + np.floor(rng.random(len(q)) * q)
        hit = rng.random(len(q)) < prob[mine]
        back = hit * self.orders[AMOUNT].to_numpy()[rows[mine]] * k / q
        value -= np.bincount(target, weights=back, minlength=len(rep))
        return WindowSamples(ids, value.reshape(n, n_paths), purchases.reshape(n, n_paths))


# --------------------------------------------------------------------------- simulation
def simulate_store(
    n_customers: int = 5000,
    *,
    start: str | pd.Timestamp = "2023-01-01",
    days: int = 730,
    dirty_rate: float = 0.0,
    events: bool = True,
    random_state: int | None = 0,
) -> SimulatedStore:
    """Simulate ``n_customers`` customers of a store over ``days`` days from ``start``.

    Parameters
    ----------
    n_customers
        Customers who sign up during the period (each has a profile).
    start
        First day (midnight); signups begin six hours later.
    days
        Length of the period; ``end = start + days``.
    dirty_rate
        Dirty rows added per clean row of transactions and events (see module docstring).
    events
        Whether to simulate behaviour events (an empty table otherwise; faster).
    random_state
        Seed; the same seed gives identical tables.
    """
    rng = np.random.default_rng(random_state)
    return _simulate(n_customers, 0, rng, start, days, dirty_rate, events)


def iter_simulated_chunks(
    n_customers: int,
    chunk_size: int = 500_000,
    *,
    start: str | pd.Timestamp = "2023-01-01",
    days: int = 730,
    dirty_rate: float = 0.0,
    events: bool = True,
    random_state: int | None = 0,
) -> Iterator[SimulatedStore]:
    """Simulate a large store as independent chunks of at most ``chunk_size`` customers.

    Customer, order and session ids are unique across chunks; memory is bounded by one
    chunk. Keywords are those of :func:`simulate_store`; ``random_state`` seeds the
    sequence of chunks (each chunk gets its own spawned stream).
    """
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer; got {chunk_size}")
    offsets = range(0, n_customers, chunk_size)
    streams = np.random.SeedSequence(random_state).spawn(len(offsets))
    for offset, stream in zip(offsets, streams, strict=True):
        size = min(chunk_size, n_customers - offset)
        rng = np.random.default_rng(stream)
        yield _simulate(size, offset, rng, start, days, dirty_rate, events)


def _simulate(
    n: int,
    offset: int,
    rng: np.random.Generator,
    start: str | pd.Timestamp,
    days: int,
    dirty_rate: float,
    with_events: bool,
) -> SimulatedStore:
    if n < 1:
        raise ConfigError(f"n_customers must be a positive integer; got {n}")
    if days < 1:
        raise ConfigError(f"days must be a positive integer; got {days}")
    if not 0.0 <= dirty_rate < 1.0:
        raise ConfigError(f"dirty_rate must be in [0, 1); got {dirty_rate}")
    origin = pd.Timestamp(start).normalize()
    end = origin + pd.Timedelta(days=days)
    clock = _Clock.seasonal(origin, 0.0, float(days))
    ids = _ids("C", offset + 1 + np.arange(n))

    profile, signup = _customers(rng, n, origin, clock, days)
    params = _latent(rng, profile, signup, origin)
    orders = _orders(rng, params, clock, float(days))
    order_frame = _order_frame(orders, ids, origin)
    txn = _transactions(order_frame, end)
    if with_events:
        ev = _events(rng, params, orders, clock, float(days), ids, offset, origin)
    else:
        ev = _empty_events()
    if dirty_rate > 0:
        txn = _dirty_transactions(rng, txn, dirty_rate)
        ev = _dirty_events(rng, ev, dirty_rate)

    stamp = _to_time(origin, signup)
    profiles = pd.DataFrame({CUSTOMER_ID: ids, "signup_date": stamp, **profile})
    latent = pd.DataFrame(
        {
            CUSTOMER_ID: ids,
            "signup": stamp,
            "purchase_rate": params["purchase_rate"],
            "dropout_rate": params["dropout_rate"],
            "alive_until": _to_time(origin, np.minimum(params["alive_until"], 1e5)),
            "first_order": params["first_order"],
            "spend_mean": params["spend_mean"],
            "return_prob": params["return_prob"],
            "engagement": params["engagement"],
            "browse_rate": params["browse_rate"],
        }
    )
    return SimulatedStore(txn, ev, profiles, latent, order_frame, origin, end)


def _ids(prefix: str, numbers: np.ndarray, width: int = _ID_WIDTH) -> pa.Array:
    """Zero-padded string ids such as ``C00000042`` (an Arrow array)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _text(values: pa.Array) -> pd.Series:
    return pd.Series(pd.array(values, dtype="str"))


def _to_time(origin: pd.Timestamp, t: np.ndarray) -> np.ndarray:
    """Days since ``origin`` to datetime64[us], floored to whole seconds."""
    return _second_time(origin, np.floor(np.asarray(t) * 86_400.0).astype(np.int64))


def _second_time(origin: pd.Timestamp, seconds: np.ndarray) -> np.ndarray:
    """Whole seconds since ``origin`` to datetime64[us]."""
    return np.datetime64(origin, "us") + (seconds * 1_000_000).astype("timedelta64[us]")


def _customers(
    rng: np.random.Generator, n: int, origin: pd.Timestamp, clock: _Clock, days: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Profile columns (as category codes and values) and signup times."""
    hours = np.arange(len(clock.rate)) + clock.h0
    t = hours / 24.0
    cohort = _calendar(origin + pd.to_timedelta(hours, unit="h")) / _calendar_mean()
    acquisition = clock.rate * (1.0 + _ACQ_GROWTH * t / days) * np.sqrt(cohort)
    acquisition[(t < 0.25) | (t >= days)] = 0.0
    acq = _Clock.from_rate(clock.h0, acquisition)
    signup = np.sort(acq.inverse(rng.random(n) * acq.cum[-1]))
    age = np.clip(np.round(18 + rng.gamma(4.0, 5.0, n)), 18, 80).astype(np.int64)
    profile = {
        "age": age,
        "gender": np.asarray(_GENDERS)[rng.choice(3, n, p=_GENDER_P)],
        "city_tier": 1 + rng.choice(3, n, p=_TIER_P),
        "channel": np.asarray(_CHANNELS)[rng.choice(len(_CHANNELS), n, p=_CHANNEL_P)],
        "device": np.asarray(_DEVICES)[rng.choice(2, n, p=_DEVICE_P)],
    }
    return profile, signup


def _latent(
    rng: np.random.Generator,
    profile: dict[str, np.ndarray],
    signup: np.ndarray,
    origin: pd.Timestamp,
) -> dict[str, np.ndarray]:
    """Latent parameters of each customer, shifted by profile and cohort."""
    n = len(signup)
    channel = pd.Index(_CHANNELS).get_indexer(pd.Index(profile["channel"]))
    tier = profile["city_tier"] - 1
    age = profile["age"] - 40.0
    device = pd.Index(_DEVICES).get_indexer(pd.Index(profile["device"]))
    joined = origin + pd.to_timedelta(signup, unit="D")
    holiday = np.asarray(
        ((joined.month == 11) & (joined.day >= 15)) | (joined.month == 12), dtype=bool
    )

    rate_effect = (
        _CHANNEL_RATE[channel] * _TIER_RATE[tier] * np.exp(0.015 * np.clip(age, -22, 30))
    ) * np.where(holiday, _HOLIDAY_RATE, 1.0)
    repeat = rng.random(n) >= _CHANNEL_NO_REPEAT[channel]
    rate = repeat * rate_effect * rng.gamma(_RATE_SHAPE, _RATE_MEAN / _RATE_SHAPE, n)
    dropout = (
        _CHANNEL_DROPOUT[channel]
        * np.where(holiday, _HOLIDAY_DROPOUT, 1.0)
        * rng.gamma(_DROPOUT_SHAPE, _DROPOUT_MEAN / _DROPOUT_SHAPE, n)
    )
    spend = (
        _SPEND_BASE
        * _CHANNEL_SPEND[channel]
        * _TIER_SPEND[tier]
        * np.exp(0.01 * age)
        * (_SPEND_HETEROGENEITY - 1.0)
        / rng.gamma(_SPEND_HETEROGENEITY, 1.0, n)
    )
    return_prob = np.clip(rng.beta(_RETURN_A, _RETURN_B, n) * np.exp(-0.02 * age), 0.0, 0.9)
    engagement = _DEVICE_ENGAGEMENT[device] * rng.gamma(2.0, 0.5, n)
    return {
        "signup": signup,
        "purchase_rate": rate,
        "dropout_rate": dropout,
        "alive_until": signup + rng.exponential(1.0 / dropout),
        "first_order": rng.random(n) < _CHANNEL_FIRST_ORDER[channel],
        "spend_mean": spend,
        "return_prob": return_prob,
        "engagement": engagement,
        "browse_rate": engagement * (_BROWSE_BASE + _BROWSE_PER_RATE * rate),
    }


def _orders(
    rng: np.random.Generator, params: dict[str, np.ndarray], clock: _Clock, days: float
) -> dict[str, np.ndarray]:
    """Orders (first orders at signup + repeat orders while alive) with their returns."""
    signup = params["signup"]
    first = np.flatnonzero(params["first_order"])
    repeat, t = _nhpp(
        rng, clock, params["purchase_rate"], signup, np.minimum(params["alive_until"], days)
    )
    cust = np.concatenate([first, repeat])
    time = np.concatenate([signup[first], t])
    order = np.lexsort((time, cust))
    cust, time = cust[order], time[order]
    quantity, amount = _order_values(rng, params["spend_mean"][cust])
    returned, items, lag = _draw_returns(rng, params["return_prob"][cust], quantity)
    return {
        "customer": cust,
        "time": time,
        "quantity": quantity,
        "amount": amount,
        "returned": returned,
        "return_items": np.where(returned, items, 0),
        "return_time": np.where(returned, time + lag, np.nan),
        "item": _popular_items(rng, len(cust)),
    }


def _popular_items(rng: np.random.Generator, n: int) -> np.ndarray:
    """Catalogue positions with Zipf-like popularity, density ∝ (j + 10)^-1.1 (inverse CDF)."""
    lo, hi = 10.0**-0.1, (10.0 + _CATALOGUE) ** -0.1
    j = (lo - rng.random(n) * (lo - hi)) ** -10.0 - 10.0
    return np.minimum(j.astype(np.int16), _CATALOGUE - 1)


def _item_ids(items: np.ndarray) -> pd.Series:
    return _text(_ids("P", np.arange(_CATALOGUE), 4).take(pa.array(items)))


def _order_frame(
    orders: dict[str, np.ndarray], ids: pa.Array, origin: pd.Timestamp
) -> pd.DataFrame:
    """Order-level truth table (see :class:`SimulatedStore`)."""
    cust = orders["customer"]
    starts = np.searchsorted(cust, cust, side="left")
    number = _text(pc.cast(pa.array(np.arange(len(cust)) - starts + 1), pa.string()))
    cust_ids = _text(ids.take(pa.array(cust)))
    amount = orders["amount"]
    quantity = orders["quantity"].astype(np.float64)
    back = np.round(amount * orders["return_items"] / quantity, 2)
    return pd.DataFrame(
        {
            ORDER_ID: cust_ids.str.replace("C", "O", n=1) + "-" + number,
            CUSTOMER_ID: cust_ids,
            TIMESTAMP: _to_time(origin, orders["time"]),
            AMOUNT: amount,
            QUANTITY: quantity,
            ITEM_ID: _item_ids(orders["item"]),
            "return_timestamp": np.where(
                orders["returned"],
                _to_time(origin, np.nan_to_num(orders["return_time"])),
                np.datetime64("NaT", "us"),
            ),
            "return_amount": -back,
            "return_quantity": -orders["return_items"].astype(np.float64),
        }
    )


def _transactions(orders: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Canonical transactions: one row per order, one negative row per return, up to ``end``."""
    columns = [CUSTOMER_ID, TIMESTAMP, AMOUNT, ORDER_ID, QUANTITY, ITEM_ID]
    sales = orders[columns]
    extra = ["return_timestamp", "return_amount", "return_quantity"]
    returns = orders.loc[orders["return_timestamp"].notna(), [*columns, *extra]]
    returns = returns.assign(
        **{
            TIMESTAMP: returns["return_timestamp"],
            AMOUNT: returns["return_amount"],
            QUANTITY: returns["return_quantity"],
        }
    )[columns]
    rows = pd.concat([sales, returns], ignore_index=True)
    rows = rows[rows[TIMESTAMP] <= end]
    return rows.sort_values([TIMESTAMP, ORDER_ID], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- events
def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series([], dtype="str"),
            TIMESTAMP: pd.Series([], dtype="datetime64[us]"),
            EVENT_TYPE: pd.Series([], dtype="str"),
            ITEM_ID: pd.Series([], dtype="str"),
            "session_id": pd.Series([], dtype=np.int64),
        }
    )


def _events(
    rng: np.random.Generator,
    params: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    clock: _Clock,
    days: float,
    ids: pa.Array,
    offset: int,
    origin: pd.Timestamp,
) -> pd.DataFrame:
    """Behaviour events: a funnel session before every order plus browse-only sessions."""
    signup, until = params["signup"], params["alive_until"]
    # Browse sessions: thinning of a seasonal process by the pre-dropout decay.
    cand, t = _nhpp(rng, clock, params["browse_rate"], signup, np.full(len(signup), days))
    left = until[cand] - t
    keep_p = np.where(left >= 0, 1.0 - (1.0 - _DECAY_FLOOR) * np.exp(-left / _DECAY_DAYS), _GHOST)
    keep = rng.random(len(cand)) < keep_p
    no_first = np.flatnonzero(~params["first_order"])
    browse_cust = np.concatenate([no_first, cand[keep]])
    browse_start = np.concatenate([signup[no_first], t[keep]])
    n_buy, n_browse = len(orders["customer"]), len(browse_cust)

    buy_duration = np.clip(rng.lognormal(np.log(20.0), 0.9, n_buy), 5.0, 360.0) / 1440.0
    browse_duration = np.clip(rng.lognormal(np.log(8.0), 0.9, n_browse), 1.0, 360.0) / 1440.0
    cust = np.concatenate([orders["customer"], browse_cust])
    begin = np.concatenate([orders["time"] - buy_duration, browse_start])
    duration = np.concatenate([buy_duration, browse_duration])
    buying = np.arange(len(cust)) < n_buy
    focal = np.concatenate([orders["item"], _popular_items(rng, n_browse)])

    # Counts per session of view, click, cart, checkout, purchase.
    draw = rng.random((2, len(cust)))
    cart = np.where(buying, 1 + rng.poisson(0.2, len(cust)), draw[0] < 0.12)
    checkout = np.where(buying, 1 + (draw[1] < 0.15), (cart > 0) & (draw[1] < 0.3))
    counts = (
        1 + rng.poisson(np.where(buying, 2.5, 1.5)),
        rng.poisson(np.where(buying, 1.5, 0.8)),
        cart,
        checkout,
        buying,
    )

    order = np.argsort((cust.astype(np.int64) << 30) + np.floor(begin * 86_400).astype(np.int64))
    rank = np.empty(len(cust), dtype=np.int64)
    rank[order] = np.arange(len(cust)) - np.searchsorted(cust[order], cust[order], side="left")
    session_id = (offset + 1 + cust) * _SESSIONS_PER_CUSTOMER + rank

    # One pass per event type; the sort key is (second, event type) so a session reads
    # in funnel order and the purchase (at the order's second) comes last.
    parts_session, parts_key, parts_item = [], [], []
    for kind, (count, (lo, hi)) in enumerate(zip(counts, _EVENT_SPAN, strict=True)):
        sess = np.repeat(np.arange(len(cust), dtype=np.int32), np.asarray(count, dtype=np.int64))
        frac = lo + (hi - lo) * rng.random(len(sess))
        second = np.floor((begin[sess] + frac * duration[sess]) * 86_400).astype(np.int64)
        item = focal[sess]
        if kind < 2:  # views and clicks wander around the catalogue
            item = np.where(rng.random(len(sess)) < 0.4, item, _popular_items(rng, len(sess)))
        inside = second < days * 86_400
        parts_session.append(sess[inside])
        parts_key.append(second[inside] * len(_EVENT_TYPES) + kind)
        parts_item.append(item[inside])
    key = np.concatenate(parts_key)
    order = np.argsort(key)
    key = key[order]
    sess = np.concatenate(parts_session)[order]
    return pd.DataFrame(
        {
            CUSTOMER_ID: _text(ids.take(pa.array(cust[sess]))),
            TIMESTAMP: _second_time(origin, key // len(_EVENT_TYPES)),
            EVENT_TYPE: _text(pa.array(_EVENT_TYPES).take(pa.array(key % len(_EVENT_TYPES)))),
            ITEM_ID: _item_ids(np.concatenate(parts_item)[order]),
            "session_id": session_id[sess],
        }
    )


# --------------------------------------------------------------------------- dirt
_Corruption = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


def _stamp_text(stamps: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` text of datetime64 values (an object array)."""
    text = pc.cast(pa.array(stamps.astype("datetime64[s]")), pa.string())
    return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)


def _as_text(frame: pd.DataFrame, rng: np.random.Generator, rate: float) -> pd.DataFrame:
    """Timestamps (and amounts) as raw text; a share ``rate`` of valid timestamps carries a
    UTC offset (same instant)."""
    stamps = frame[TIMESTAMP].to_numpy()
    text = _stamp_text(stamps)
    shifted = np.flatnonzero(rng.random(len(frame)) < rate)
    hours = rng.choice(np.array([-5, 1, 2, 8]), len(shifted))
    local = _stamp_text(stamps[shifted] + hours.astype("timedelta64[h]")).astype(str)
    suffix = np.char.add(np.where(hours < 0, "-0", "+0"), np.abs(hours).astype(str))
    text[shifted] = np.char.add(np.char.replace(local, " ", "T"), np.char.add(suffix, ":00"))
    out = frame.assign(**{TIMESTAMP: pd.array(text, dtype="str")})
    if AMOUNT in frame:
        amounts = pc.cast(pa.array(frame[AMOUNT].to_numpy()), pa.string())
        out[AMOUNT] = pd.array(amounts, dtype="str")
    return out


def _inject(
    rng: np.random.Generator, frame: pd.DataFrame, rate: float, corruptions: Sequence[_Corruption]
) -> pd.DataFrame:
    """Add about ``rate * len(frame)`` corrupted copies of random rows, next to their source."""
    n = len(frame)
    parts = [frame.assign(_pos=np.arange(n, dtype=np.float64))]
    for corrupt in corruptions:
        src = np.sort(rng.integers(0, n, rng.binomial(n, rate / len(corruptions))))
        copies = frame.iloc[src].reset_index(drop=True).assign(_pos=src + 0.5)
        parts.append(corrupt(copies, rng))
    out = pd.concat(parts, ignore_index=True).sort_values("_pos", kind="stable")
    return out.drop(columns="_pos").reset_index(drop=True)


def _missing_id(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows.assign(**{CUSTOMER_ID: pd.array([None] * len(rows), dtype="str")})


def _bad_timestamp(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows.assign(**{TIMESTAMP: pd.array(rng.choice(_BAD_TIMESTAMPS, len(rows)), dtype="str")})


def _bad_amount(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows.assign(**{AMOUNT: pd.array(rng.choice(_BAD_AMOUNTS, len(rows)), dtype="str")})


def _zero_amount(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Zero-amount copies of sales only, so that keeping them adds no purchase day."""
    rows = rows[~rows[AMOUNT].str.startswith("-")]
    return rows.assign(**{AMOUNT: pd.array(["0.00"] * len(rows), dtype="str")})


def _unknown_type(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows.assign(
        **{EVENT_TYPE: pd.array(rng.choice(_UNKNOWN_EVENTS, len(rows)), dtype="str")}
    )


def _duplicate(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows


def _dirty_transactions(rng: np.random.Generator, txn: pd.DataFrame, rate: float) -> pd.DataFrame:
    corruptions = [_missing_id, _bad_timestamp, _bad_amount, _duplicate, _zero_amount]
    return _inject(rng, _as_text(txn, rng, rate), rate, corruptions)


def _dirty_events(rng: np.random.Generator, ev: pd.DataFrame, rate: float) -> pd.DataFrame:
    if not len(ev):
        return ev
    corruptions = [_missing_id, _bad_timestamp, _duplicate, _unknown_type]
    return _inject(rng, _as_text(ev, rng, rate), rate, corruptions)


# --------------------------------------------------------------------------- files
def write_store(
    store: SimulatedStore,
    out_dir: str | Path,
    *,
    horizon: Horizon | str | None = None,
    fmt: Literal["csv", "parquet"] = "csv",
) -> dict[str, Path]:
    """Write the store's tables and its ground truth to ``out_dir``.

    ``truth`` stacks two as-of times (column ``as_of``): ``end - horizon``, with what
    really happened in the window (``actual_value``, ``actual_purchases``), and ``end``,
    the future (actuals empty). ``horizon`` defaults to 90 days.

    Returns
    -------
    dict
        Paths by table name: transactions, events, profiles, params, truth.
    """
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"fmt must be 'csv' or 'parquet'; got {fmt!r}")
    horizon = parse_horizon(horizon or "90d")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    origin = horizon.start(store.end)
    past = store.truth(origin, horizon)
    actual = horizon_labels(
        store.clean_transactions(), pd.Index(past[CUSTOMER_ID]), origin, store.end
    )
    past = past.assign(
        actual_value=actual["value"].to_numpy(), actual_purchases=actual["purchases"].to_numpy()
    )
    future = store.truth(store.end, horizon)
    truth = pd.concat(
        [past.assign(as_of=origin), future.assign(as_of=store.end)], ignore_index=True
    ).assign(horizon=str(horizon))
    truth = truth[["as_of", "horizon", *past.columns]]
    tables = {
        "transactions": store.transactions,
        "events": store.events,
        "profiles": store.profiles,
        "params": store.params,
        "truth": truth,
    }
    paths = {}
    for name, frame in tables.items():
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        paths[name] = path
    return paths
