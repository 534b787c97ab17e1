"""Recalibrated BTYD (``--model btyd_cal``): BTYD values with a correction learned out of time.

BG/NBD + Gamma-Gamma assume that spend per purchase is independent of the purchase rate and
that individual rates are gamma-distributed around the population. Where a store breaks
those assumptions the forecasts are biased by customer type, not just in level: on Online
Retail's inner 90-day window (cutoff 2011-06-12) customers with 8 or more repeat purchase
days spent 52% more than BTYD expected and one-time buyers 22% less
(``bench/bench_calibration.py`` regenerates these figures and the evidence below).

The correction is learned the way a backtest would see it. At the cutoff of an inner window
(:func:`~ltvcast.features.windows.inner_window`) a plain :class:`BTYDForecaster` is fitted on
the data up to that cutoff; its value forecasts for the window are set against what each
customer then spent, and a log-linear factor in BTYD's own inputs

    value = btyd_value * exp(b0 + b1 * log(1 + x) + b2 * log(1 + m))

(``x``: repeat purchase days, ``m``: spend per purchase day as Gamma-Gamma sees it) is fitted
by Poisson quasi-likelihood with the BTYD forecast as offset (a GLM with log link; negative
net spend counts as 0), with a ridge penalty on ``b1, b2`` that weighs like 50 customers (it
keeps the gains of Online Retail's inner windows and limits the harm on small simulated
stores, where BTYD holds and a factor fits only noise). ``b0`` is then reset so that
the factor keeps the window's BTYD total: the level of one period (a season, a sale) is not
carried into the next, only the shape across customers. The BTYD model refitted on all data
up to ``as_of`` is multiplied by that factor. ``predicted_purchases`` and ``p_active`` stay
BG/NBD's.

When the history leaves no inner window, or the window holds no customer with a forecast or
no spend, the factor is 1 (plain BTYD) and ``calibration_note_`` says why. ``auto`` weighs
btyd_cal against plain btyd in its own inner backtest, so a store where the factor only adds
noise keeps btyd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.features.rfm import rfm_summary
from ltvcast.features.windows import inner_window
from ltvcast.models.bgnbd import FloatArray
from ltvcast.models.btyd import WEEK_DAYS, BTYDForecaster
from ltvcast.timeframe import Horizon, parse_horizon

#: Names of the correction's coefficients, in order.
COEFFICIENTS = ("intercept", "log1p_frequency", "log1p_monetary")


def calibration_design(frequency: FloatArray, monetary: FloatArray) -> FloatArray:
    """The factor's design matrix: ``[1, log(1 + x), log(1 + max(m, 0))]`` per customer."""
    frequency = np.asarray(frequency, dtype=np.float64)
    monetary = np.asarray(monetary, dtype=np.float64)
    return np.column_stack(
        [np.ones_like(frequency), np.log1p(frequency), np.log1p(np.maximum(monetary, 0.0))]
    )


def fit_offset_poisson(
    design: FloatArray, offset: FloatArray, target: FloatArray, ridge: float = 0.0
) -> FloatArray:
    """Coefficients ``b`` of ``E[target] = offset * exp(design @ b)`` by Poisson quasi-likelihood.

    ``target`` may be any non-negative amount (spend), not only counts. Offset and target are
    divided by the mean offset first, so the penalty does not depend on the currency.

    Parameters
    ----------
    design
        ``(n, k)``; the first column is the intercept.
    offset
        ``(n,)`` positive baseline expectations.
    target
        ``(n,)`` non-negative outcomes.
    ridge
        Penalty ``ridge * |b[1:]|^2`` added to the total (not the mean) quasi-deviance, in
        units of an average row: it weighs like a fixed number of customers, so it shrinks
        the slopes of a small window and barely touches those of a large one.
    """
    offset = np.asarray(offset, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if np.any(offset <= 0) or np.any(target < 0):
        raise ConfigError("fit_offset_poisson needs positive offsets and non-negative targets")
    scale = float(offset.mean())
    offset, target = offset / scale, target / scale
    n = len(offset)
    l2 = ridge / n
    penalised = np.r_[0.0, np.ones(design.shape[1] - 1)]

    def loss(b: FloatArray) -> float:
        eta = design @ b
        with np.errstate(over="ignore"):
            return float((offset @ np.exp(eta) - target @ eta) / n + l2 * (penalised @ (b * b)))

    # Newton's method with step halving: the loss is convex and k is small.
    coef = np.zeros(design.shape[1])
    coef[0] = np.log(max(target.sum(), 1e-12) / offset.sum())
    for _ in range(100):
        mu = offset * np.exp(design @ coef)
        grad = design.T @ (mu - target) / n + 2.0 * l2 * penalised * coef
        if np.max(np.abs(grad)) < 1e-12:
            break
        hess = (design.T * mu) @ design / n + np.diag(2.0 * l2 * penalised)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        current, t = loss(coef), 1.0
        while loss(coef - t * step) > current and t > 1e-10:
            t /= 2.0
        coef = coef - t * step
    return coef


class CalibratedBTYDForecaster(BTYDForecaster):
    """BTYD times a per-customer factor fitted on an inner window (``--model btyd_cal``).

    Parameters
    ----------
    penalizer_coef, spend_days, purchase_model
        As in :class:`~ltvcast.models.btyd.BTYDForecaster` (both the inner and the final
        model).
    calibration_ridge
        Ridge penalty on the factor's slopes, in customers (see :func:`fit_offset_poisson`).

    Attributes
    ----------
    coef_ : ndarray
        The factor's coefficients, in the order of :data:`COEFFICIENTS`; all 0 when
        uncalibrated (``calibration_`` gives them by name).
    calibration_window_ : tuple of (Timestamp, Horizon) or None
        Cutoff and horizon of the inner window the factor was learned on.
    calibration_note_ : str
        What the factor was learned from, or why there is none.
    """

    name = "btyd_cal"

    def __init__(
        self,
        penalizer_coef: float = 0.0,
        spend_days: str = "all",
        purchase_model: str = "mbgnbd",
        calibration_ridge: float = 50.0,
    ) -> None:
        super().__init__(penalizer_coef, spend_days, purchase_model)
        self.calibration_ridge = calibration_ridge

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        if not self.calibration_ridge >= 0.0:
            raise ConfigError(f"calibration_ridge must be >= 0; got {self.calibration_ridge!r}")
        self.coef_ = np.zeros(len(COEFFICIENTS))
        self.calibration_window_: tuple[pd.Timestamp, Horizon] | None = None
        super()._fit(data, as_of, horizon)
        window = inner_window(data.first_timestamp(), as_of, horizon)
        if window is None:
            self.calibration_note_ = (
                f"uncalibrated: the history ({(as_of - data.first_timestamp()).days} days) "
                "leaves no inner window"
            )
            return
        self.calibration_window_ = window
        self.calibration_note_ = self._learn(data, *window)

    def _learn(self, data: CustomerData, cutoff: pd.Timestamp, window: Horizon) -> str:
        """Fit the factor on ``(cutoff, cutoff + window]``; returns the note."""
        params = {k: v for k, v in self.get_params().items() if k != "calibration_ridge"}
        try:
            inner = BTYDForecaster(**params).fit(data, cutoff, window)
        except InsufficientDataError as err:
            return f"uncalibrated: BTYD cannot train at the inner cutoff {cutoff:%Y-%m-%d} ({err})"
        rfm = rfm_summary(data.transactions, cutoff, time_unit_days=WEEK_DAYS)
        offset = inner.predict_rfm(rfm)["predicted_value"].to_numpy()
        spent = horizon_labels(data.transactions, rfm.index, cutoff, window.end(cutoff))
        inputs = self.inputs(rfm)
        design = calibration_design(
            inputs["frequency"].to_numpy(), inputs["monetary_value"].to_numpy()
        )
        used = offset > 0
        if not used.any():
            return f"uncalibrated: no customer has a positive forecast at {cutoff:%Y-%m-%d}"
        target = spent["value"].to_numpy().clip(min=0.0)[used]
        if not target.any():
            return f"uncalibrated: nobody with a forecast spent in the {window.describe()} window"
        coef = fit_offset_poisson(design[used], offset[used], target, self.calibration_ridge)
        # Keep the window's BTYD total: only the shape across customers carries over.
        factor = np.exp(design[used] @ coef)
        coef[0] -= np.log(float(offset[used] @ factor) / float(offset[used].sum()))
        self.coef_ = coef
        return (
            f"calibrated on {int(used.sum()):,} customers over {window.describe()} after "
            f"{cutoff:%Y-%m-%d}"
        )

    @property
    def calibration_(self) -> dict[str, float]:
        """The factor's coefficients by name."""
        self.check_fitted()
        return dict(zip(COEFFICIENTS, (float(c) for c in self.coef_), strict=True))

    def _value_per_purchase(
        self, frequency: FloatArray, monetary: FloatArray, design: pd.DataFrame | None = None
    ) -> FloatArray:
        factor = np.exp(calibration_design(frequency, monetary) @ self.coef_)
        out: FloatArray = super()._value_per_purchase(frequency, monetary, design) * factor
        return out

    def save_state(self, directory: Path) -> dict[str, Any]:
        """BTYD's parameters plus the factor, its window and note (JSON in the manifest)."""
        window = self.calibration_window_
        return super().save_state(directory) | {
            "calibration": self.calibration_,
            "calibration_window": (
                None if window is None else [window[0].isoformat(), str(window[1])]
            ),
            "calibration_note": self.calibration_note_,
        }

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Restore what :meth:`save_state` wrote."""
        super().load_state(directory, state)
        self.coef_ = np.array([float(state["calibration"][c]) for c in COEFFICIENTS])
        window = state["calibration_window"]
        self.calibration_window_ = (
            None if window is None else (pd.Timestamp(window[0]), parse_horizon(window[1]))
        )
        self.calibration_note_ = state["calibration_note"]
