"""BTYDForecaster with the Pareto/NBD and (M)BG/CNBD-k purchase models, and dates-only logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import PREDICTION_COLUMNS, CustomerData
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.btyd import (
    DRIVERS,
    BetaGeoCNBDForecaster,
    BTYDForecaster,
    ModifiedBetaGeoCNBDForecaster,
    ParetoNBDForecaster,
    log_intertransaction_times,
)
from ltvcast.models.cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel, select_k
from ltvcast.models.pareto_nbd import ParetoNBDModel
from ltvcast.models.registry import create, forecaster_class
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import parse_as_of, parse_horizon

GOLDEN_DIR = Path(__file__).parents[1] / "golden"
PARETO_CDNOW = json.loads((GOLDEN_DIR / "pareto_nbd_cdnow.json").read_text())
AS_OF = parse_as_of("1997-09-30", None)
HORIZON = parse_horizon("39w")
#: Registry name -> (class, purchase model, RFM-level class).
VARIANTS = {
    "pnbd": (ParetoNBDForecaster, "pnbd", ParetoNBDModel),
    "bgcnbd": (BetaGeoCNBDForecaster, "bgcnbd", BetaGeoCNBDModel),
    "mbgcnbd": (ModifiedBetaGeoCNBDForecaster, "mbgcnbd", ModifiedBetaGeoCNBDModel),
}

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    return CustomerData(cdnow_sample_tx)


@pytest.fixture(scope="module", params=list(VARIANTS))
def fitted(request: pytest.FixtureRequest, cdnow: CustomerData) -> BTYDForecaster:
    model = create(request.param).fit(cdnow, AS_OF, HORIZON)
    assert isinstance(model, BTYDForecaster)
    return model


def test_registry_names_and_parameters() -> None:
    for name, (cls, purchase_model, _) in VARIANTS.items():
        assert forecaster_class(name) is cls and cls.name == name
        model = cls(spend_days="repeat")
        assert model.purchase_model == purchase_model
        # Pareto/NBD has a covariate variant (ltvcast.models.covariates); CNBD-k has none.
        covariates = {"covariates": ()} if name == "pnbd" else {}
        assert model.get_params() == {"penalizer_coef": 0.0, "spend_days": "repeat"} | covariates
        assert model.clone().purchase_model == purchase_model
    # The default "btyd" model is unchanged.
    assert BTYDForecaster().get_params()["purchase_model"] == "mbgnbd"


def test_forecasts_are_sane_and_the_rfm_path_equals_predict(
    fitted: BTYDForecaster, cdnow: CustomerData
) -> None:
    out = fitted.predict(cdnow, AS_OF)
    assert list(out.columns) == list(PREDICTION_COLUMNS) and len(out) == 2357
    values = out[["predicted_value", "predicted_purchases", "p_active"]].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and out["p_active"].max() <= 1.0
    assert (out["p_active"] <= out["predicted_purchases"] + 1e-12).all()  # Markov
    # The 39-week holdout (1,882 purchase days): every variant lands within 20%.
    actual = horizon_labels(
        cdnow.transactions, pd.Index(out["customer_id"]), AS_OF, HORIZON.end(AS_OF)
    )
    assert out["predicted_purchases"].sum() == pytest.approx(actual["purchases"].sum(), rel=0.2)
    # Online fast path: the forecasts need only the RFM summary, for CNBD-k too.
    assert fitted.rfm_scorer is fitted
    rfm = rfm_summary(cdnow.transactions, AS_OF)
    by_rfm = fitted.predict_rfm(rfm)
    indexed = out.set_index("customer_id").loc[rfm.index]
    pd.testing.assert_frame_equal(by_rfm, indexed[by_rfm.columns], rtol=1e-12)


def test_purchase_model_equals_the_rfm_level_fit(
    fitted: BTYDForecaster, cdnow: CustomerData
) -> None:
    _, _, model_cls = VARIANTS[fitted.name]
    rfm = rfm_summary(cdnow.transactions, AS_OF)
    rows = rfm["frequency"], rfm["recency"], rfm["T"]
    if issubclass(model_cls, BetaGeoCNBDModel):
        litt = log_intertransaction_times(cdnow.transactions, AS_OF).loc[rfm.index]
        direct, lls = select_k(*rows, litt.to_numpy(), model=model_cls)
        assert fitted.k_log_likelihoods_ == lls and fitted.bgnbd_.k == direct.k  # type: ignore[union-attr]
    else:
        direct = model_cls().fit(*rows)
        assert fitted.k_log_likelihoods_ is None
    assert fitted.bgnbd_.params_ == direct.params_


def test_pareto_nbd_reproduces_published_cdnow_from_raw_transactions(cdnow: CustomerData) -> None:
    """The forecaster's own RFM summary gives the FHL (2005) Pareto/NBD parameters."""
    model = ParetoNBDForecaster(spend_days="repeat").fit(cdnow, AS_OF, HORIZON)
    for name, value in PARETO_CDNOW["params"].items():
        assert model.bgnbd_.params_[name] == pytest.approx(value, rel=PARETO_CDNOW["rel_tol"])


def test_explain_and_artifacts(fitted: BTYDForecaster, cdnow: CustomerData, tmp_path: Path) -> None:
    predictions = fitted.predict(cdnow, AS_OF)
    drivers = fitted.explain(cdnow, AS_OF)
    assert list(drivers.columns) == [*DRIVERS, "base_value"]
    np.testing.assert_allclose(
        drivers.sum(axis=1), predictions["predicted_value"], rtol=1e-9, atol=1e-9
    )
    save_model(fitted, tmp_path / "m")
    loaded, manifest = load_model(tmp_path / "m")
    assert manifest["model"] == fitted.name and type(loaded) is type(fitted)
    assert manifest["state"]["bgnbd"] == fitted.bgnbd_.params_
    assert isinstance(loaded, BTYDForecaster)
    assert loaded.k_log_likelihoods_ == fitted.k_log_likelihoods_
    pd.testing.assert_frame_equal(loaded.predict(cdnow, AS_OF), predictions)


def test_data_after_as_of_changes_nothing(cdnow_after_as_of: CustomerData) -> None:
    """The inter-purchase times of CNBD-k are cut at as_of like the RFM summary."""
    clean = CustomerData(cdnow_after_as_of.until(AS_OF).transactions)
    leaky = ModifiedBetaGeoCNBDForecaster().fit(cdnow_after_as_of, AS_OF, HORIZON)
    reference = ModifiedBetaGeoCNBDForecaster().fit(clean, AS_OF, HORIZON)
    assert leaky.bgnbd_.params_ == reference.bgnbd_.params_
    assert leaky.k_log_likelihoods_ == reference.k_log_likelihoods_
    pd.testing.assert_frame_equal(
        leaky.predict(cdnow_after_as_of, AS_OF), reference.predict(clean, AS_OF)
    )


def test_unknown_purchase_model_is_refused(cdnow: CustomerData) -> None:
    from ltvcast.exceptions import ConfigError

    with pytest.raises(ConfigError, match="pnbd"):
        BTYDForecaster(purchase_model="cnbd").fit(cdnow, AS_OF, HORIZON)


# ---------------------------------------------------------------- grocery, dates only
GROCERY_AS_OF = parse_as_of("2006-12-31", None)
GROCERY_HORIZON = parse_horizon("52w")
#: Per-customer MAE of the 2007 purchase days through BTYDForecaster (amount = 1 on every
#: row), as measured when these models were added; guards against regressions.
GROCERY_MAE = {"btyd": 1.5130, "pnbd": 1.5079, "bgcnbd": 1.4665, "mbgcnbd": 1.3998}


@pytest.fixture(scope="module")
def grocery(grocery_elog: pd.DataFrame) -> CustomerData:
    """The grocery log with amount = 1 on every row (it has dates only)."""
    return CustomerData(
        pd.DataFrame(
            {"customer_id": grocery_elog["cust"], "timestamp": grocery_elog["date"], "amount": 1.0}
        )
    )


def test_litt_is_btydplus_statistic(grocery: CustomerData, grocery_cbs: pd.DataFrame) -> None:
    litt = log_intertransaction_times(grocery.transactions, GROCERY_AS_OF)
    rfm = rfm_summary(grocery.transactions, GROCERY_AS_OF)
    assert litt.index.equals(rfm.index)
    np.testing.assert_allclose(litt.to_numpy(), grocery_cbs.loc[litt.index, "litt"], atol=1e-12)
    np.testing.assert_allclose(rfm["T"], grocery_cbs.loc[rfm.index, "T_cal"])
    assert (litt[rfm["frequency"] == 0] == 0).all()


@pytest.mark.parametrize("name", list(GROCERY_MAE))
def test_dates_only_grocery_log(name: str, grocery: CustomerData) -> None:
    """Every amount 1: Gamma-Gamma falls back to the constant spend instead of failing, so
    ``predicted_value`` is ``predicted_purchases``; the holdout MAE is the one measured."""
    model = create(name).fit(grocery, GROCERY_AS_OF, GROCERY_HORIZON)
    assert isinstance(model, BTYDForecaster)
    assert model.gamma_gamma_.degenerate_ and model.gamma_gamma_.population_mean == 1.0
    out = model.predict(grocery, GROCERY_AS_OF).set_index("customer_id")
    np.testing.assert_allclose(out["predicted_value"], out["predicted_purchases"])
    actual = horizon_labels(
        grocery.transactions, out.index, GROCERY_AS_OF, GROCERY_HORIZON.end(GROCERY_AS_OF)
    )
    mae = float(np.abs(out["predicted_purchases"] - actual["purchases"]).mean())
    assert mae == pytest.approx(GROCERY_MAE[name], abs=1e-3)
    if name in ("bgcnbd", "mbgcnbd"):
        assert model.bgnbd_.k == 2  # type: ignore[union-attr]
