"""Recalibrated BTYD: the offset Poisson fit, the inner window, leakage, explain, artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.datasets import load_online_retail
from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.btyd import DRIVERS, WEEK_DAYS, BTYDForecaster
from ltvcast.models.btyd_cal import (
    COEFFICIENTS,
    CalibratedBTYDForecaster,
    calibration_design,
    fit_offset_poisson,
)
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import parse_as_of, parse_horizon

AS_OF = parse_as_of("1997-09-30", None)
HORIZON = parse_horizon("13w")


def test_offset_poisson_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(7)
    n = 40_000
    design = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(0, 2, size=n)])
    offset = rng.gamma(2.0, 50.0, size=n)  # currency units: the fit must not care
    truth = np.array([-0.3, 0.25, -0.4])
    target = rng.poisson(offset * np.exp(design @ truth) / 50.0) * 50.0
    coef = fit_offset_poisson(design, offset, target)
    np.testing.assert_allclose(coef, truth, atol=0.03)
    # Score equations hold at the optimum without a penalty.
    mu = offset * np.exp(design @ coef)
    np.testing.assert_allclose(design.T @ (mu - target) / target.sum(), 0.0, atol=1e-6)
    # The ridge weighs like a number of customers: 40,000 of them halve the slopes or more,
    # 10 barely move them.
    shrunk = fit_offset_poisson(design, offset, target, ridge=40_000.0)
    assert np.all(np.abs(shrunk[1:]) < 0.6 * np.abs(coef[1:]))
    np.testing.assert_allclose(
        fit_offset_poisson(design, offset, target, ridge=10.0), coef, atol=5e-3
    )


def test_offset_poisson_rejects_bad_inputs() -> None:
    design = np.ones((2, 1))
    with pytest.raises(ConfigError, match="positive offsets"):
        fit_offset_poisson(design, np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    with pytest.raises(ConfigError, match="non-negative targets"):
        fit_offset_poisson(design, np.array([1.0, 1.0]), np.array([1.0, -1.0]))


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    return CustomerData(cdnow_sample_tx)


@pytest.fixture(scope="module")
def fitted(cdnow: CustomerData) -> CalibratedBTYDForecaster:
    return CalibratedBTYDForecaster().fit(cdnow, AS_OF, HORIZON)


@pytest.fixture(scope="module")
def predictions(fitted: CalibratedBTYDForecaster, cdnow: CustomerData) -> pd.DataFrame:
    return fitted.predict(cdnow, AS_OF)


@pytest.mark.realdata
def test_factor_keeps_the_inner_windows_btyd_total(
    fitted: CalibratedBTYDForecaster, cdnow: CustomerData
) -> None:
    cutoff, window = fitted.calibration_window_ or (None, None)
    assert cutoff == AS_OF - pd.Timedelta(weeks=13) and window == HORIZON
    assert "calibrated on 2,357 customers over 13 weeks after 1997-07-01" in (
        fitted.calibration_note_
    )
    inner = BTYDForecaster().fit(cdnow, cutoff, window)
    rfm = rfm_summary(cdnow.transactions, cutoff, time_unit_days=WEEK_DAYS)
    plain = inner.predict_rfm(rfm)["predicted_value"].to_numpy()
    inputs = inner.inputs(rfm)
    factor = np.exp(
        calibration_design(inputs["frequency"], inputs["monetary_value"]) @ fitted.coef_
    )
    assert float(plain @ factor) == pytest.approx(float(plain.sum()), rel=1e-9)
    assert list(fitted.calibration_) == list(COEFFICIENTS)
    assert np.all(np.isfinite(fitted.coef_)) and np.any(fitted.coef_[1:] != 0.0)


@pytest.mark.realdata
def test_forecast_is_btyd_times_the_factor(
    fitted: CalibratedBTYDForecaster, cdnow: CustomerData, predictions: pd.DataFrame
) -> None:
    plain = BTYDForecaster().fit(cdnow, AS_OF, HORIZON).predict(cdnow, AS_OF)
    pd.testing.assert_frame_equal(
        predictions[["customer_id", "predicted_purchases", "p_active"]],
        plain[["customer_id", "predicted_purchases", "p_active"]],
    )
    rfm = rfm_summary(cdnow.transactions, AS_OF, time_unit_days=WEEK_DAYS)
    inputs = fitted.inputs(rfm)
    factor = np.exp(
        calibration_design(inputs["frequency"], inputs["monetary_value"]) @ fitted.coef_
    )
    np.testing.assert_allclose(
        predictions["predicted_value"], plain["predicted_value"] * factor, rtol=1e-12
    )
    # The online scorer's fast path (predict_rfm) gives the same numbers.
    fast = fitted.predict_rfm(rfm)["predicted_value"]
    np.testing.assert_allclose(fast.to_numpy(), predictions["predicted_value"], rtol=1e-12)


@pytest.mark.realdata
def test_explain_stays_additive(
    fitted: CalibratedBTYDForecaster, cdnow: CustomerData, predictions: pd.DataFrame
) -> None:
    drivers = fitted.explain(cdnow, AS_OF)
    assert list(drivers.columns) == [*DRIVERS, "base_value"]
    np.testing.assert_allclose(
        drivers.sum(axis=1), predictions["predicted_value"], rtol=1e-9, atol=1e-9
    )


@pytest.mark.realdata
def test_save_load_round_trip(
    fitted: CalibratedBTYDForecaster, cdnow: CustomerData, predictions: pd.DataFrame, tmp_path: Path
) -> None:
    save_model(fitted, tmp_path / "model")
    loaded, manifest = load_model(tmp_path / "model")
    assert manifest["model"] == "btyd_cal"
    assert manifest["state"]["calibration"] == fitted.calibration_
    assert isinstance(loaded, CalibratedBTYDForecaster)
    assert loaded.calibration_window_ == fitted.calibration_window_
    assert loaded.calibration_note_ == fitted.calibration_note_
    pd.testing.assert_frame_equal(loaded.predict(cdnow, AS_OF), predictions)


def test_history_without_inner_window_is_plain_btyd() -> None:
    rng = np.random.default_rng(0)
    n = 400
    tx = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 60, size=n).astype(str),
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 20, n), "D"),
            "amount": rng.gamma(2.0, 20.0, size=n),
        }
    )
    data = CustomerData(tx)
    as_of = pd.Timestamp("2024-01-21")
    model = CalibratedBTYDForecaster().fit(data, as_of, HORIZON)
    assert model.calibration_window_ is None
    assert "leaves no inner window" in model.calibration_note_
    assert not model.coef_.any()
    plain = BTYDForecaster().fit(data, as_of, HORIZON).predict(data, as_of)
    pd.testing.assert_frame_equal(model.predict(data, as_of), plain)


def test_negative_penalty_is_refused(cdnow_sample_tx: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="calibration_ridge must be >= 0; got -1"):
        CalibratedBTYDForecaster(calibration_ridge=-1.0).fit(
            CustomerData(cdnow_sample_tx), AS_OF, HORIZON
        )


@pytest.mark.realdata
def test_online_retail_heavy_buyers_are_raised(data_dir: Path) -> None:
    """The case the model exists for: on Online Retail's inner window (2011-03-14 ..
    2011-06-12) BTYD under-forecasts frequent buyers, so the factor rises with frequency
    and the window's error falls."""
    data, _ = load_online_retail(data_dir)
    as_of = pd.Timestamp("2011-06-12 12:50")
    model = CalibratedBTYDForecaster().fit(data, as_of, parse_horizon("90d"))
    assert model.calibration_["log1p_frequency"] > 0.05
    # Out of time: forecasts as of the fit, scored on the next 90 days.
    customers = data.until(as_of).customers()
    actual = horizon_labels(data.transactions, customers, as_of, as_of + pd.Timedelta(days=90))
    ours = model.predict(data, as_of)["predicted_value"].to_numpy()
    plain = BTYDForecaster().fit(data, as_of, parse_horizon("90d")).predict(data, as_of)
    mae = np.abs(actual["value"].to_numpy() - ours).mean()
    mae_plain = np.abs(actual["value"].to_numpy() - plain["predicted_value"].to_numpy()).mean()
    assert mae < 0.97 * mae_plain
