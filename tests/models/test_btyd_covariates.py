"""BTYD forecasters with profile covariates, on a simulated store whose channel drives
purchasing, dropout and spend and whose gender does nothing: coefficients, forecasts, new
customers by profile, artifacts, the online path and the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.datasets import load_completejourney
from ltvcast.data.schemas import PREDICTION_COLUMNS, CustomerData
from ltvcast.data.synthetic import simulate_store
from ltvcast.exceptions import ConfigError
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.btyd import WEEK_DAYS, BTYDForecaster, ParetoNBDForecaster
from ltvcast.models.covariates import ModifiedBetaGeoCovariateModel
from ltvcast.models.spend_covariates import GammaGammaCovariateModel
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.scoring.online import OnlineScorer
from ltvcast.timeframe import parse_horizon

HORIZON = parse_horizon("90d")
COVARIATES = ("channel", "gender", "age")


@pytest.fixture(scope="module")
def store() -> tuple[CustomerData, pd.Timestamp]:
    simulated = simulate_store(1500, days=500, events=False, random_state=5)
    data = CustomerData(simulated.transactions, None, simulated.profiles)
    return data, pd.Timestamp(simulated.start + pd.Timedelta(days=400))


@pytest.fixture(scope="module")
def fitted(store: tuple[CustomerData, pd.Timestamp]) -> BTYDForecaster:
    data, as_of = store
    return BTYDForecaster(covariates=COVARIATES).fit(data, as_of, HORIZON)


def test_fit_uses_the_covariate_models_and_names_the_coefficients(
    fitted: BTYDForecaster,
) -> None:
    assert isinstance(fitted.bgnbd_, ModifiedBetaGeoCovariateModel)
    assert isinstance(fitted.gamma_gamma_, GammaGammaCovariateModel)
    assert fitted.design_ is not None
    names = fitted.design_.feature_names
    assert "age" in names and "channel=paid_social" in names and "gender=male" in names
    for model in (fitted.bgnbd_, fitted.gamma_gamma_):
        table = model.coefficient_table()
        assert table["std_error"].notna().all()
        assert model.log_likelihood_ > model.null_log_likelihood_
    purchase = fitted.bgnbd_.coefficient_table()
    assert purchase.loc[[f"purchase:{n}" for n in names], "std_error"].lt(1.0).all()


def test_forecasts_are_the_covariate_models_at_each_profile(
    fitted: BTYDForecaster, store: tuple[CustomerData, pd.Timestamp]
) -> None:
    data, as_of = store
    out = fitted.predict(data, as_of)
    assert list(out.columns) == list(PREDICTION_COLUMNS)
    assert np.isfinite(out[list(PREDICTION_COLUMNS[1:])].to_numpy()).all()
    rfm = rfm_summary(data.transactions, as_of, time_unit_days=WEEK_DAYS)
    assert fitted.design_ is not None
    design = fitted.design_.transform(data.profiles, rfm.index)
    rows = (rfm["frequency"], rfm["recency"], rfm["T"])
    t = HORIZON.days / WEEK_DAYS
    expected = fitted.bgnbd_.expected_purchases(
        t, *rows, purchase_covariates=design, dropout_covariates=design
    )
    got = out.set_index("customer_id").loc[rfm.index, "predicted_purchases"]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # The same numbers from a ready RFM summary and the profiles, and from the curve.
    direct = fitted.predict_rfm(rfm, data.profiles)
    np.testing.assert_allclose(direct["predicted_purchases"], expected, rtol=1e-12)
    curve = fitted.predict_curve(data, as_of, [HORIZON]).loc[rfm.index]
    np.testing.assert_allclose(curve[f"purchases_{HORIZON}"], expected, rtol=1e-12)
    np.testing.assert_allclose(curve[f"value_{HORIZON}"], direct["predicted_value"], rtol=1e-12)


def test_unknown_levels_and_missing_profiles_are_encoded_as_in_training(
    fitted: BTYDForecaster, store: tuple[CustomerData, pd.Timestamp]
) -> None:
    """Every channel is frequent, so the pooled level joins the reference: an unseen one
    forecasts as the reference channel; a customer without a profile row as missing."""
    data, as_of = store
    assert fitted.design_ is not None
    reference = fitted.design_.levels_["channel"]["reference"]
    first = data.profiles["customer_id"].iloc[0]
    profiles = data.profiles.set_index("customer_id")
    unseen = profiles.assign(
        channel=np.where(profiles.index == first, "tiktok", profiles["channel"])
    )
    as_reference = profiles.assign(
        channel=np.where(profiles.index == first, reference, profiles["channel"])
    )

    def forecast(table: pd.DataFrame) -> pd.DataFrame:
        changed = CustomerData(data.transactions, None, table.reset_index())
        return fitted.predict(changed, as_of).set_index("customer_id")

    pd.testing.assert_series_equal(forecast(unseen).loc[first], forecast(as_reference).loc[first])
    without = forecast(profiles.drop(index=first))
    missing = profiles.assign(**{c: profiles[c].where(profiles.index != first) for c in COVARIATES})
    pd.testing.assert_series_equal(without.loc[first], forecast(missing).loc[first])
    assert without.loc[first, "predicted_value"] != forecast(profiles).loc[first, "predicted_value"]


def test_explain_keeps_each_profile_and_sums_to_the_forecast(
    fitted: BTYDForecaster, store: tuple[CustomerData, pd.Timestamp]
) -> None:
    data, as_of = store
    drivers = fitted.explain(data, as_of)
    value = fitted.predict(data, as_of).set_index("customer_id")["predicted_value"]
    np.testing.assert_allclose(drivers.sum(axis=1), value.loc[drivers.index], rtol=1e-9, atol=1e-9)
    assert drivers["base_value"].nunique() > 1  # the average buyer at each customer's profile


def test_new_customer_by_profile(
    fitted: BTYDForecaster, store: tuple[CustomerData, pd.Timestamp]
) -> None:
    unknown = fitted.new_customer([HORIZON])
    pd.testing.assert_frame_equal(unknown, fitted.new_customer([HORIZON], profile={}))
    by_channel = {
        channel: fitted.new_customer([HORIZON], profile={"channel": channel, "age": 40})
        for channel in ("organic", "paid_social", "referral")
    }
    values = {c: float(t["value"].iloc[0]) for c, t in by_channel.items()}
    assert len(set(values.values())) == 3 and all(v > 0 for v in values.values())
    plain = BTYDForecaster().fit(*store, HORIZON)
    with pytest.raises(ConfigError, match="no covariates"):
        plain.new_customer([HORIZON], profile={"channel": "organic"})


def test_artifact_round_trip(
    fitted: BTYDForecaster, store: tuple[CustomerData, pd.Timestamp], tmp_path: Path
) -> None:
    data, as_of = store
    save_model(fitted, tmp_path / "model")
    loaded, _ = load_model(tmp_path / "model")
    assert isinstance(loaded, BTYDForecaster) and loaded.covariates == COVARIATES
    pd.testing.assert_frame_equal(loaded.predict(data, as_of), fitted.predict(data, as_of))
    pd.testing.assert_frame_equal(
        loaded.bgnbd_.coefficient_table(), fitted.bgnbd_.coefficient_table()
    )
    assert (tmp_path / "model" / "manifest.json").read_text().count("NaN") == 0


def test_online_scoring_goes_through_predict(
    fitted: BTYDForecaster, store: tuple[CustomerData, pd.Timestamp]
) -> None:
    """No RFM fast path with covariates: the online scorer has the profiles and predict."""
    data, as_of = store
    assert fitted.rfm_scorer is None and BTYDForecaster().rfm_scorer is not None
    scorer = OnlineScorer(fitted)
    scorer.history.learn_data(data.until(as_of))
    batch = fitted.predict(data, as_of).set_index("customer_id")
    some = batch.index[::150]
    online = scorer.rescore(some, as_of).frame.set_index("customer_id")
    pd.testing.assert_frame_equal(online, batch.loc[some])


def test_pareto_nbd_with_covariates(store: tuple[CustomerData, pd.Timestamp]) -> None:
    data, as_of = store
    model = ParetoNBDForecaster(covariates=("channel",)).fit(data, as_of, HORIZON)
    table = model.bgnbd_.coefficient_table()
    assert {"purchase:channel=referral", "dropout:channel=referral"} <= set(table.index)
    assert model.get_params()["covariates"] == ("channel",)


def test_errors_name_the_problem(
    fitted: BTYDForecaster, store: tuple[CustomerData, pd.Timestamp]
) -> None:
    data, as_of = store
    assert fitted.uncertainty_ is None
    with pytest.raises(ConfigError, match="intervals are not available for a model with cova"):
        fitted.value_intervals(data, as_of)
    with pytest.raises(ConfigError, match="'mbgcnbd' has no covariate variant"):
        BTYDForecaster(purchase_model="mbgcnbd", covariates=("channel",)).fit(data, as_of, HORIZON)
    with pytest.raises(ConfigError, match="no profiles were given"):
        BTYDForecaster(covariates=("channel",)).fit(CustomerData(data.transactions), as_of, HORIZON)
    with pytest.raises(ConfigError, match=r"\['colour'\] are not profile columns"):
        BTYDForecaster(covariates=("colour",)).fit(data, as_of, HORIZON)
    with pytest.raises(ConfigError, match="got the string 'channel'"):
        BTYDForecaster(covariates="channel").fit(data, as_of, HORIZON)  # type: ignore[arg-type]


@pytest.mark.realdata
def test_complete_journey_where_hardly_anyone_drops_out(data_dir: Path) -> None:
    """Demographics on every process of MBG/NBD, on a panel where dropout barely shows:
    the purchase coefficients are estimated with errors, the dropout ones stay moderate
    (the prior on the coefficients, and the rows' parameters held within the plain search's
    bounds) and get no error rather than made-up ones; the forecasts are finite."""
    data, _ = load_completejourney(data_dir)
    as_of = pd.Timestamp("2017-06-30 23:59:59")
    model = BTYDForecaster(covariates=("age", "home_ownership")).fit(data, as_of, HORIZON)
    table = model.coefficient_table().loc["purchase"]
    purchase = table[table.index.str.startswith("purchase:")]
    dropout = table[table.index.str.startswith("dropout_")]
    assert purchase["std_error"].between(0.05, 0.2).all()
    assert (dropout["estimate"].abs() < 5).all() and dropout["std_error"].isna().all()
    out = model.predict(data, as_of)
    assert np.isfinite(out[list(PREDICTION_COLUMNS[1:])].to_numpy()).all()
