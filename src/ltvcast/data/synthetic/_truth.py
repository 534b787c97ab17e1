"""The simulated store and its ground truth: analytic expectations of any future window
(:meth:`SimulatedStore.truth`) and Monte-Carlo re-simulation of it
(:meth:`SimulatedStore.sample_window`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, QUANTITY, TIMESTAMP
from ltvcast.data.synthetic._clock import Clock, nhpp
from ltvcast.data.synthetic._orders import (
    FUTURE_RETURN_SHARE,
    canonical_transactions,
    draw_returns,
    order_values,
    return_cdf,
    return_fraction,
)
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon

_US_PER_DAY = 86_400_000_000


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
        return canonical_transactions(self.orders, self.end)

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
        prob = rho * (return_cdf(e - t) - return_cdf(a - t)) / (1.0 - rho * return_cdf(a - t))
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
        clock = Clock.seasonal(self.start, a, e)
        cuts = np.unique(np.concatenate([[a, e], np.arange(np.ceil(a), np.floor(e) + 1.0)]))
        cuts = cuts[(cuts >= a) & (cuts <= e)]
        w = np.diff(clock.integral(cuts))
        mid = np.diff(clock.moment(cuts)) / w - a
        before = np.concatenate([[0.0], np.cumsum(w)[:-1]])
        landed = w * FUTURE_RETURN_SHARE * return_cdf(e - a - mid)  # returned in window

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
        back = self.orders[AMOUNT].to_numpy()[rows] * return_fraction(
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
        clock = Clock.seasonal(self.start, a, e)
        path, t = nhpp(rng, clock, lam, np.full(len(rep), a), np.minimum(death, e))
        quantity, amount = order_values(rng, p["spend_mean"].to_numpy()[src[path]])
        returned, items, lag = draw_returns(rng, p["return_prob"].to_numpy()[src[path]], quantity)
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
