"""The customer population: signups, profiles and latent parameters (steps 1 and 2 of the
generative model in :mod:`ltvcast.data.synthetic`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltvcast.data.synthetic._clock import Clock, calendar_factor, calendar_mean

# Population of latent parameters (rates per day).
_RATE_SHAPE, _RATE_MEAN = 0.6, 4.0 / 365.25
_DROPOUT_SHAPE, _DROPOUT_MEAN = 1.0, 1.0 / 300.0
_SPEND_BASE, _SPEND_HETEROGENEITY = 65.0, 4.0
_RETURN_A, _RETURN_B = 1.2, 10.0
_BROWSE_BASE, _BROWSE_PER_RATE = 0.02, 3.0
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


def draw_customers(
    rng: np.random.Generator, n: int, origin: pd.Timestamp, clock: Clock, days: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Profile columns (as category codes and values) and signup times."""
    hours = np.arange(len(clock.rate)) + clock.h0
    t = hours / 24.0
    cohort = calendar_factor(origin + pd.to_timedelta(hours, unit="h")) / calendar_mean()
    acquisition = clock.rate * (1.0 + _ACQ_GROWTH * t / days) * np.sqrt(cohort)
    acquisition[(t < 0.25) | (t >= days)] = 0.0
    acq = Clock.from_rate(clock.h0, acquisition)
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


def draw_latent(
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
