"""Parametric-bootstrap intervals: covariance vs lifetimes, guards, draws, the vectorised
quantiles against a direct computation; BTYDForecaster.value_intervals on CDNOW."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.datasets import load_cdnow
from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ArtifactError, ConfigError
from ltvcast.models import intervals
from ltvcast.models.bgnbd import BetaGeoModel, ModifiedBetaGeoModel
from ltvcast.models.btyd import PURCHASE_MODELS, BTYDForecaster
from ltvcast.models.btyd_cal import CalibratedBTYDForecaster
from ltvcast.models.cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel
from ltvcast.models.gamma_gamma import GammaGammaModel
from ltvcast.models.intervals import (
    ParameterCovariance,
    ParameterUncertainty,
    observed_covariance,
    purchase_covariance,
    quantile_columns,
    spend_covariance,
    value_intervals,
    value_quantiles,
)
from ltvcast.models.pareto_nbd import ParetoNBDModel
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import parse_as_of, parse_horizon

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "cdnow_btyd.json").read_text())
AS_OF = parse_as_of("1997-09-30", None)
HORIZON = parse_horizon("39w")


@pytest.fixture(scope="module")
def summary(data_dir: Path) -> pd.DataFrame:
    """CDNOW sample's published RFM summary (x, t_x, T in weeks, zbar)."""
    return pd.read_csv(data_dir / "cdnow" / "cdnow_customers_summary_with_transactions.csv")


@pytest.fixture(scope="module")
def rfm() -> dict[str, np.ndarray]:
    """400 customers simulated from the BG/NBD at the CDNOW parameters, on whole days (in
    weeks), with a spend per purchase day."""
    rng = np.random.default_rng(3)
    n = 400
    r, alpha, a, b = (GOLDEN["bgnbd"][k] for k in BetaGeoModel.PARAMS)
    rate, dropout = rng.gamma(r, 1.0 / alpha, n), rng.beta(a, b, n)
    T = rng.integers(7, 365, n) / 7.0
    x, tx = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = rng.exponential(1.0 / rate[i])
        while t <= T[i]:
            x[i], tx[i] = x[i] + 1, np.floor(t * 7.0) / 7.0
            if rng.random() < dropout[i]:
                break
            t += rng.exponential(1.0 / rate[i])
    m = np.round(rng.gamma(4.0, 8.0, n), 2)
    return {"x": x, "tx": tx, "T": T, "m": m}


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "gamma_gamma"])
def test_standard_errors_match_lifetimes(summary: pd.DataFrame, name: str) -> None:
    """lifetimes' ``summary['se(coef)']`` inverts its autograd Hessian in log-parameters."""
    lifetimes = pytest.importorskip("lifetimes", reason="lifetimes is a benchmark-only dependency")
    x, tx, T, m = (summary[c].to_numpy() for c in ("x", "t_x", "T", "zbar"))
    if name == "gamma_gamma":
        spend = GammaGammaModel().fit(x, m)
        ours = spend_covariance(spend, x, m)
        assert ours is not None
        theirs = lifetimes.GammaGammaFitter().fit(x[x > 0], m[x > 0])
        params = spend.params_
    else:
        cls, fitter = {
            "bgnbd": (BetaGeoModel, lifetimes.BetaGeoFitter),
            "mbgnbd": (ModifiedBetaGeoModel, lifetimes.ModifiedBetaGeoFitter),
        }[name]
        model = cls().fit(x, tx, T)
        ours = purchase_covariance(model, x, tx, T)
        theirs = fitter().fit(x, tx, T)
        params = model.params_
    assert ours.note == "observed information"
    se = ours.standard_errors(params)
    for param, reference in theirs.summary["se(coef)"].items():
        assert se[param] == pytest.approx(reference, rel=2e-3), param


@pytest.mark.realdata
def test_cnbd_at_k_1_is_bgnbd_and_pareto_is_stable(summary: pd.DataFrame) -> None:
    """BG/CNBD-1 is BG/NBD; Pareto/NBD (no lifetimes reference) gives a positive-definite
    covariance that a halved difference step leaves unchanged."""
    x, tx, T = (summary[c].to_numpy() for c in ("x", "t_x", "T"))
    bg = purchase_covariance(BetaGeoModel().set_params(GOLDEN["bgnbd"]), x, tx, T)
    cnbd = purchase_covariance(BetaGeoCNBDModel(1).set_params(GOLDEN["bgnbd"]), x, tx, T)
    np.testing.assert_allclose(cnbd.covariance, bg.covariance, rtol=1e-8)
    pareto = ParetoNBDModel().fit(x, tx, T)
    cov = purchase_covariance(pareto, x, tx, T).covariance
    assert np.all(np.linalg.eigvalsh(cov) > 0)

    def log_likelihood(theta: np.ndarray) -> float:
        params = dict(zip(ParetoNBDModel.PARAMS, np.exp(theta), strict=True))
        return ParetoNBDModel().set_params(params).log_likelihood(x, tx, T)

    theta = np.log(list(pareto.params_.values()))
    halved, _ = observed_covariance(log_likelihood, theta, step=intervals.HESSIAN_STEP / 2)
    np.testing.assert_allclose(halved, cov, rtol=1e-3)


def test_observed_covariance_of_a_gaussian_and_of_a_flat_direction() -> None:
    """A quadratic log-likelihood has covariance exactly its inverse curvature; a direction
    it does not depend on is held at the estimate."""
    precision = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    centre = np.array([0.3, -1.0, 2.0])

    def gaussian(theta: np.ndarray) -> float:
        d = theta - centre
        return float(-0.5 * d @ precision @ d)

    cov, note = observed_covariance(gaussian, centre)
    np.testing.assert_allclose(cov, np.linalg.inv(precision), rtol=1e-6)
    assert note == "observed information"

    flat, note = observed_covariance(lambda th: gaussian(np.r_[th[:2], centre[2]]), centre)
    assert "1 of 3 directions" in note and "held" in note
    np.testing.assert_allclose(flat[2], 0.0, atol=1e-12)
    np.testing.assert_allclose(flat[:2, :2], np.linalg.inv(precision[:2, :2]), rtol=1e-6)

    none, note = observed_covariance(lambda th: float(np.sum(th**2)), centre)  # a minimum
    assert np.all(none == 0.0) and "3 of 3" in note


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_no_dropout_fit_holds_its_flat_ridge(cls: type[BetaGeoModel]) -> None:
    """Poisson buyers who never drop out: the fit ends in the no-dropout limit (``a`` or
    ``s -> 0``), on a ridge where the likelihood is flat; its directions are held, those of
    the purchase rate (``r, alpha``) are not."""
    rng = np.random.default_rng(1)
    n = 3000
    T = rng.uniform(20, 52, n)
    x = rng.poisson(rng.gamma(2.0, 0.25, n) * T).astype(float)
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1.0), 1.0), 0.0)
    model = cls().fit(x, tx, T)
    assert list(model.params_.values())[2] < 1e-2
    cov = purchase_covariance(model, x, tx, T)
    assert "held at the estimate" in cov.note
    sd = np.sqrt(np.diag(cov.covariance))
    assert np.all(sd < 0.1), sd  # no draw wanders along the ridge
    assert sd[0] > 0.01 and sd[1] > 0.01


def test_draws_centre_on_the_estimate() -> None:
    """Log draws average the log estimate and reproduce the covariance; parameters average
    the estimate within the lognormal bias ``exp(sd^2 / 2)``."""
    params = dict(GOLDEN["bgnbd"])
    sd = np.array([0.05, 0.09, 0.2, 0.3])
    corr = np.full((4, 4), 0.3) + 0.7 * np.eye(4)
    cov = ParameterCovariance(BetaGeoModel.PARAMS, corr * np.outer(sd, sd), "test")
    n = 20_000
    draws = cov.draw(params, n, np.random.default_rng(0))
    estimate = np.array([params[name] for name in cov.names])
    tolerance = 4 * sd / np.sqrt(n)  # 4 standard errors of a mean
    assert np.all(np.abs(np.log(draws).mean(axis=0) - np.log(estimate)) < tolerance)
    np.testing.assert_allclose(np.cov(np.log(draws).T), cov.covariance, rtol=0.05, atol=1e-4)
    lognormal_mean = estimate * np.exp(sd**2 / 2)
    assert np.all(np.abs(draws.mean(axis=0) / lognormal_mean - 1.0) < 1.1 * tolerance)
    again = cov.draw(params, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(again, draws[:5])


def test_state_round_trip_through_json() -> None:
    cov = ParameterCovariance(("p", "q", "v"), np.diag([0.1, 0.2, 0.3]), "observed information")
    both = ParameterUncertainty(cov, None)
    back = ParameterUncertainty.from_state(json.loads(json.dumps(both.to_state())))
    assert back.spend is None and back.purchases.names == cov.names
    np.testing.assert_array_equal(back.purchases.covariance, cov.covariance)
    bad = cov.to_state() | {"covariance": [[1.0, 2.0], [0.0, 1.0]]}
    with pytest.raises(ValueError, match="square"):
        ParameterCovariance.from_state(bad)
    with pytest.raises(ValueError, match="symmetric"):
        ParameterCovariance.from_state(bad | {"names": ["a", "b"]})


@pytest.mark.parametrize(
    "model",
    [
        BetaGeoModel().set_params(GOLDEN["bgnbd"]),
        ModifiedBetaGeoModel().set_params({"r": 0.52, "alpha": 6.2, "a": 0.89, "b": 1.61}),
        ParetoNBDModel().set_params({"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}),
        ModifiedBetaGeoCNBDModel(2).set_params({"r": 0.9, "alpha": 5.0, "a": 0.9, "b": 1.6}),
    ],
    ids=lambda m: type(m).__name__,
)
def test_quantiles_equal_a_direct_computation(
    model: BetaGeoModel, rfm: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Merged rows, blocks (forced small here), the memoryless shortcut and the sorted
    interpolation give numpy's quantiles of each draw's value, customer by customer."""
    monkeypatch.setattr(intervals, "BLOCK_VALUES", 30 * 23)  # blocks of 23 pairs
    spend = GammaGammaModel().set_params(GOLDEN["gamma_gamma"])
    rng = np.random.default_rng(5)
    purchase_models = [
        copy.copy(model).set_params(
            {k: v * np.exp(0.1 * rng.standard_normal()) for k, v in model.params_.items()}
        )
        for _ in range(30)
    ]
    spend_models = [
        GammaGammaModel().set_params({k: v * (1.0 + 0.05 * d) for k, v in spend.params_.items()})
        for d in range(30)
    ]
    x, tx, T, m = rfm["x"], rfm["tx"], rfm["T"], rfm["m"]
    # Duplicate customers so merged rows are shared.
    x, tx, T, m = (np.r_[a, a[:50]] for a in (x, tx, T, m))
    got = value_quantiles(purchase_models, spend_models, 13.0, x, tx, T, x + 1, m, [0.1, 0.5, 0.9])
    direct = np.array(
        [
            p.expected_purchases(13.0, x, tx, T) * s.expected_spend(x + 1, m)
            for p, s in zip(purchase_models, spend_models, strict=True)
        ]
    )
    np.testing.assert_allclose(got, np.quantile(direct, [0.1, 0.5, 0.9], axis=0).T, rtol=1e-9)


def test_value_intervals_seeded_and_degenerate_spend(rfm: dict[str, np.ndarray]) -> None:
    x, tx, T, m = rfm["x"], rfm["tx"], rfm["T"], rfm["m"]
    purchases = BetaGeoModel().fit(x, tx, T)
    spend = GammaGammaModel().fit(x + 1, m)
    both = ParameterUncertainty(
        purchase_covariance(purchases, x, tx, T), spend_covariance(spend, x + 1, m)
    )
    args = (purchases, spend, both, 13.0, x, tx, T, x + 1, m)
    first = value_intervals(*args, n_draws=50, random_state=7)
    np.testing.assert_array_equal(first, value_intervals(*args, n_draws=50, random_state=7))
    assert not np.array_equal(first, value_intervals(*args, n_draws=50, random_state=8))
    assert first.shape == (x.size, 2) and np.all(first[:, 0] <= first[:, 1])
    # A constant spend has nothing to draw: the value quantiles are the purchases' times it.
    constant = GammaGammaModel().fit(x + 1, np.full(x.size, 5.0))
    assert constant.degenerate_ and spend_covariance(constant, x + 1, m) is None
    flat = value_intervals(
        purchases, constant, ParameterUncertainty(both.purchases, None), 13.0, x, tx, T, x + 1, m
    )
    counts = value_intervals(
        purchases,
        GammaGammaModel().set_params({"mean_spend": 1.0}),
        ParameterUncertainty(both.purchases, None),
        13.0,
        *(x, tx, T, x + 1, m),
    )
    np.testing.assert_allclose(flat, 5.0 * counts)


def test_gamma_gamma_draws_keep_a_finite_mean(rfm: dict[str, np.ndarray]) -> None:
    """Sets with ``q <= 1`` (no finite mean spend) are redrawn."""
    x, tx, T, m = rfm["x"], rfm["tx"], rfm["T"], rfm["m"]
    purchases = BetaGeoModel().set_params(GOLDEN["bgnbd"])
    held = ParameterCovariance(BetaGeoModel.PARAMS, np.zeros((4, 4)), "held")
    spend = GammaGammaModel().set_params({"p": 6.0, "q": 1.05, "v": 15.0})
    wide = ParameterCovariance(("p", "q", "v"), np.diag([0.0, 0.5**2, 0.0]), "wide")
    out = value_intervals(
        purchases, spend, ParameterUncertainty(held, wide), 13.0, x, tx, T, x, m, n_draws=100
    )
    assert np.all(np.isfinite(out)) and np.all(out >= 0)


def test_bad_arguments_and_column_names(rfm: dict[str, np.ndarray]) -> None:
    assert quantile_columns([0.1, 0.9]) == ["value_p10", "value_p90"]
    assert quantile_columns([0.025, 0.5]) == ["value_p2.5", "value_p50"]
    purchases = BetaGeoModel().set_params(GOLDEN["bgnbd"])
    spend = GammaGammaModel().set_params(GOLDEN["gamma_gamma"])
    held = ParameterUncertainty(
        ParameterCovariance(BetaGeoModel.PARAMS, np.zeros((4, 4)), "held"), None
    )
    args = (purchases, spend, held, 13.0, *(rfm[k] for k in ("x", "tx", "T", "x", "m")))
    for quantiles in ([0.0, 0.9], [1.5], []):
        with pytest.raises(ConfigError, match="quantiles"):
            value_intervals(*args, quantiles=quantiles)
    with pytest.raises(ConfigError, match="n_draws"):
        value_intervals(*args, n_draws=1)
    empty = value_intervals(purchases, spend, held, 13.0, [], [], [], [], [])
    assert empty.shape == (0, 2)


# --------------------------------------------------------------- BTYDForecaster.value_intervals


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    return CustomerData(cdnow_sample_tx)


@pytest.fixture(scope="module")
def forecaster(cdnow: CustomerData) -> BTYDForecaster:
    return BTYDForecaster().fit(cdnow, AS_OF, HORIZON)


@pytest.mark.realdata
def test_intervals_bracket_the_forecast(forecaster: BTYDForecaster, cdnow: CustomerData) -> None:
    """Per customer the point forecast lies between p10 and p90, and the draws centre on the
    fitted parameters."""
    point = forecaster.predict(cdnow, AS_OF).set_index("customer_id")["predicted_value"]
    bounds = forecaster.value_intervals(cdnow, AS_OF)
    assert list(bounds.columns) == ["value_p10", "value_p90"]
    assert bounds.index.equals(point.index) and bounds.index.name == "customer_id"
    assert (bounds["value_p10"] <= bounds["value_p90"]).all()
    inside = (bounds["value_p10"] <= point) & (point <= bounds["value_p90"])
    assert inside.mean() > 0.95, inside.mean()
    # A typical customer's band is a few percent of the value on 2,357 customers.
    width = (bounds["value_p90"] - bounds["value_p10"]) / point
    assert 0.01 < width.median() < 0.5
    uncertainty = forecaster.uncertainty_
    assert uncertainty is not None and uncertainty.spend is not None
    for model, cov in (
        (forecaster.bgnbd_, uncertainty.purchases),
        (forecaster.gamma_gamma_, uncertainty.spend),
    ):
        draws = np.log(cov.draw(model.params_, 4000, np.random.default_rng(1)))
        sd = np.sqrt(np.diag(cov.covariance))
        estimate = np.log([model.params_[name] for name in cov.names])
        assert np.all(np.abs(draws.mean(axis=0) - estimate) < 4 * sd / np.sqrt(4000))


@pytest.mark.realdata
def test_intervals_shrink_with_ten_times_the_data(data_dir: Path) -> None:
    """Fitted on all of CDNOW instead of its 1/10 sample, the sample's customers get bands
    about sqrt(10) times narrower."""
    sample, _ = load_cdnow(data_dir, "sample")
    master, _ = load_cdnow(data_dir, "master")
    widths = []
    for data in (sample, master):
        model = BTYDForecaster().fit(data, AS_OF, HORIZON)
        point = model.predict(sample, AS_OF).set_index("customer_id")["predicted_value"]
        bounds = model.value_intervals(sample, AS_OF, n_draws=100)
        widths.append(((bounds["value_p90"] - bounds["value_p10"]) / point).median())
    assert 2.0 < widths[0] / widths[1] < 5.0, widths


@pytest.mark.realdata
@pytest.mark.parametrize("purchase_model", list(PURCHASE_MODELS))
def test_every_purchase_model(cdnow: CustomerData, purchase_model: str) -> None:
    """Every purchase model gives intervals around its forecast; (M)BG/CNBD-k keeps its k."""
    model = BTYDForecaster(purchase_model=purchase_model).fit(cdnow, AS_OF, HORIZON)
    k = getattr(model.bgnbd_, "k", None)
    bounds = model.value_intervals(cdnow, AS_OF, quantiles=(0.05, 0.5, 0.95), n_draws=60)
    assert list(bounds.columns) == ["value_p5", "value_p50", "value_p95"]
    assert np.all(np.isfinite(bounds.to_numpy())) and np.all(np.diff(bounds.to_numpy()) >= 0)
    point = model.predict(cdnow, AS_OF).set_index("customer_id")["predicted_value"]
    inside = (bounds["value_p5"] <= point) & (point <= bounds["value_p95"])
    assert inside.mean() > 0.95
    assert getattr(model.bgnbd_, "k", None) == k
    assert model.uncertainty_ is not None and model.uncertainty_.purchases.names == tuple(
        model.bgnbd_.params_
    )


@pytest.mark.realdata
def test_customers_without_purchase_and_rows_after_as_of(
    forecaster: BTYDForecaster, cdnow: CustomerData, cdnow_after_as_of: CustomerData
) -> None:
    """Intervals see nothing after ``as_of``; a customer seen only through events gets 0."""
    events = pd.DataFrame(
        {
            "customer_id": ["browser"],
            "timestamp": [pd.Timestamp("1997-09-01")],
            "event_type": ["view"],
        }
    )
    with_browser = CustomerData(cdnow.transactions, events=events)
    bounds = forecaster.value_intervals(with_browser, AS_OF, n_draws=50)
    assert (bounds.loc["browser"] == 0.0).all() and len(bounds) == 2358
    pd.testing.assert_frame_equal(
        forecaster.value_intervals(cdnow_after_as_of, AS_OF, n_draws=50),
        forecaster.value_intervals(cdnow, AS_OF, n_draws=50),
    )


@pytest.mark.realdata
def test_artifacts_keep_the_covariance_and_old_ones_still_load(
    forecaster: BTYDForecaster, cdnow: CustomerData, tmp_path: Path
) -> None:
    save_model(forecaster, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert isinstance(loaded, BTYDForecaster)
    pd.testing.assert_frame_equal(
        loaded.value_intervals(cdnow, AS_OF, n_draws=50),
        forecaster.value_intervals(cdnow, AS_OF, n_draws=50),
    )
    # A model saved before intervals existed loads and predicts; only intervals refuse.
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["state"]["uncertainty"]
    path.write_text(json.dumps(manifest))
    old, _ = load_model(tmp_path / "m")
    assert isinstance(old, BTYDForecaster)
    pd.testing.assert_frame_equal(old.predict(cdnow, AS_OF), forecaster.predict(cdnow, AS_OF))
    with pytest.raises(ArtifactError, match="retrain"):
        old.value_intervals(cdnow, AS_OF)


@pytest.mark.realdata
def test_calibrated_btyd_scales_by_its_factor(cdnow: CustomerData) -> None:
    """btyd_cal's value is BTYD's times a per-customer factor: so are its intervals."""
    model = CalibratedBTYDForecaster().fit(cdnow, AS_OF, HORIZON)
    plain = BTYDForecaster().fit(cdnow, AS_OF, HORIZON)
    ratio = (
        model.predict(cdnow, AS_OF).set_index("customer_id")["predicted_value"]
        / plain.predict(cdnow, AS_OF).set_index("customer_id")["predicted_value"]
    )
    scaled = plain.value_intervals(cdnow, AS_OF, n_draws=50).mul(ratio, axis=0)
    pd.testing.assert_frame_equal(model.value_intervals(cdnow, AS_OF, n_draws=50), scaled)


@pytest.mark.realdata
def test_dates_only_log_with_regular_buyers(grocery_elog: pd.DataFrame) -> None:
    """BTYDplus' grocery log (every amount 1): MBG/CNBD-k keeps its k = 2 and a constant
    spend has nothing to draw, so the bands are those of the expected purchase days."""
    grocery = CustomerData(
        pd.DataFrame(
            {"customer_id": grocery_elog["cust"], "timestamp": grocery_elog["date"], "amount": 1.0}
        )
    )
    as_of, horizon = parse_as_of("2006-12-31", None), parse_horizon("52w")
    model = BTYDForecaster(purchase_model="mbgcnbd").fit(grocery, as_of, horizon)
    assert model.uncertainty_ is not None and model.uncertainty_.spend is None
    assert model.bgnbd_.k == 2  # type: ignore[union-attr]
    bounds = model.value_intervals(grocery, as_of, n_draws=60)
    point = model.predict(grocery, as_of).set_index("customer_id")["predicted_purchases"]
    inside = (bounds["value_p10"] <= point) & (point <= bounds["value_p90"])
    assert inside.mean() > 0.95 and model.bgnbd_.k == 2  # type: ignore[union-attr]
