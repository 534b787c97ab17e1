"""Pareto/NBD: published CDNOW and grocery fits, lifetimes, quadrature and Monte-Carlo checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import gammaln, hyp2f1

from ltvcast.models.pareto_nbd import (
    ParetoNBDModel,
    _log_hyp2f1_series,
    _log_tail_quadrature,
    log_tail_integral,
)

GOLDEN_DIR = Path(__file__).parents[1] / "golden"
CDNOW = json.loads((GOLDEN_DIR / "pareto_nbd_cdnow.json").read_text())
GROCERY = json.loads((GOLDEN_DIR / "grocery_btydplus.json").read_text())
PARAMS = CDNOW["params"]

#: lifetimes 0.11.3 ``ParetoNBDFitter().fit(frequency, recency, T)`` on
#: ``cdnow_customers_summary.csv`` (computed once; the test does not import lifetimes).
LIFETIMES = {
    "params": {
        "r": 0.5532796734099996,
        "alpha": 10.577589087680138,
        "s": 0.6061981839657018,
        "beta": 11.667368955846865,
    },
    # rows 0, 1, 2, 10, 100 and the three heaviest buyers (rows 324, 1515, 156)
    "rows": [0, 1, 2, 10, 100, 324, 1515, 156],
    # conditional_expected_number_of_purchases_up_to_time(39, ...)
    "expected_39": [
        1.4551229444002656,
        0.1709807491957903,
        0.10706055510944881,
        2.1366183244325505,
        3.5856745256724643,
        1.8993016190534286,
        20.115944258991124,
        19.594828533481298,
    ],
    "p_alive": [
        0.8691202864928563,
        0.16787117989840475,
        0.2950960265788541,
        0.5867539055761204,
        0.97244365914324,
        0.10943282479858199,
        0.9979179695715164,
        0.9961246469577454,
    ],
    "expected_39_total": 1665.5444845981203,
}


@pytest.fixture(scope="module")
def summary(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "cdnow" / "cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def fitted(summary: pd.DataFrame) -> ParetoNBDModel:
    return ParetoNBDModel().fit(summary["frequency"], summary["recency"], summary["T"])


def _rfm(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))  # type: ignore[return-value]


@pytest.mark.realdata
def test_published_cdnow_parameters(fitted: ParetoNBDModel, summary: pd.DataFrame) -> None:
    """FHL (2005): r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669, LL = -9,595.0
    (tolerance 1e-3 relative on the parameters, 0.1 on the log-likelihood)."""
    for name, value in PARAMS.items():
        assert fitted.params_[name] == pytest.approx(value, rel=CDNOW["rel_tol"]), name
    assert fitted.log_likelihood(*_rfm(summary)) == pytest.approx(CDNOW["log_likelihood"], abs=0.1)
    assert fitted.n_customers_ == 2357


@pytest.mark.realdata
def test_matches_lifetimes(fitted: ParetoNBDModel, summary: pd.DataFrame) -> None:
    """lifetimes 0.11.3 on the same inputs: parameters to 1%, forecasts to 0.5%."""
    for name, value in LIFETIMES["params"].items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-2), name
    x, t_x, T = _rfm(summary.loc[LIFETIMES["rows"]])
    np.testing.assert_allclose(
        fitted.expected_purchases(39.0, x, t_x, T), LIFETIMES["expected_39"], rtol=5e-3
    )
    np.testing.assert_allclose(fitted.p_alive(x, t_x, T), LIFETIMES["p_alive"], rtol=5e-3)
    total = fitted.expected_purchases(39.0, *_rfm(summary)).sum()
    assert total == pytest.approx(LIFETIMES["expected_39_total"], rel=5e-3)
    # With lifetimes' own parameters the formulas agree to rounding.
    theirs = ParetoNBDModel().set_params(LIFETIMES["params"])
    np.testing.assert_allclose(
        theirs.expected_purchases(39.0, x, t_x, T), LIFETIMES["expected_39"], rtol=1e-9
    )
    np.testing.assert_allclose(theirs.p_alive(x, t_x, T), LIFETIMES["p_alive"], rtol=1e-9)


@pytest.mark.realdata
def test_published_grocery_fit_and_holdout_error(grocery_cbs: pd.DataFrame) -> None:
    """BTYDplus 1.2.0 vignette (BTYD::pnbd.EstimateParameters): r = 0.786, alpha = 5.679,
    s = 0.386, beta = 5.717, LL = -15,782.39 and a holdout MAE of 1.508 (parameters to 1e-3
    relative or 1e-3 absolute, the printed precision)."""
    published = GROCERY["pnbd"]
    tol = GROCERY["param_tol"]
    x, t_x, T = (grocery_cbs[c].to_numpy() for c in ("x", "t_x", "T_cal"))
    model = ParetoNBDModel().fit(x, t_x, T)
    for name in ("r", "alpha", "s", "beta"):
        assert model.params_[name] == pytest.approx(
            published[name], rel=tol["rel"], abs=tol["abs"]
        ), name
    assert model.log_likelihood(x, t_x, T) == pytest.approx(published["log_likelihood"], abs=0.1)
    mae = np.abs(model.expected_purchases(52.0, x, t_x, T) - grocery_cbs["x_star"]).mean()
    assert mae == pytest.approx(GROCERY["holdout_mae"]["pnbd"], abs=5e-4)


def test_likelihood_matches_numerical_integration() -> None:
    """The hypergeometric closed form against the likelihood integrated over the death time.

    A customer alive at ``T`` contributes ``E[lambda^x e^(-lambda T)] E[e^(-mu T)]``; one who
    died at ``tau`` in ``(t_x, T]`` contributes ``E[lambda^x e^(-lambda tau)] E[mu
    e^(-mu tau)]``, whose expectations over the gamma priors are elementary; the integral
    over ``tau`` is taken by quadrature.
    """
    r, alpha, s, beta = PARAMS.values()
    model = ParetoNBDModel().set_params(PARAMS)

    def purchases(x: int, t: float) -> float:
        return float(
            np.exp(gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + t))
        )

    def dropout_density(t: float) -> float:
        return s / beta * (beta / (beta + t)) ** (s + 1)

    for x, t_x, T in [(0, 0.0, 30.0), (2, 12.5, 38.0), (7, 20.0, 25.0), (60, 24.0, 25.0)]:
        died, _ = integrate.quad(
            lambda tau, x=x: purchases(x, tau) * dropout_density(tau),
            t_x,
            T,
            epsabs=0,
            epsrel=1e-12,
        )
        alive = purchases(x, T) * (beta / (beta + T)) ** s
        assert model.log_likelihood([x], [t_x], [T]) == pytest.approx(
            np.log(alive + died), abs=1e-8
        )


def test_tail_integral_matches_high_precision_reference() -> None:
    """Heavy buyers (exponent 2,000) and lopsided scales stay finite and exact (mpmath).

    The cases from the third on defeat scipy's hyp2f1 (c > 180 with z near 1): the long-
    lifetime ones (``beta`` far above ``alpha + T``, as fitted on Complete Journey) take the
    power series, the last one the quadrature.
    """
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    cases = [  # alpha, beta, A, B, y
        (10.578, 11.669, 0.553, 1.606, 0.0),
        (10.578, 11.669, 2000.55, 1.606, 38.0),
        (0.5, 300.0, 1500.0, 2.4, 30.0),  # long lifetimes, heavy buyer
        (3.0, 0.2, 0.8, 900.0, 5.0),
        (4905.0, 0.0001649, 1.242, 1299.0, 0.0),
        (1.4, 8000.0, 250.0, 69.0, 5.0),
        (400.0, 0.01, 900.0, 1.5, 0.5),
    ]
    for alpha, beta, A, B, y in cases:
        big, small = max(alpha, beta), min(alpha, beta)
        c, Q = A + B, (B if alpha >= beta else A)
        z = mp.mpf(big - small) / (big + y)
        exact = -(c - 1) * mp.log(big + y) - mp.log(c - 1) + mp.log(mp.hyp2f1(c - 1, Q, c, z))
        got = log_tail_integral(alpha, beta, np.array([A]), np.array([B]), np.array([y]))[0]
        assert got == pytest.approx(float(exact), rel=1e-9), (alpha, beta, A, B, y)


def test_fallbacks_agree_with_scipy_where_it_works() -> None:
    rng = np.random.default_rng(3)
    n = 300
    alpha, beta = 2.0, 7.0
    A, B, y = rng.uniform(0.1, 300.0, n), rng.uniform(1.05, 20.0, n), rng.uniform(0.0, 40.0, n)
    closed = log_tail_integral(alpha, beta, A, B, y)
    quadrature = _log_tail_quadrature(beta, alpha, B, A, y)
    np.testing.assert_allclose(quadrature, closed, rtol=1e-10)
    P, z = rng.uniform(0.5, 20.0, n), rng.uniform(0.0, 0.95, n)
    c = P + rng.uniform(5.0, 100.0, n)
    series, converged = _log_hyp2f1_series(P, c, z)
    assert converged.all()
    np.testing.assert_allclose(series, np.log(hyp2f1(1.0, P, c, z)), rtol=1e-13)


def _simulate(params: dict[str, float], n: int, horizon: float, seed: int) -> dict[str, np.ndarray]:
    """Customers drawn from the Pareto/NBD story, observed at T and over (T, T + horizon]."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    mu = rng.gamma(params["s"], 1.0 / params["beta"], n)
    T = rng.uniform(5.0, 40.0, n)
    death = rng.exponential(1.0 / mu)
    observed = np.minimum(death, T)
    x = rng.poisson(lam * observed)
    # The last of x uniform purchase times in (0, observed].
    t_x = np.where(x > 0, observed * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    alive = death > T
    left = np.clip(np.minimum(death, T + horizon) - T, 0.0, None)
    future = np.where(alive, rng.poisson(lam * left), 0)
    return {"x": x.astype(float), "t_x": t_x, "T": T, "alive": alive, "future": future}


def test_conditional_predictions_match_monte_carlo(
    assert_calibrated: Callable[..., None],
) -> None:
    sim = _simulate(PARAMS, 200_000, horizon=26.0, seed=5)
    model = ParetoNBDModel().set_params(PARAMS)
    x, t_x, T = sim["x"], sim["t_x"], sim["T"]
    assert_calibrated(model.p_alive(x, t_x, T), sim["alive"].astype(float))
    p_zero = model.p_no_purchase(26.0, x, t_x, T)
    assert_calibrated(p_zero, (sim["future"] == 0).astype(float))
    assert_calibrated(model.expected_purchases(26.0, x, t_x, T), sim["future"].astype(float))
    for k in (0, 1, 3):
        sel = x == k
        assert_calibrated(p_zero[sel], (sim["future"][sel] == 0) * 1.0, 4)


def test_fit_recovers_simulated_parameters() -> None:
    sim = _simulate(PARAMS, 30_000, horizon=1.0, seed=8)
    T = np.round(sim["T"] * 7) / 7  # whole days, as real data are
    t_x = np.minimum(np.round(sim["t_x"] * 7) / 7, T)
    fit = ParetoNBDModel().fit(sim["x"], t_x, T).params_
    assert fit["r"] / fit["alpha"] == pytest.approx(PARAMS["r"] / PARAMS["alpha"], rel=0.05)
    assert fit["r"] == pytest.approx(PARAMS["r"], rel=0.1)
    assert fit["s"] / fit["beta"] == pytest.approx(PARAMS["s"] / PARAMS["beta"], rel=0.2)


def test_weights_equal_repeated_rows() -> None:
    sim = _simulate(PARAMS, 3_000, horizon=1.0, seed=2)
    x, t_x, T = sim["x"], np.round(sim["t_x"]), np.round(sim["T"])
    t_x = np.minimum(t_x, T)
    counts = pd.DataFrame({"x": x, "t_x": t_x, "T": T}).value_counts().reset_index()
    plain = ParetoNBDModel().fit(x, t_x, T).params_
    weighted = ParetoNBDModel().fit(counts["x"], counts["t_x"], counts["T"], counts["count"])
    for name, value in plain.items():
        assert weighted.params_[name] == pytest.approx(value, rel=1e-4), name


def test_heavy_buyers_and_edges_stay_finite() -> None:
    model = ParetoNBDModel().set_params(PARAMS)
    x = np.array([0.0, 0.0, 2000.0, 2000.0, 1.0, 300.0])
    t_x = np.array([0.0, 0.0, 38.0, 1.0, 0.0, 38.0])
    T = np.array([0.0, 38.0, 38.0, 38.0, 0.0, 38.0])
    for values in (
        model.expected_purchases(39.0, x, t_x, T),
        model.p_no_purchase(39.0, x, t_x, T),
        model.p_alive(x, t_x, T),
    ):
        assert np.all(np.isfinite(values))
    assert model.p_alive(x, t_x, T)[3] == pytest.approx(0.0, abs=1e-12)  # silent heavy buyer
    assert model.p_alive(x, t_x, T)[2] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(model.expected_purchases(0.0, x, t_x, T), 0.0, atol=1e-12)
    np.testing.assert_allclose(model.p_no_purchase(0.0, x, t_x, T), 1.0)
    # An active heavy buyer buys about their rate (r + x) / (alpha + T) times the horizon.
    rate = (PARAMS["r"] + 2000.0) / (PARAMS["alpha"] + 38.0)
    assert model.expected_purchases(1.0, x, t_x, T)[2] == pytest.approx(rate, rel=0.01)
    # s = 1 is the removable singularity of the expectation.
    near = [
        ParetoNBDModel().set_params(PARAMS | {"s": s}).expected_purchases(39.0, x, t_x, T)
        for s in (1.0 - 1e-6, 1.0, 1.0 + 1e-6)
    ]
    np.testing.assert_allclose(near[1], near[0], rtol=1e-5)
    np.testing.assert_allclose(near[1], near[2], rtol=1e-5)
