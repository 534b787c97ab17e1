"""BTYD forecaster: (M)BG/NBD purchases x Gamma-Gamma spend (Fader, Hardie & Lee 2005).

Time is measured in weeks of purchase days (:func:`ltvcast.features.rfm.rfm_summary`), the
unit of the published CDNOW parameters. For a horizon of ``h`` days the forecaster gives

- ``predicted_purchases``: BG/NBD conditional expected repeat purchases in ``h / 7`` weeks
  (FHL 2005 eq. 10);
- ``predicted_value``: that count times the Gamma-Gamma conditional expected spend per
  purchase day (Fader & Hardie 2013 note), the usual CLV product, which assumes spend and
  purchase rate are independent;
- ``p_active``: 1 - P(no purchase in the horizon | x, t_x, T) (see
  :meth:`BetaGeoModel.p_no_purchase`).

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
the other datasets.

Customers seen up to ``as_of`` without a purchase (events only, or returns only) have no
first purchase from which BG/NBD can count; they get 0 for all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.base import Forecaster
from ltvcast.models.bgnbd import BetaGeoModel, FloatArray, ModifiedBetaGeoModel
from ltvcast.models.gamma_gamma import GammaGammaModel
from ltvcast.timeframe import Horizon

#: Time unit of the BTYD inputs, in days (weeks).
WEEK_DAYS = 7.0
#: Drivers of :meth:`BTYDForecaster.explain`, in column order (``monetary_value``: the spend
#: per purchase day that Gamma-Gamma sees, see ``spend_days``).
DRIVERS = ("recency", "frequency", "T", "monetary_value")
#: Values of ``spend_days``.
SPEND_DAYS = ("all", "repeat")
#: Values of ``purchase_model``.
PURCHASE_MODELS = {"bgnbd": BetaGeoModel, "mbgnbd": ModifiedBetaGeoModel}


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
        ``"mbgnbd"`` (MBG/NBD: a one-time buyer may have dropped out) or ``"bgnbd"``.
        ``spend_days="repeat", purchase_model="bgnbd"`` is the textbook model, which
        reproduces the published CDNOW parameters and ``lifetimes``.

    Attributes
    ----------
    bgnbd_ : BetaGeoModel
    gamma_gamma_ : GammaGammaModel
    n_customers_ : int
        Customers with a purchase up to the training ``as_of``.
    """

    name = "btyd"

    def __init__(
        self, penalizer_coef: float = 0.0, spend_days: str = "all", purchase_model: str = "mbgnbd"
    ) -> None:
        self.penalizer_coef = penalizer_coef
        self.spend_days = spend_days
        self.purchase_model = purchase_model

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        if self.spend_days not in SPEND_DAYS:
            raise ConfigError(
                f"spend_days must be one of {', '.join(SPEND_DAYS)}; got {self.spend_days!r}"
            )
        if self.purchase_model not in PURCHASE_MODELS:
            raise ConfigError(
                f"purchase_model must be one of {', '.join(PURCHASE_MODELS)}; "
                f"got {self.purchase_model!r}"
            )
        rfm = self.summary(data, as_of)
        self.bgnbd_ = PURCHASE_MODELS[self.purchase_model](self.penalizer_coef).fit(
            rfm["frequency"], rfm["recency"], rfm["T"]
        )
        self.gamma_gamma_ = GammaGammaModel(self.penalizer_coef).fit(
            self._spend_days(rfm["frequency"].to_numpy()), rfm["monetary_value"]
        )
        self.n_customers_ = len(rfm)
        #: The average training buyer (recency, frequency, T, spend): explain's reference.
        self.reference_ = rfm[list(DRIVERS)].mean().to_numpy(dtype=np.float64)

    def summary(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """The model's inputs per customer with a purchase: :data:`DRIVERS` in weeks.

        ``monetary_value`` is the mean net spend of the purchase days named by
        ``spend_days``, so the textbook (``"repeat"``) summary is
        :func:`~ltvcast.features.rfm.rfm_summary`'s.
        """
        return self._inputs(rfm_summary(data.transactions, as_of, time_unit_days=WEEK_DAYS))

    @property
    def rfm_scorer(self) -> BTYDForecaster:
        """BTYD forecasts are a formula of each customer's RFM summary: :meth:`predict_rfm`."""
        return self

    def predict_rfm(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """Forecast from a ready RFM summary (what the online scorer keeps per customer).

        Parameters
        ----------
        rfm
            Shaped like :func:`~ltvcast.features.rfm.rfm_summary` with ``time_unit_days=7``:
            ``frequency``, ``recency``, ``T``, ``monetary_value`` (repeat days) and
            ``total_value``, one row per customer with a purchase.

        Returns
        -------
        DataFrame
            ``predicted_value``, ``predicted_purchases``, ``p_active`` on ``rfm``'s index.
        """
        self.check_fitted()
        inputs = self._inputs(rfm)
        value, purchases, active = self._forecast(*(inputs[c].to_numpy() for c in DRIVERS))
        return pd.DataFrame(
            {"predicted_value": value, "predicted_purchases": purchases, "p_active": active},
            index=rfm.index,
        )

    def _inputs(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """:data:`DRIVERS` of an RFM summary, ``monetary_value`` per ``spend_days``."""
        out = rfm[list(DRIVERS)].copy()
        if self.spend_days == "all":
            out["monetary_value"] = rfm["total_value"] / (rfm["frequency"] + 1.0)
        return out

    def _spend_days(self, frequency: FloatArray) -> FloatArray:
        """Purchase days behind each ``monetary_value`` (Gamma-Gamma's ``x``)."""
        return frequency + 1.0 if self.spend_days == "all" else frequency

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        rfm = rfm_summary(data.transactions, as_of, time_unit_days=WEEK_DAYS)
        return self.predict_rfm(rfm).reindex(data.customers()).fillna(0.0)

    def _forecast(
        self, recency: FloatArray, frequency: FloatArray, T: FloatArray, monetary: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(value, purchases, p_active) over the fitted horizon for RFM arrays in weeks."""
        t = self.horizon_.days / WEEK_DAYS
        purchases = self.bgnbd_.expected_purchases(t, frequency, recency, T)
        spend = self.gamma_gamma_.expected_spend(self._spend_days(frequency), monetary)
        active = 1.0 - self.bgnbd_.p_no_purchase(t, frequency, recency, T)
        return purchases * spend, purchases, active

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Exact Shapley attribution of ``predicted_value`` to recency, frequency, T, spend.

        The reference is the average buyer of the training data (column means of its RFM
        summary at the fit's as-of, so one customer alone is explained against the same
        population as a batch); ``base_value`` is its prediction. A coalition's value is the
        prediction with the coalition's inputs taken from the customer and the others from
        the reference
        (recency capped at T so every mix is a valid input); all 2^4 coalitions are
        evaluated in one vectorised call. Drivers are in value units, so each row sums to
        ``predicted_value``. Customers without a purchase have 0 everywhere.
        """
        self.check_fitted()
        past = data.until(as_of)
        rfm = self.summary(past, as_of)
        own = rfm.to_numpy(dtype=np.float64)
        reference = self.reference_
        n_drivers = len(DRIVERS)
        subsets = np.arange(2**n_drivers)
        # mask[s, j]: driver j comes from the customer in coalition s.
        mask = ((subsets[:, None] >> np.arange(n_drivers)) & 1).astype(bool)
        mixed = np.where(mask[:, None, :], own[None, :, :], reference[None, None, :])
        flat = mixed.reshape(-1, n_drivers)
        recency = np.minimum(flat[:, 0], flat[:, 2])
        value = self._forecast(recency, flat[:, 1], flat[:, 2], flat[:, 3])[0]
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
        """Parameters only (JSON in the manifest); no file is written."""
        return {
            "time_unit_days": WEEK_DAYS,
            "spend_days": self.spend_days,
            "bgnbd": dict(self.bgnbd_.params_),
            "gamma_gamma": dict(self.gamma_gamma_.params_),
            "n_customers": self.n_customers_,
            "reference": [float(v) for v in self.reference_],
        }

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
        self.bgnbd_ = PURCHASE_MODELS[self.purchase_model](self.penalizer_coef).set_params(
            state["bgnbd"]
        )
        self.gamma_gamma_ = GammaGammaModel(self.penalizer_coef).set_params(state["gamma_gamma"])
        self.n_customers_ = int(state["n_customers"])
        self.reference_ = np.asarray(state["reference"], dtype=np.float64)
