"""Fitting a BTYD forecaster from the RFM summary of all customers, gathered from buckets.

Every BTYD fit needs only the summary: the purchase model the ``(frequency, recency, T)``
rows (which it merges into distinct rows with weights itself), Gamma-Gamma each buyer's
spend, CNBD-k the inter-purchase statistic. :func:`fit_from_summary` does what
:meth:`BTYDForecaster._fit <ltvcast.models.btyd.BTYDForecaster>` does from the same
summary; given the summary in customer-id order (as the in-memory
:func:`~ltvcast.features.rfm.rfm_summary` gives it: Gamma-Gamma's optimum moves with the
order in which its rows are summed), the parameters are the in-memory fit's to the last bit
(``tests/engine/test_fit.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltvcast.engine.buckets import LITT
from ltvcast.exceptions import ConfigError
from ltvcast.models.base import Forecaster
from ltvcast.models.btyd import DRIVERS, PURCHASE_MODELS, SPEND_DAYS, BTYDForecaster
from ltvcast.models.cnbd import BetaGeoCNBDModel, select_k
from ltvcast.models.gamma_gamma import GammaGammaModel
from ltvcast.timeframe import Horizon


def fits_from_summary(model: type[Forecaster]) -> bool:
    """Whether :func:`fit_from_summary` fits forecasters of class ``model``: BTYD forecasters
    whose fit is the plain one (``btyd``, ``pnbd``, ``bgcnbd``, ``mbgcnbd``; not ``btyd_cal``,
    which also learns from an inner window)."""
    return issubclass(model, BTYDForecaster) and model._fit is BTYDForecaster._fit


def needs_litt(forecaster: BTYDForecaster) -> bool:
    """Whether the fit needs the :data:`~ltvcast.engine.buckets.LITT` column (CNBD-k)."""
    return issubclass(PURCHASE_MODELS[forecaster.purchase_model], BetaGeoCNBDModel)


def fit_from_summary(
    forecaster: BTYDForecaster, rfm: pd.DataFrame, as_of: pd.Timestamp, horizon: Horizon
) -> BTYDForecaster:
    """Fit ``forecaster`` (unfitted, see :func:`fits_from_summary`) on ``rfm``.

    Parameters
    ----------
    rfm
        :func:`~ltvcast.features.rfm.rfm_summary` in weeks at ``as_of`` of every customer with
        a purchase, in customer-id order, with :data:`~ltvcast.engine.buckets.LITT` for CNBD-k.

    Raises
    ------
    ConfigError
        For hyperparameters the forecaster's own fit refuses.
    InsufficientDataError
        When the models cannot be fitted on the data (as in memory).
    """
    if forecaster.spend_days not in SPEND_DAYS:
        raise ConfigError(
            f"spend_days must be one of {', '.join(SPEND_DAYS)}; got {forecaster.spend_days!r}"
        )
    if forecaster.purchase_model not in PURCHASE_MODELS:
        raise ConfigError(
            f"purchase_model must be one of {', '.join(PURCHASE_MODELS)}; "
            f"got {forecaster.purchase_model!r}"
        )
    inputs = rfm[list(DRIVERS)].copy()  # BTYDForecaster.summary's columns
    frequency = inputs["frequency"].to_numpy()
    if forecaster.spend_days == "all":
        inputs["monetary_value"] = rfm["total_value"] / (rfm["frequency"] + 1.0)
    penalty = forecaster.penalizer_coef
    rows = (inputs["frequency"], inputs["recency"], inputs["T"])
    cls = PURCHASE_MODELS[forecaster.purchase_model]
    forecaster.k_log_likelihoods_ = None
    if issubclass(cls, BetaGeoCNBDModel):
        litt = rfm[LITT].to_numpy()
        model, forecaster.k_log_likelihoods_ = select_k(
            *rows, litt, model=cls, penalizer_coef=penalty
        )
        forecaster.bgnbd_ = model
    else:
        forecaster.bgnbd_ = cls(penalty).fit(*rows)
    spend = frequency + 1.0 if forecaster.spend_days == "all" else frequency
    forecaster.gamma_gamma_ = GammaGammaModel(penalty).fit(spend, inputs["monetary_value"])
    forecaster.n_customers_ = len(inputs)
    forecaster.reference_ = inputs[list(DRIVERS)].mean().to_numpy(dtype=np.float64)
    forecaster.horizon_ = horizon
    forecaster.as_of_ = as_of
    return forecaster
