"""BTYD forecaster on the real CDNOW sample: golden fit, forecasts, leakage, explain, artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import PREDICTION_COLUMNS, CustomerData
from ltvcast.exceptions import ArtifactError, ConfigError, InsufficientDataError
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.bgnbd import ModifiedBetaGeoModel
from ltvcast.models.btyd import DRIVERS, BTYDForecaster
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import parse_as_of, parse_horizon

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "cdnow_btyd.json").read_text())
AS_OF = parse_as_of("1997-09-30", None)
HORIZON = parse_horizon("39w")

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    return CustomerData(cdnow_sample_tx)


@pytest.fixture(scope="module")
def fitted(cdnow: CustomerData) -> BTYDForecaster:
    """The textbook model (Gamma-Gamma on repeat purchase days), as published."""
    return BTYDForecaster(spend_days="repeat", purchase_model="bgnbd").fit(cdnow, AS_OF, HORIZON)


@pytest.fixture(scope="module")
def predictions(fitted: BTYDForecaster, cdnow: CustomerData) -> pd.DataFrame:
    return fitted.predict(cdnow, AS_OF)


def test_reproduces_published_parameters_from_raw_transactions(fitted: BTYDForecaster) -> None:
    tol = GOLDEN["rel_tol"]
    for model, published in (
        (fitted.bgnbd_, GOLDEN["bgnbd"]),
        (fitted.gamma_gamma_, GOLDEN["gamma_gamma"]),
    ):
        for name, value in model.params_.items():
            assert value == pytest.approx(published[name], rel=tol), name
    assert fitted.n_customers_ == 2357


def test_forecast_shape_and_holdout_totals(
    predictions: pd.DataFrame, cdnow: CustomerData, fitted: BTYDForecaster
) -> None:
    assert list(predictions.columns) == list(PREDICTION_COLUMNS)
    assert len(predictions) == 2357 and predictions["customer_id"].is_monotonic_increasing
    values = predictions[["predicted_value", "predicted_purchases", "p_active"]]
    assert np.isfinite(values.to_numpy()).all() and (values.to_numpy() >= 0).all()
    assert predictions["p_active"].max() <= 1.0
    # Markov's inequality: P(N >= 1) <= E[N].
    assert (predictions["p_active"] <= predictions["predicted_purchases"] + 1e-12).all()
    # The 39-week holdout FHL (2005) forecast: BG/NBD + Gamma-Gamma under-forecast it a little
    # (1,653 vs 1,882 purchase days, $59.9k vs $71.0k); a broken model would be far off.
    actual = horizon_labels(
        cdnow.transactions, pd.Index(predictions["customer_id"]), AS_OF, HORIZON.end(AS_OF)
    )
    assert predictions["predicted_purchases"].sum() == pytest.approx(
        actual["purchases"].sum(), rel=0.2
    )
    assert predictions["predicted_value"].sum() == pytest.approx(actual["value"].sum(), rel=0.2)
    # predicted_value is purchases x the Gamma-Gamma expected spend of each customer.
    rfm = rfm_summary(cdnow.transactions, AS_OF).loc[predictions["customer_id"]]
    spend = fitted.gamma_gamma_.expected_spend(rfm["frequency"], rfm["monetary_value"])
    np.testing.assert_allclose(
        predictions["predicted_value"], predictions["predicted_purchases"] * spend
    )


def test_rows_after_as_of_change_nothing(
    cdnow_after_as_of: CustomerData, fitted: BTYDForecaster, predictions: pd.DataFrame
) -> None:
    leaky = cdnow_after_as_of
    refit = BTYDForecaster(spend_days="repeat", purchase_model="bgnbd").fit(leaky, AS_OF, HORIZON)
    assert refit.bgnbd_.params_ == fitted.bgnbd_.params_
    assert refit.gamma_gamma_.params_ == fitted.gamma_gamma_.params_
    pd.testing.assert_frame_equal(refit.predict(leaky, AS_OF), predictions)


def test_customers_without_purchase_get_zero(fitted: BTYDForecaster, cdnow: CustomerData) -> None:
    events = pd.DataFrame(
        {
            "customer_id": ["browser"],
            "timestamp": pd.to_datetime(["1997-09-01"]),
            "event_type": ["view"],
        }
    )
    returns_only = pd.DataFrame(
        {"customer_id": ["refunder"], "timestamp": pd.to_datetime(["1997-09-02"]), "amount": [-9.0]}
    )
    data = CustomerData(
        pd.concat([cdnow.transactions, returns_only], ignore_index=True), events=events
    )
    out = fitted.predict(data, AS_OF).set_index("customer_id")
    assert len(out) == 2359
    assert (out.loc[["browser", "refunder"]].to_numpy() == 0.0).all()


def test_explain_is_additive(
    fitted: BTYDForecaster, cdnow: CustomerData, predictions: pd.DataFrame
) -> None:
    drivers = fitted.explain(cdnow, AS_OF)
    assert list(drivers.columns) == [*DRIVERS, "base_value"]
    assert drivers.index.tolist() == predictions["customer_id"].tolist()
    np.testing.assert_allclose(
        drivers.sum(axis=1), predictions["predicted_value"], rtol=1e-9, atol=1e-9
    )
    assert drivers["base_value"].nunique() == 1
    # The reference customer is the average buyer; a customer equal to it has no drivers.
    rfm = rfm_summary(cdnow.transactions, AS_OF)
    assert drivers["base_value"].iloc[0] == pytest.approx(
        float(fitted._forecast(*(np.array([rfm[c].mean()]) for c in DRIVERS))[0][0])
    )
    # Heavy recent buyers owe their value to frequency more than to T.
    top = predictions.nlargest(20, "predicted_value")["customer_id"]
    assert (drivers.loc[top, "frequency"] > 0).mean() > 0.8


def test_matches_lifetimes_reference(cdnow: CustomerData, predictions: pd.DataFrame) -> None:
    """The textbook model equals the ``lifetimes`` package's run on the same split."""
    pytest.importorskip("lifetimes", reason="lifetimes is a benchmark-only dependency")
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    from lifetimes_reference import lifetimes_predict

    reference = lifetimes_predict(cdnow, AS_OF, HORIZON).set_index("customer_id")
    ours = predictions.set_index("customer_id").loc[reference.index]
    for column in ("predicted_value", "predicted_purchases"):
        np.testing.assert_allclose(ours[column], reference[column], rtol=2e-3)


def test_spend_of_all_purchase_days(
    cdnow: CustomerData, fitted: BTYDForecaster, predictions: pd.DataFrame
) -> None:
    """The default Gamma-Gamma also learns from the first purchase day, returns netted."""
    model = BTYDForecaster(purchase_model="bgnbd").fit(cdnow, AS_OF, HORIZON)
    assert model.bgnbd_.params_ == pytest.approx(fitted.bgnbd_.params_)
    rfm = rfm_summary(cdnow.transactions, AS_OF)
    days = rfm["frequency"] + 1.0
    spend = model.gamma_gamma_.expected_spend(days, rfm["total_value"] / days)
    out = model.predict(cdnow, AS_OF).set_index("customer_id").loc[rfm.index]
    np.testing.assert_allclose(out["predicted_value"], out["predicted_purchases"] * spend)
    # One-time buyers now differ by what they spent; the textbook gives them all one mean.
    once = rfm.index[rfm["frequency"] == 0]
    textbook = predictions.set_index("customer_id").loc[once]
    per_purchase = out.loc[once, "predicted_value"] / out.loc[once, "predicted_purchases"]
    assert np.ptp(textbook["predicted_value"] / textbook["predicted_purchases"]) < 1e-9
    assert np.corrcoef(per_purchase, rfm.loc[once, "total_value"])[0, 1] > 0.99
    with pytest.raises(ConfigError, match="spend_days"):
        BTYDForecaster(spend_days="first").fit(cdnow, AS_OF, HORIZON)


def test_default_purchase_model_is_mbgnbd(cdnow: CustomerData, tmp_path: Path) -> None:
    """MBG/NBD lets one-time buyers drop out: their P(active) falls with time since buying."""
    model = BTYDForecaster().fit(cdnow, AS_OF, HORIZON)
    assert isinstance(model.bgnbd_, ModifiedBetaGeoModel)
    out = model.predict(cdnow, AS_OF).set_index("customer_id")
    rfm = rfm_summary(cdnow.transactions, AS_OF)
    once = rfm[rfm["frequency"] == 0].sort_values("T")
    assert out.loc[once.index[0], "p_active"] > out.loc[once.index[-1], "p_active"]
    save_model(model, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(cdnow, AS_OF), model.predict(cdnow, AS_OF))
    with pytest.raises(ConfigError, match="purchase_model"):
        BTYDForecaster(purchase_model="pareto").fit(cdnow, AS_OF, HORIZON)


def test_save_load_round_trip(
    fitted: BTYDForecaster, cdnow: CustomerData, predictions: pd.DataFrame, tmp_path: Path
) -> None:
    save_model(fitted, tmp_path / "model")
    loaded, manifest = load_model(tmp_path / "model")
    assert manifest["model"] == "btyd" and manifest["state"]["bgnbd"] == fitted.bgnbd_.params_
    assert not [p for p in (tmp_path / "model").iterdir() if p.name != "manifest.json"]
    pd.testing.assert_frame_equal(loaded.predict(cdnow, AS_OF), predictions)


def test_artifact_of_earlier_version_is_refused(fitted: BTYDForecaster, tmp_path: Path) -> None:
    """A model saved before spend_days / purchase_model existed must be retrained."""
    save_model(fitted, tmp_path / "m")
    manifest_path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["params"] = {"penalizer_coef": 0.0}
    del manifest["state"]["spend_days"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="retrain"):
        load_model(tmp_path / "m")


def test_zero_negative_spend_and_one_time_buyers() -> None:
    rng = np.random.default_rng(0)
    n = 300
    ids = np.repeat(np.arange(n).astype(str), 4)
    days = rng.integers(0, 200, ids.size)
    amounts = rng.gamma(2.0, 20.0, ids.size)
    amounts[rng.random(ids.size) < 0.1] = 0.0  # free items
    amounts[rng.random(ids.size) < 0.1] *= -1  # returns
    keep = (rng.random(ids.size) < 0.5) | (np.arange(ids.size) % 4 == 0)  # many one-time buyers
    tx = pd.DataFrame(
        {
            "customer_id": ids[keep],
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(days[keep], unit="D"),
            "amount": amounts[keep],
        }
    )
    data = CustomerData(tx)
    as_of = parse_as_of("2024-07-31", None)
    model = BTYDForecaster().fit(data, as_of, parse_horizon("90d"))
    out = model.predict(data, as_of)
    assert np.isfinite(out[list(PREDICTION_COLUMNS[1:])].to_numpy()).all()
    assert (out["predicted_value"] >= 0).all()


def test_no_repeat_purchase_says_so() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
            ),
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
        }
    )
    with pytest.raises(InsufficientDataError, match="repeat purchase"):
        BTYDForecaster().fit(
            CustomerData(tx), parse_as_of("2024-02-01", None), parse_horizon("30d")
        )
