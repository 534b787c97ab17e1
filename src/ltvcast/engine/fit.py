"""Fitting a BTYD forecaster from the RFM summary of all customers, gathered from buckets.

Every BTYD fit needs only the summary: the purchase model the ``(frequency, recency, T)``
rows (:class:`PurchaseRows`; its fit merges identical rows itself), Gamma-Gamma each buyer's
spend, CNBD-k the inter-purchase statistic. The two fits are
independent, so a job may run them at once (:func:`fit_purchases`, :func:`fit_spend`;
:func:`fitted` puts them together). They do what
:meth:`BTYDForecaster._fit <ltvcast.models.btyd.BTYDForecaster>` does from the same summary;
given the summary in customer-id order (as :func:`~ltvcast.features.rfm.rfm_summary` gives
it: Gamma-Gamma's optimum moves with the order in which its rows are summed), the
parameters are the in-memory fit's to the last bit (``tests/engine``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcast.engine.buckets import LITT
from ltvcast.engine.plan import SAMPLED_MODELS
from ltvcast.exceptions import ConfigError
from ltvcast.models.base import Forecaster
from ltvcast.models.bgnbd import FloatArray
from ltvcast.models.btyd import (
    PURCHASE_MODELS,
    BTYDForecaster,
    PurchaseModel,
)
from ltvcast.models.cnbd import BetaGeoCNBDModel, select_k
from ltvcast.models.gamma_gamma import GammaGammaModel
from ltvcast.models.registry import AUTO, forecaster_class
from ltvcast.timeframe import Horizon


@dataclass(frozen=True)
class PurchaseRows:
    """What the purchase model is fitted on: the ``(frequency, recency, T)`` row of every
    buyer, with (CNBD-k, whose choice of ``k`` weighs every customer's inter-purchase times)
    ``litt``. The fit merges identical rows itself (a sort: merging them here too, by a
    pandas group-by, cost more than the whole merge of the fit, 1M customers: 1.1 s)."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    litt: FloatArray | None = None


def fits_from_summary(model: type[Forecaster]) -> bool:
    """Whether forecasters of class ``model`` are fitted from the summary: BTYD forecasters
    whose fit is the plain one (``btyd``, ``pnbd``, ``bgcnbd``, ``mbgcnbd``; not
    ``btyd_cal``, which also learns from an inner window)."""
    return issubclass(model, BTYDForecaster) and model._fit is BTYDForecaster._fit


def needs_litt(forecaster: BTYDForecaster) -> bool:
    """Whether the fit needs the :data:`~ltvcast.engine.buckets.LITT` column (CNBD-k)."""
    return issubclass(PURCHASE_MODELS[forecaster.purchase_model], BetaGeoCNBDModel)


def summary_inputs(forecaster: BTYDForecaster, rfm: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs (:meth:`BTYDForecaster.summary
    <ltvcast.models.btyd.BTYDForecaster.summary>`) from the RFM summary.

    Raises
    ------
    ConfigError
        For hyperparameters the forecaster's own fit refuses.
    """
    forecaster.check_hyperparameters()
    return forecaster.inputs(rfm)


def purchase_rows(forecaster: BTYDForecaster, rfm: pd.DataFrame) -> PurchaseRows:
    """The purchase model's rows from the RFM summary (with ``litt`` for CNBD-k)."""
    x, tx, t_cal = (rfm[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    litt = rfm[LITT].to_numpy(np.float64) if needs_litt(forecaster) else None
    return PurchaseRows(x, tx, t_cal, litt=litt)


def fit_purchases(
    forecaster: BTYDForecaster, rows: PurchaseRows
) -> tuple[PurchaseModel, dict[int, float] | None]:
    """The purchase model of ``forecaster`` fitted on ``rows`` (the rows of its own fit, so
    the fit is the same), with the log-likelihood of each ``k`` tried for CNBD-k."""
    cls = PURCHASE_MODELS[forecaster.purchase_model]
    penalty = forecaster.penalizer_coef
    data = (rows.frequency, rows.recency, rows.T)
    if issubclass(cls, BetaGeoCNBDModel):
        if rows.litt is None:
            raise ConfigError(f"{forecaster.name}: CNBD-k rows need litt (see purchase_rows)")
        return select_k(*data, rows.litt, model=cls, penalizer_coef=penalty)
    return cls(penalty).fit(*data), None


def spend_rows(forecaster: BTYDForecaster, inputs: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    """Gamma-Gamma's rows, in order: purchase days and mean spend per buyer (``inputs`` of
    :func:`summary_inputs`)."""
    days = forecaster.spend_days_of(inputs["frequency"].to_numpy(np.float64))
    return days, inputs["monetary_value"].to_numpy(np.float64)


def fit_spend(forecaster: BTYDForecaster, rows: tuple[FloatArray, FloatArray]) -> GammaGammaModel:
    """Gamma-Gamma fitted on :func:`spend_rows`."""
    return GammaGammaModel(forecaster.penalizer_coef).fit(*rows)


def fitted(
    forecaster: BTYDForecaster,
    purchases: tuple[PurchaseModel, dict[int, float] | None],
    spend: GammaGammaModel,
    inputs: pd.DataFrame,
    as_of: pd.Timestamp,
    horizon: Horizon,
) -> BTYDForecaster:
    """``forecaster`` with the fitted models and the state its own fit keeps."""
    forecaster.bgnbd_, forecaster.k_log_likelihoods_ = purchases
    forecaster.gamma_gamma_ = spend
    forecaster.design_ = None  # covariates run in memory only
    forecaster.finish_fit(inputs)
    forecaster.horizon_ = horizon
    forecaster.as_of_ = as_of
    return forecaster


def trains_partitioned(name: str) -> bool:
    """Whether model ``name`` trains on a partitioned job: from every customer's RFM summary
    (:func:`fits_from_summary`), or on a customer sample
    (:data:`~ltvcast.engine.plan.SAMPLED_MODELS`)."""
    return name != AUTO and (name in SAMPLED_MODELS or fits_from_summary(forecaster_class(name)))
