"""Time in the simulator: the seasonal intensity s(t) and Poisson processes driven by it.

Time is in days since the simulation's ``origin`` (midnight). :class:`Clock` holds an
intensity on an hourly grid with its exact integrals; :func:`nhpp` draws non-homogeneous
Poisson processes from it by time rescaling (Brown et al. 2002).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

# Seasonality: hour of day (0-23), day of week (Monday first); each normalised to mean 1.
_HOUR_PROFILE = np.array(
    [0.45, 0.3, 0.2, 0.15, 0.12, 0.15, 0.3, 0.55, 0.8, 1.0, 1.1, 1.2,
     1.35, 1.3, 1.2, 1.15, 1.15, 1.2, 1.35, 1.55, 1.7, 1.75, 1.5, 0.95]
)  # fmt: skip
_HOUR_PROFILE = _HOUR_PROFILE / _HOUR_PROFILE.mean()
_DOW_PROFILE = np.array([1.06, 1.03, 1.0, 0.98, 0.93, 0.9, 1.1])
_DOW_PROFILE = _DOW_PROFILE / _DOW_PROFILE.mean()


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
        * calendar_factor(idx)
        / calendar_mean()
    )


def calendar_factor(idx: pd.DatetimeIndex) -> np.ndarray:
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
def calendar_mean() -> float:
    """Mean calendar factor over four years (normalises :func:`seasonality`)."""
    days = pd.date_range("2021-01-01", "2024-12-31", freq="D")
    return float(calendar_factor(days).mean())


@dataclass(frozen=True)
class Clock:
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
    def from_rate(cls, h0: int, rate: np.ndarray) -> Clock:
        lo = np.arange(h0, h0 + len(rate), dtype=np.float64) / 24.0
        hi = lo + 1.0 / 24.0
        cum = np.concatenate([[0.0], np.cumsum(rate / 24.0)])
        mom = np.concatenate([[0.0], np.cumsum(rate * (hi**2 - lo**2) / 2.0)])
        slices = np.linspace(0.0, cum[-1], 4 * len(rate) + 1)
        lookup = np.clip(np.searchsorted(cum, slices, side="right") - 1, 0, len(rate) - 1)
        return cls(h0, rate, cum, mom, lookup)

    @classmethod
    def seasonal(cls, origin: pd.Timestamp, t0: float, t1: float) -> Clock:
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


def nhpp(
    rng: np.random.Generator, clock: Clock, rate: np.ndarray, t0: np.ndarray, t1: np.ndarray
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
