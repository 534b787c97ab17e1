"""The reference rows: the ``lifetimes`` package's BG/NBD (``lifetimes``) and Pareto/NBD
(``lifetimes_pnbd``) + Gamma-Gamma on the same split.

Timed from the same canonical transaction table to predictions, as a lifetimes user would
run it: ``summary_data_from_transaction_data`` (days, in weeks via ``freq_multiplier``),
``BetaGeoFitter`` or ``ParetoNBDFitter``, ``GammaGammaFitter`` on repeaters with positive
spend. P(active) is lifetimes' ``conditional_probability_alive`` (its fitters have no
probability of a purchase in a window).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CustomerData
from ltvcast.timeframe import Horizon

#: Reference model names in the bench -> lifetimes' purchase model.
REFERENCES = {"lifetimes": "BetaGeoFitter", "lifetimes_pnbd": "ParetoNBDFitter"}


def lifetimes_predict(
    data: CustomerData, cutoff: pd.Timestamp, horizon: Horizon, fitter: str = "BetaGeoFitter"
) -> pd.DataFrame:
    """Fit lifetimes' ``fitter`` (BG/NBD or Pareto/NBD) + Gamma-Gamma on data up to ``cutoff``
    and forecast ``horizon``. A log whose amounts are all equal (dates only) has nothing
    for Gamma-Gamma to learn: each purchase is worth that amount, as a lifetimes user would
    do by hand."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lifetimes
        from lifetimes import GammaGammaFitter
        from lifetimes.utils import summary_data_from_transaction_data

    tx = data.transactions[data.transactions["timestamp"] <= cutoff]
    summary = summary_data_from_transaction_data(
        tx,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        observation_period_end=cutoff.floor("D"),
        freq="D",
        freq_multiplier=7,
    )
    model = getattr(lifetimes, fitter)(penalizer_coef=0.0)
    model.fit(summary["frequency"], summary["recency"], summary["T"])
    weeks = horizon.days / 7.0
    purchases = model.conditional_expected_number_of_purchases_up_to_time(
        weeks, summary["frequency"], summary["recency"], summary["T"]
    )
    amounts = tx["amount"].to_numpy()
    if np.all(amounts == amounts[0]):
        spend = pd.Series(float(amounts[0]), index=summary.index)
    else:
        repeaters = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        ggf = GammaGammaFitter(penalizer_coef=0.0)
        ggf.fit(repeaters["frequency"], repeaters["monetary_value"])
        spend = ggf.conditional_expected_average_profit(
            summary["frequency"], summary["monetary_value"].clip(lower=0.0)
        )
        positive = (summary["frequency"] > 0) & (summary["monetary_value"] > 0)
        population = ggf.params_["p"] * ggf.params_["v"] / (ggf.params_["q"] - 1.0)
        spend = spend.where(positive, population)
    out = pd.DataFrame(
        {
            "customer_id": summary.index.astype(str),
            "predicted_value": np.asarray(purchases * spend, dtype=float),
            "predicted_purchases": np.asarray(purchases, dtype=float),
            "p_active": np.asarray(
                model.conditional_probability_alive(
                    summary["frequency"], summary["recency"], summary["T"]
                ),
                dtype=float,
            ),
        }
    )
    return out
