"""BTYD forecaster: a purchase model ((M)BG/NBD by default) x Gamma-Gamma spend (FHL 2005).

Time is measured in weeks of purchase days (:func:`ltvcast.features.rfm.rfm_summary`), the
unit of the published CDNOW parameters. For a horizon of ``h`` days the forecaster gives

- ``predicted_purchases``: the purchase model's conditional expected repeat purchases in
  ``h / 7`` weeks (BG/NBD: FHL 2005 eq. 10);
- ``predicted_value``: that count times the Gamma-Gamma conditional expected spend per
  purchase day (Fader & Hardie 2013 note), the usual CLV product, which assumes spend and
  purchase rate are independent;
- ``p_active``: 1 - P(no purchase in the horizon | x, t_x, T) (see
  :meth:`BetaGeoModel.p_no_purchase <ltvcast.models.bgnbd.BetaGeoModel.p_no_purchase>`).

Gamma-Gamma spend (``spend_days``): the textbook model (``"repeat"``, as in the note and in
``lifetimes``) learns from repeat purchase days only, so every one-time buyer gets the
population mean. ``"all"`` (the default) also counts the first purchase day, with returns
netted: a one-time buyer's forecast then starts from what they spent, shrunk towards the
population. On inner backtests (cut-offs inside the calibration data of each benchmark; see
``bench/results.md``) ``"all"`` ranks better on CDNOW and Online Retail at an equal or lower
MAE, and ties on Complete Journey.

Purchases (``purchase_model``): BG/NBD, or by default its MBG/NBD variant (Batislam et al.
2007; see :class:`~ltvcast.models.bgnbd.ModifiedBetaGeoModel`), whose one-time buyers can
have dropped out; it ranks and errs a little better on CDNOW's inner backtests and ties on
the other datasets. Also: the Pareto/NBD (``"pnbd"``, :mod:`ltvcast.models.pareto_nbd`) and
the BG/CNBD-k and MBG/CNBD-k (``"bgcnbd"``, ``"mbgcnbd"``, :mod:`ltvcast.models.cnbd`), whose
Erlang-k inter-purchase times capture regular buying; their ``k`` is chosen by likelihood
(:func:`~ltvcast.models.cnbd.select_k`) from each customer's inter-purchase-day times
(:func:`log_intertransaction_times`), which the forecasts themselves do not need: every
purchase model forecasts from the RFM summary, so :meth:`BTYDForecaster.predict_rfm` (the
online fast path) serves them all. :class:`ParetoNBDForecaster`,
:class:`BetaGeoCNBDForecaster` and :class:`ModifiedBetaGeoCNBDForecaster` register these
variants under their own names.

Dates-only logs (every amount the same, e.g. 1) leave Gamma-Gamma nothing to fit: it falls
back to that constant spend (:attr:`GammaGammaModel.degenerate_
<ltvcast.models.gamma_gamma.GammaGammaModel>`), so ``predicted_value`` is
``predicted_purchases`` times it.

Customers seen up to ``as_of`` without a purchase (events only, or returns only) have no
first purchase from which BG/NBD can count; they get 0 for all three.

Profile columns named in ``covariates`` become time-invariant covariates (Fader & Hardie
2007, :mod:`ltvcast.models.covariates`) of the purchase rate, the dropout and the spend,
encoded by a :class:`~ltvcast.features.profile_design.ProfileDesign` learnt on the training
buyers and saved with the model. (M)BG/NBD and Pareto/NBD have covariate variants, the
(M)BG/CNBD-k none. Forecasts then need each customer's profile row (a missing one is
imputed as in training), so :attr:`BTYDForecaster.rfm_scorer` is ``None``: the online
scorer goes through :meth:`~ltvcast.models.base.Forecaster.predict`, which has the profiles;
:meth:`BTYDForecaster.predict_rfm` takes them as ``profiles``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltvcast.data.purchases import purchase_days
from ltvcast.data.schemas import CUSTOMER_ID, TIMESTAMP, CustomerData
from ltvcast.exceptions import ArtifactError, ConfigError
from ltvcast.features.profile_design import ProfileDesign
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.base import Forecaster
from ltvcast.models.bgnbd import BetaGeoModel, FloatArray, ModifiedBetaGeoModel
from ltvcast.models.clv import discounted_purchases
from ltvcast.models.cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel, select_k
from ltvcast.models.covariates import (
    BetaGeoCovariateModel,
    ModifiedBetaGeoCovariateModel,
    ParetoNBDCovariateModel,
    RFMCovariateModel,
)
from ltvcast.models.gamma_gamma import GammaGammaModel
from ltvcast.models.intervals import (
    ParameterUncertainty,
    purchase_covariance,
    quantile_columns,
    spend_covariance,
    value_intervals,
)
from ltvcast.models.pareto_nbd import ParetoNBDModel
from ltvcast.models.spend_covariates import GammaGammaCovariateModel
from ltvcast.timeframe import Horizon

#: An RFM-level purchase model the forecaster can use.
PurchaseModel = BetaGeoModel | ParetoNBDModel | BetaGeoCNBDModel


#: Time unit of the BTYD inputs, in days (weeks).
WEEK_DAYS = 7.0
#: Drivers of :meth:`BTYDForecaster.explain`, in column order (``monetary_value``: the spend
#: per purchase day that Gamma-Gamma sees, see ``spend_days``).
DRIVERS = ("recency", "frequency", "T", "monetary_value")
#: Values of ``spend_days``.
SPEND_DAYS = ("all", "repeat")
#: Values of ``purchase_model``: the RFM-level model of each.
PURCHASE_MODELS: dict[str, type[PurchaseModel]] = {
    "bgnbd": BetaGeoModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "pnbd": ParetoNBDModel,
    "bgcnbd": BetaGeoCNBDModel,
    "mbgcnbd": ModifiedBetaGeoCNBDModel,
}
#: The covariate variant of each ``purchase_model`` that has one.
COVARIATE_MODELS: dict[str, type[RFMCovariateModel]] = {
    "bgnbd": BetaGeoCovariateModel,
    "mbgnbd": ModifiedBetaGeoCovariateModel,
    "pnbd": ParetoNBDCovariateModel,
}
#: ``customer_id`` of :meth:`BTYDForecaster.new_customer`'s customer.
NEW_CUSTOMER = "(new customer)"


def log_intertransaction_times(
    transactions: pd.DataFrame, as_of: pd.Timestamp, *, time_unit_days: float = WEEK_DAYS
) -> pd.Series:
    """Per customer, the sum of the logs of the times between consecutive purchase days.

    The ``litt`` statistic of the (M)BG/CNBD-k likelihood (BTYDplus ``elog2cbs``), over the
    purchase days of :func:`~ltvcast.features.rfm.rfm_summary` up to ``as_of``, in units of
    ``time_unit_days``; 0 for one-time buyers.

    Returns
    -------
    Series
        Indexed by ``customer_id`` like :func:`~ltvcast.features.rfm.rfm_summary`.
    """
    days = purchase_days(transactions.loc[transactions[TIMESTAMP] <= as_of])
    days = days.loc[days["is_purchase"]]
    codes, ids = pd.factorize(days[CUSTOMER_ID], sort=True)
    day = days["day"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    order = np.lexsort((day, codes))
    codes, day = codes[order], day[order]
    same = codes[1:] == codes[:-1]
    gaps = (day[1:] - day[:-1])[same] / time_unit_days
    litt = np.bincount(codes[1:][same], weights=np.log(gaps), minlength=len(ids))
    return pd.Series(litt.astype(np.float64), index=pd.Index(ids, name=CUSTOMER_ID), name="litt")


class BTYDForecaster(Forecaster):
    """BG/NBD + Gamma-Gamma forecaster (``--model btyd``).

    Parameters
    ----------
    penalizer_coef
        L2 penalty passed to both models (0 = plain maximum likelihood).
    spend_days
        Purchase days whose spend Gamma-Gamma learns from: ``"all"`` (first and repeat
        days, returns netted) or ``"repeat"`` (repeat days only, as published).
    purchase_model
        ``"mbgnbd"`` (MBG/NBD: a one-time buyer may have dropped out) or ``"bgnbd"``;
        ``"pnbd"`` (Pareto/NBD); ``"bgcnbd"`` or ``"mbgcnbd"`` ((M)BG/CNBD-k, ``k`` chosen by
        likelihood). ``spend_days="repeat", purchase_model="bgnbd"`` is the textbook model,
        which reproduces the published CDNOW parameters and ``lifetimes``.
    covariates
        Profile columns (``CustomerData.profiles``) that act on the purchase rate, the
        dropout and the spend of every customer (see the module docstring); ``()`` for none.

    Attributes
    ----------
    bgnbd_ : BetaGeoModel, ParetoNBDModel, BetaGeoCNBDModel or RFMCovariateModel
        The fitted purchase model of ``purchase_model`` (named after the default family;
        its covariate variant with ``covariates``).
    k_log_likelihoods_ : dict or None
        (M)BG/CNBD-k only: the log-likelihood of each ``k`` tried (the chosen one is
        ``bgnbd_.k``).
    gamma_gamma_ : GammaGammaModel or GammaGammaCovariateModel
    uncertainty_ : ParameterUncertainty or None
        Sampling covariance of both models' log-parameters, for :meth:`value_intervals`
        (``None`` in a model saved by an ltvcast without it, and with ``covariates``, whose
        models keep theirs as ``covariance_``).
    design_ : ProfileDesign or None
        The encoding of the ``covariates`` (None without).
    n_customers_ : int
        Customers with a purchase up to the training ``as_of``.
    """

    name = "btyd"

    def __init__(
        self,
        penalizer_coef: float = 0.0,
        spend_days: str = "all",
        purchase_model: str = "mbgnbd",
        covariates: tuple[str, ...] = (),
    ) -> None:
        self.penalizer_coef = penalizer_coef
        self.spend_days = spend_days
        self.purchase_model = purchase_model
        self.covariates = covariates

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        self.check_hyperparameters()
        rfm = self.summary(data, as_of)
        self.design_ = self._fit_design(data, rfm.index)
        design = self._design(data.profiles, rfm.index)
        self.bgnbd_ = self._fit_purchases(data, as_of, rfm, design)
        spend = (self.spend_days_of(rfm["frequency"].to_numpy()), rfm["monetary_value"])
        self.gamma_gamma_ = (
            GammaGammaModel(self.penalizer_coef).fit(*spend)
            if design is None
            else GammaGammaCovariateModel(self.penalizer_coef).fit(*spend, covariates=design)
        )
        self.finish_fit(rfm)

    def finish_fit(self, inputs: pd.DataFrame) -> None:
        """What a fit keeps beside the fitted ``bgnbd_`` and ``gamma_gamma_``, from the
        training buyers' :meth:`summary` ``inputs``: the parameters' sampling covariance
        (none with covariates), the buyer count and explain's reference (the average
        training buyer). Also the last step of a fit made elsewhere (:mod:`ltvcast.engine`)."""
        frequency = inputs["frequency"].to_numpy()
        self.uncertainty_: ParameterUncertainty | None = None
        purchases, spend_model = self.bgnbd_, self.gamma_gamma_
        if not isinstance(purchases, RFMCovariateModel) and not isinstance(
            spend_model, GammaGammaCovariateModel
        ):
            self.uncertainty_ = ParameterUncertainty(
                purchase_covariance(purchases, frequency, inputs["recency"], inputs["T"]),
                spend_covariance(
                    spend_model, self.spend_days_of(frequency), inputs["monetary_value"]
                ),
            )
        self.n_customers_ = len(inputs)
        self.reference_ = inputs[list(DRIVERS)].mean().to_numpy(dtype=np.float64)

    def _fit_design(self, data: CustomerData, buyers: pd.Index) -> ProfileDesign | None:
        """The encoding of ``covariates``, learnt on the profiles of the training buyers."""
        if isinstance(self.covariates, str):
            raise ConfigError(
                f"covariates must be a sequence of profile columns; got the string "
                f"{self.covariates!r} (write ({self.covariates!r},))"
            )
        if not self.covariates:
            return None
        if self.purchase_model not in COVARIATE_MODELS:
            raise ConfigError(
                f"purchase_model {self.purchase_model!r} has no covariate variant; covariates "
                f"work with {', '.join(COVARIATE_MODELS)}"
            )
        return ProfileDesign(tuple(self.covariates)).fit(data.profiles, buyers)

    def _design(self, profiles: pd.DataFrame | None, customers: pd.Index) -> pd.DataFrame | None:
        """The covariates of ``customers`` from ``profiles`` (None without ``covariates``)."""
        return None if self.design_ is None else self.design_.transform(profiles, customers)

    def _models(self, design: pd.DataFrame | None) -> tuple[PurchaseModel, GammaGammaModel]:
        """The purchase and spend models whose parameters are those of the rows of
        ``design`` (the fitted models themselves without covariates)."""
        purchases, spend = self.bgnbd_, self.gamma_gamma_
        if isinstance(purchases, RFMCovariateModel):
            purchases = purchases.for_customers(design, design)
        if isinstance(spend, GammaGammaCovariateModel):
            spend = spend.for_customers(design)
        return purchases, spend

    def _fit_purchases(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        rfm: pd.DataFrame,
        design: pd.DataFrame | None,
    ) -> PurchaseModel | RFMCovariateModel:
        """The purchase model fitted on ``rfm`` (and, for CNBD-k, the inter-purchase times;
        with covariates, on ``design``)."""
        rows = (rfm["frequency"], rfm["recency"], rfm["T"])
        self.k_log_likelihoods_: dict[int, float] | None = None
        if design is not None:
            with_covariates = COVARIATE_MODELS[self.purchase_model](self.penalizer_coef)
            return with_covariates.fit(*rows, purchase_covariates=design, dropout_covariates=design)
        cls = PURCHASE_MODELS[self.purchase_model]
        if issubclass(cls, BetaGeoCNBDModel):
            litt = log_intertransaction_times(data.transactions, as_of).reindex(rfm.index)
            model, self.k_log_likelihoods_ = select_k(
                *rows, litt.to_numpy(), model=cls, penalizer_coef=self.penalizer_coef
            )
            return model
        return cls(self.penalizer_coef).fit(*rows)

    def summary(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """The model's inputs per customer with a purchase: :data:`DRIVERS` in weeks.

        ``monetary_value`` is the mean net spend of the purchase days named by
        ``spend_days``, so the textbook (``"repeat"``) summary is
        :func:`~ltvcast.features.rfm.rfm_summary`'s.
        """
        return self.inputs(rfm_summary(data.transactions, as_of, time_unit_days=WEEK_DAYS))

    @property
    def rfm_scorer(self) -> BTYDForecaster | None:
        """BTYD forecasts are a formula of each customer's RFM summary: :meth:`predict_rfm`;
        ``None`` with ``covariates`` (the forecasts need the profiles too)."""
        return None if self.covariates else self

    def predict_rfm(self, rfm: pd.DataFrame, profiles: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast from a ready RFM summary (what the online scorer keeps per customer).

        Parameters
        ----------
        rfm
            Shaped like :func:`~ltvcast.features.rfm.rfm_summary` with ``time_unit_days=7``:
            ``frequency``, ``recency``, ``T``, ``monetary_value`` (repeat days) and
            ``total_value``, one row per customer with a purchase.
        profiles
            With ``covariates``: the customers' profile rows (``customer_id`` matching the
            index of ``rfm``); missing rows or values are imputed as in training.

        Returns
        -------
        DataFrame
            ``predicted_value``, ``predicted_purchases``, ``p_active`` on ``rfm``'s index.
        """
        self.check_fitted()
        inputs = self.inputs(rfm)
        recency, frequency, T, monetary = (inputs[c].to_numpy() for c in DRIVERS)
        design = self._design(profiles, rfm.index)
        value, purchases, active = self._forecast(recency, frequency, T, monetary, design)
        return pd.DataFrame(
            {"predicted_value": value, "predicted_purchases": purchases, "p_active": active},
            index=rfm.index,
        )

    def check_hyperparameters(self) -> None:
        """:class:`ConfigError` for a ``spend_days`` or ``purchase_model`` the forecaster does
        not know (the first step of every fit)."""
        if self.spend_days not in SPEND_DAYS:
            raise ConfigError(
                f"spend_days must be one of {', '.join(SPEND_DAYS)}; got {self.spend_days!r}"
            )
        if self.purchase_model not in PURCHASE_MODELS:
            raise ConfigError(
                f"purchase_model must be one of {', '.join(PURCHASE_MODELS)}; "
                f"got {self.purchase_model!r}"
            )

    def inputs(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """:data:`DRIVERS` of an RFM summary, ``monetary_value`` per ``spend_days``."""
        out = rfm[list(DRIVERS)].copy()
        if self.spend_days == "all":
            out["monetary_value"] = rfm["total_value"] / (rfm["frequency"] + 1.0)
        return out

    def spend_days_of(self, frequency: FloatArray) -> FloatArray:
        """Purchase days behind each ``monetary_value`` (Gamma-Gamma's ``x``)."""
        return frequency + 1.0 if self.spend_days == "all" else frequency

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        rfm = rfm_summary(data.transactions, as_of, time_unit_days=WEEK_DAYS)
        return self.predict_rfm(rfm, data.profiles).reindex(data.customers()).fillna(0.0)

    def _forecast(
        self,
        recency: FloatArray,
        frequency: FloatArray,
        T: FloatArray,
        monetary: FloatArray,
        design: pd.DataFrame | None = None,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(value, purchases, p_active) over the fitted horizon for RFM arrays in weeks (and
        the rows' covariates)."""
        t = self.horizon_.days / WEEK_DAYS
        model = self._models(design)[0]
        purchases = model.expected_purchases(t, frequency, recency, T)
        active = 1.0 - model.p_no_purchase(t, frequency, recency, T)
        value = purchases * self._value_per_purchase(frequency, monetary, design)
        return value, purchases, active

    def _value_per_purchase(
        self, frequency: FloatArray, monetary: FloatArray, design: pd.DataFrame | None = None
    ) -> FloatArray:
        """What each expected purchase is worth: Gamma-Gamma's conditional expected spend."""
        spend = self._models(design)[1]
        return spend.expected_spend(self.spend_days_of(frequency), monetary)

    def predict_curve(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        horizons: Sequence[Horizon],
        *,
        discount_rate: float | None = None,
    ) -> pd.DataFrame:
        """Forecasts at several horizons from the one fitted model.

        Per horizon ``h`` (named as written, e.g. ``90d``): ``purchases_h`` and ``value_h``
        (expected repeat purchases and their value in ``(as_of, as_of + h]``, non-decreasing
        in ``h`` by construction), ``p_alive_h`` (P(alive) at ``as_of + h``, the purchase
        model's ``p_alive_at``) and, with a ``discount_rate``, ``discounted_value_h`` (value
        with continuous annual discounting, :func:`~ltvcast.models.clv.discounted_purchases`).

        Returns
        -------
        DataFrame
            Indexed by ``customer_id`` (customers seen up to ``as_of``; 0 for those without
            a purchase).
        """
        self.check_fitted()
        past = data.until(as_of)
        rfm = rfm_summary(past.transactions, as_of, time_unit_days=WEEK_DAYS)
        out = self.curve_rfm(rfm, horizons, discount_rate=discount_rate, profiles=past.profiles)
        out = out.reindex(past.customers()).fillna(0.0)
        out.index.name = CUSTOMER_ID
        return out

    def curve_rfm(
        self,
        rfm: pd.DataFrame,
        horizons: Sequence[Horizon],
        *,
        discount_rate: float | None = None,
        profiles: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """:meth:`predict_curve` from a ready RFM summary (as :meth:`predict_rfm` takes, with
        its ``profiles``)."""
        self.check_fitted()
        inputs = self.inputs(rfm)
        recency, frequency, T, monetary = (inputs[c].to_numpy() for c in DRIVERS)
        design = self._design(profiles, rfm.index)
        per_purchase = self._value_per_purchase(frequency, monetary, design)
        model = self._models(design)[0]
        columns: dict[str, FloatArray] = {}
        for horizon in horizons:
            t = horizon.days / WEEK_DAYS
            purchases = model.expected_purchases(t, frequency, recency, T)
            columns[f"purchases_{horizon}"] = purchases
            columns[f"value_{horizon}"] = purchases * per_purchase
            columns[f"p_alive_{horizon}"] = model.p_alive_at(t, frequency, recency, T)
            if discount_rate is not None:
                discounted = discounted_purchases(
                    model, t, frequency, recency, T, rate=discount_rate, unit_days=WEEK_DAYS
                )
                columns[f"discounted_value_{horizon}"] = discounted * per_purchase
        return pd.DataFrame(columns, index=rfm.index)

    def new_customer(
        self,
        horizons: Sequence[Horizon],
        *,
        discount_rate: float | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """What a customer who has just made a first purchase is expected to do next.

        The population-level forecast (CLVTools' ``newcustomer``, PyMC-Marketing's
        population predictions): per horizon, ``purchases`` (expected repeat purchases,
        the purchase model's curve at ``x = t_x = T = 0``), ``value`` (times the population
        mean spend per purchase day), ``p_alive`` at the horizon and, with a
        ``discount_rate``, ``discounted_value``.

        With ``covariates``, ``profile`` (profile column -> value) makes it the forecast of
        a new customer with that profile: the population's parameters at their covariates
        (columns left out or missing are imputed as in training, so no ``profile`` is a
        customer of unknown profile).

        Returns
        -------
        DataFrame
            One row per horizon, indexed by its name.

        Raises
        ------
        ConfigError
            For a ``profile`` given to a model without covariates.
        """
        self.check_fitted()
        if profile is not None and self.design_ is None:
            raise ConfigError("the model has no covariates, so a profile changes nothing")
        profiles = (
            None if profile is None else pd.DataFrame([{**profile, CUSTOMER_ID: NEW_CUSTOMER}])
        )
        index = pd.Index([NEW_CUSTOMER], name=CUSTOMER_ID)
        spend = self._models(self._design(profiles, index))[1]
        mean = float(spend.expected_spend([0.0], [0.0])[0])  # its population mean
        fresh = pd.DataFrame(
            {
                "frequency": [0.0],
                "recency": [0.0],
                "T": [0.0],
                "monetary_value": [mean],
                "total_value": [mean],
            },
            index=index,
        )
        curve = self.curve_rfm(
            fresh, horizons, discount_rate=discount_rate, profiles=profiles
        ).iloc[0]
        names = ["purchases", "value", "p_alive"] + (
            ["discounted_value"] * (discount_rate is not None)
        )
        rows = {str(h): {name: float(curve[f"{name}_{h}"]) for name in names} for h in horizons}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "horizon"
        return out

    def value_intervals(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        *,
        quantiles: Sequence[float] = (0.1, 0.9),
        n_draws: int = 200,
        random_state: int | None = 0,
    ) -> pd.DataFrame:
        """Quantiles of ``predicted_value`` under the parameters' sampling uncertainty.

        A parametric bootstrap (:mod:`ltvcast.models.intervals`): ``n_draws`` parameter sets
        of both models from their fitted sampling distribution, each customer's expected
        value over the fitted horizon under each, and its ``quantiles``. These bound the
        *expected* value, not the spend the customer will realise. A value per purchase
        beyond Gamma-Gamma's (``btyd_cal``'s factor) scales them, its own error left out.

        Returns
        -------
        DataFrame
            Indexed by ``customer_id`` (customers seen up to ``as_of``; 0 for those without
            a purchase), one column per level (``value_p10`` for 0.1).

        Raises
        ------
        ConfigError
            For a model with ``covariates`` (not drawn yet: each customer's parameters
            follow from the coefficients; see :meth:`coefficient_table` for their errors).
        ArtifactError
            For a model saved by an ltvcast that did not keep the covariance.
        """
        self.check_fitted()
        if self.design_ is not None:
            raise ConfigError(
                "value intervals are not available for a model with covariates yet; its "
                "coefficients' standard errors are in coefficient_table()"
            )
        if self.uncertainty_ is None:
            raise ArtifactError(
                "this BTYD model was saved without its parameters' sampling covariance (by an "
                "earlier ltvcast); retrain it to get value intervals"
            )
        past = data.until(as_of)
        inputs = self.inputs(rfm_summary(past.transactions, as_of, time_unit_days=WEEK_DAYS))
        recency, frequency, T, monetary = (inputs[c].to_numpy() for c in DRIVERS)
        spend_days = self.spend_days_of(frequency)
        purchases, spend = self._models(None)  # the fitted models: no covariates here
        bounds = value_intervals(
            purchases,
            spend,
            self.uncertainty_,
            self.horizon_.days / WEEK_DAYS,
            *(frequency, recency, T, spend_days, monetary),
            quantiles=quantiles,
            n_draws=n_draws,
            random_state=random_state,
        )
        factor = self._value_per_purchase(frequency, monetary) / self.gamma_gamma_.expected_spend(
            spend_days, monetary
        )
        out = pd.DataFrame(
            bounds * factor[:, None], index=inputs.index, columns=quantile_columns(quantiles)
        )
        out = out.reindex(past.customers()).fillna(0.0)
        out.index.name = CUSTOMER_ID
        return out

    def coefficient_table(self) -> pd.DataFrame:
        """The covariates' effects: each covariate model's
        :meth:`~ltvcast.models._coefficients.CoefficientModel.coefficient_table` (estimates,
        standard errors from the observed information, Wald tests), ``purchase`` for the
        purchase model and ``spend`` for Gamma-Gamma (left out when its spend is constant).

        Raises
        ------
        ConfigError
            For a model without covariates.
        """
        self.check_fitted()
        purchases, spend = self.bgnbd_, self.gamma_gamma_
        if not isinstance(purchases, RFMCovariateModel):
            raise ConfigError("the model has no covariates; fit it with covariates=(...)")
        tables = {"purchase": purchases.coefficient_table()}
        if isinstance(spend, GammaGammaCovariateModel) and not spend.degenerate_:
            tables["spend"] = spend.coefficient_table()
        return pd.concat(tables, names=["model"])

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Exact Shapley attribution of ``predicted_value`` to recency, frequency, T, spend.

        The reference is the average buyer of the training data (column means of its RFM
        summary at the fit's as-of, so one customer alone is explained against the same
        population as a batch); ``base_value`` is its prediction. A coalition's value is the
        prediction with the coalition's inputs taken from the customer and the others from
        the reference
        (recency capped at T so every mix is a valid input); all 2^4 coalitions are
        evaluated in one vectorised call. Drivers are in value units, so each row sums to
        ``predicted_value``. Customers without a purchase have 0 everywhere. With
        ``covariates`` every coalition keeps the customer's own profile, so ``base_value``
        is the average buyer's prediction at that profile.
        """
        self.check_fitted()
        past = data.until(as_of)
        rfm = self.summary(past, as_of)
        design = self._design(past.profiles, rfm.index)
        own = rfm.to_numpy(dtype=np.float64)
        reference = self.reference_
        n_drivers = len(DRIVERS)
        subsets = np.arange(2**n_drivers)
        # mask[s, j]: driver j comes from the customer in coalition s.
        mask = ((subsets[:, None] >> np.arange(n_drivers)) & 1).astype(bool)
        mixed = np.where(mask[:, None, :], own[None, :, :], reference[None, None, :])
        flat = mixed.reshape(-1, n_drivers)
        recency = np.minimum(flat[:, 0], flat[:, 2])
        tiled = (
            None
            if design is None
            else pd.DataFrame(np.tile(design.to_numpy(), (len(subsets), 1)), columns=design.columns)
        )
        value = self._forecast(recency, flat[:, 1], flat[:, 2], flat[:, 3], tiled)[0]
        value = value.reshape(len(subsets), len(rfm))
        size = mask.sum(axis=1)
        fact = np.array([1.0, 1.0, 2.0, 6.0, 24.0])
        contributions = np.zeros((len(rfm), n_drivers))
        for j in range(n_drivers):
            without = subsets[~mask[:, j]]
            weight = fact[size[without]] * fact[n_drivers - size[without] - 1] / fact[n_drivers]
            gain = value[without | (1 << j)] - value[without]
            contributions[:, j] = weight @ gain
        out = pd.DataFrame(contributions, index=rfm.index, columns=list(DRIVERS))
        out["base_value"] = value[0]
        out = out.reindex(past.customers()).fillna(0.0)
        out.index.name = CUSTOMER_ID
        return out

    def save_state(self, directory: Path) -> dict[str, Any]:
        """Parameters only (JSON in the manifest); no file is written. ``bgnbd`` holds the
        purchase model's parameters, ``k`` (CNBD-k only) its Erlang shape."""
        state = {
            "time_unit_days": WEEK_DAYS,
            "spend_days": self.spend_days,
            "bgnbd": dict(self.bgnbd_.params_),
            "gamma_gamma": dict(self.gamma_gamma_.params_),
            "n_customers": self.n_customers_,
            "reference": [float(v) for v in self.reference_],
            "uncertainty": None if self.uncertainty_ is None else self.uncertainty_.to_state(),
        }
        if isinstance(self.bgnbd_, BetaGeoCNBDModel):
            state["k"] = self.bgnbd_.k
            state["k_log_likelihoods"] = {
                str(k): v for k, v in (self.k_log_likelihoods_ or {}).items()
            }
        if self.design_ is not None:
            state["covariates"] = self.design_.to_dict()
            state["covariance"] = {
                name: _json_matrix(getattr(model, "covariance_", None))
                for name, model in (("bgnbd", self.bgnbd_), ("gamma_gamma", self.gamma_gamma_))
            }
        return state

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Restore the parameters written by :meth:`save_state`."""
        if float(state["time_unit_days"]) != WEEK_DAYS:
            raise ValueError(f"time unit {state['time_unit_days']} days, expected {WEEK_DAYS}")
        if state.get("spend_days", "repeat") != self.spend_days:
            raise ValueError(
                f"state was fitted with spend_days={state.get('spend_days', 'repeat')!r} (an "
                f"artifact of an earlier ltvcast has none), the forecaster has "
                f"{self.spend_days!r}; retrain the model"
            )
        if self.purchase_model not in PURCHASE_MODELS:
            raise ValueError(f"unknown purchase_model {self.purchase_model!r}")
        if bool(self.covariates) != ("covariates" in state):
            raise ValueError(
                f"state was fitted with covariates {state.get('covariates', {}).get('columns', [])}"
                f", the forecaster has {list(self.covariates)}; retrain the model"
            )
        cls = PURCHASE_MODELS[self.purchase_model]
        self.k_log_likelihoods_ = None
        self.design_ = None
        if "covariates" in state:
            self.design_ = ProfileDesign.from_dict(state["covariates"])
            covariance = state["covariance"]
            self.bgnbd_ = COVARIATE_MODELS[self.purchase_model](self.penalizer_coef).set_params(
                state["bgnbd"], _from_json_matrix(covariance["bgnbd"])
            )
            self.gamma_gamma_ = GammaGammaCovariateModel(self.penalizer_coef).set_params(
                state["gamma_gamma"], _from_json_matrix(covariance["gamma_gamma"])
            )
        elif issubclass(cls, BetaGeoCNBDModel):
            self.bgnbd_ = cls(int(state["k"]), self.penalizer_coef).set_params(state["bgnbd"])
            lls = state.get("k_log_likelihoods", {})
            self.k_log_likelihoods_ = {int(k): float(v) for k, v in lls.items()}
        else:
            self.bgnbd_ = cls(self.penalizer_coef).set_params(state["bgnbd"])
        if self.design_ is None:
            self.gamma_gamma_ = GammaGammaModel(self.penalizer_coef).set_params(
                state["gamma_gamma"]
            )
        self.n_customers_ = int(state["n_customers"])
        self.reference_ = np.asarray(state["reference"], dtype=np.float64)
        saved = state.get("uncertainty")
        self.uncertainty_ = None if saved is None else ParameterUncertainty.from_state(saved)


class ParetoNBDForecaster(BTYDForecaster):
    """Pareto/NBD + Gamma-Gamma (``--model pnbd``): :class:`BTYDForecaster` with
    ``purchase_model="pnbd"``."""

    name = "pnbd"

    def __init__(
        self, penalizer_coef: float = 0.0, spend_days: str = "all", covariates: tuple[str, ...] = ()
    ) -> None:
        super().__init__(penalizer_coef, spend_days, purchase_model="pnbd", covariates=covariates)


class BetaGeoCNBDForecaster(BTYDForecaster):
    """BG/CNBD-k + Gamma-Gamma (``--model bgcnbd``): :class:`BTYDForecaster` with
    ``purchase_model="bgcnbd"``, ``k`` chosen by likelihood."""

    name = "bgcnbd"

    def __init__(self, penalizer_coef: float = 0.0, spend_days: str = "all") -> None:
        super().__init__(penalizer_coef, spend_days, purchase_model="bgcnbd")


class ModifiedBetaGeoCNBDForecaster(BTYDForecaster):
    """MBG/CNBD-k + Gamma-Gamma (``--model mbgcnbd``): :class:`BTYDForecaster` with
    ``purchase_model="mbgcnbd"``, ``k`` chosen by likelihood."""

    name = "mbgcnbd"

    def __init__(self, penalizer_coef: float = 0.0, spend_days: str = "all") -> None:
        super().__init__(penalizer_coef, spend_days, purchase_model="mbgcnbd")


def _json_matrix(matrix: FloatArray | None) -> list[list[float | None]] | None:
    """A covariance matrix for JSON (NaN as null)."""
    if matrix is None:
        return None
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def _from_json_matrix(rows: list[list[float | None]] | None) -> list[list[float]] | None:
    """The inverse of :func:`_json_matrix`."""
    if rows is None:
        return None
    return [[np.nan if v is None else float(v) for v in row] for row in rows]
