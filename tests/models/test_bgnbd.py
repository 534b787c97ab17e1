"""BG/NBD: published CDNOW fit, likelihood and gradient references, Monte-Carlo checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1

from ltvcast.models.bgnbd import (
    BetaGeoModel,
    ModifiedBetaGeoModel,
    _loglik_and_grad,
    compress_rows,
    levels_of,
)

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "cdnow_btyd.json").read_text())
CDNOW = GOLDEN["bgnbd"]
PARAMS = {k: CDNOW[k] for k in ("r", "alpha", "a", "b")}


def _simulate(
    params: dict[str, float], n: int, horizon: float, seed: int, shift: int = 0
) -> dict[str, np.ndarray]:
    """Customers drawn from the BG/NBD story, observed at T and over (T, T + horizon].

    Dropout follows a repeat purchase with probability p, so the customer makes
    J ~ Geometric(p) repeat purchases at most (MBG/NBD, ``shift = 1``: dropout may also
    follow the first purchase, so J - 1); given n1 Poisson events in (0, T], the last
    purchase made before T is an order statistic of uniforms.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    p = np.clip(rng.beta(params["a"], params["b"], n), 1e-12, 1.0)
    T = rng.uniform(5.0, 40.0, n)
    n1 = rng.poisson(lam * T)
    n2 = rng.poisson(lam * horizon)
    max_repeats = rng.geometric(p) - shift
    alive = max_repeats > n1
    x = np.minimum(n1, max_repeats)
    order = rng.beta(np.maximum(x, 1), np.maximum(n1 - x + 1, 1))
    t_x = np.where(x > 0, T * order, 0.0)
    future = np.where(alive, np.minimum(n2, max_repeats - n1), 0)
    return {"x": x.astype(float), "t_x": t_x, "T": T, "alive": alive, "future": future}


@pytest.fixture(scope="module")
def summary(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "cdnow" / "cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def fitted(summary: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])


@pytest.fixture(scope="module", params=[0, 1], ids=["bgnbd", "mbgnbd"])
def simulated(request: pytest.FixtureRequest) -> dict[str, np.ndarray]:
    out = _simulate(PARAMS, 200_000, horizon=26.0, seed=7, shift=request.param)
    out["shift"] = np.array(request.param)
    return out


def _model(shift: int) -> BetaGeoModel:
    return ModifiedBetaGeoModel() if shift else BetaGeoModel()


@pytest.mark.realdata
def test_published_cdnow_parameters(fitted: BetaGeoModel, summary: pd.DataFrame) -> None:
    for name, value in PARAMS.items():
        assert fitted.params_[name] == pytest.approx(value, rel=GOLDEN["rel_tol"]), name
    ll = fitted.log_likelihood(summary["frequency"], summary["recency"], summary["T"])
    assert ll == pytest.approx(CDNOW["log_likelihood"], abs=0.1)
    assert fitted.n_customers_ == 2357


@pytest.mark.realdata
def test_weights_equal_repeated_rows(summary: pd.DataFrame, fitted: BetaGeoModel) -> None:
    counts = summary.groupby(["frequency", "recency", "T"]).size().reset_index(name="w")
    model = BetaGeoModel().fit(counts["frequency"], counts["recency"], counts["T"], counts["w"])
    for name, value in fitted.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-4)


def test_likelihood_matches_numerical_integration() -> None:
    """Eq. 6 against the individual-level likelihood integrated over the priors.

    ``lambda`` and ``p`` are independent a priori, so each term of
    ``(1-p)^x lambda^x e^(-lambda T) + p (1-p)^(x-1) lambda^x e^(-lambda t_x)`` integrates as
    a product of two 1-d integrals, taken by quadrature in log(lambda) and logit(p).
    """
    r, alpha, a, b = PARAMS.values()
    model = BetaGeoModel().set_params(PARAMS)

    def over_lambda(power: int, time: float) -> float:
        def f(y: float) -> float:
            lam = np.exp(y)
            return float(
                np.exp(stats.gamma.logpdf(lam, r, scale=1 / alpha) + power * y - lam * time + y)
            )

        return integrate.quad(f, -80, 6, epsabs=0, epsrel=1e-12, limit=200)[0]

    def over_p(i: int, j: int) -> float:
        def f(z: float) -> float:
            p, q = 1 / (1 + np.exp(-z)), 1 / (1 + np.exp(z))
            return float(np.exp(stats.beta.logpdf(p, a, b) + i * np.log(p) + j * np.log(q)) * p * q)

        return integrate.quad(f, -200, 60, epsabs=0, epsrel=1e-12, limit=200)[0]

    for x, t_x, T in [(0, 0.0, 30.0), (1, 2.5, 38.0), (4, 20.0, 25.0)]:
        reference = over_p(0, x) * over_lambda(x, T)
        if x > 0:
            reference += over_p(1, x - 1) * over_lambda(x, t_x)
        assert model.log_likelihood([x], [t_x], [T]) == pytest.approx(np.log(reference), abs=1e-6)


@pytest.mark.parametrize("shift", [0, 1])
def test_analytic_gradient(shift: int) -> None:
    sim = _simulate(PARAMS, 500, horizon=1.0, seed=1, shift=shift)
    theta = np.log([0.5, 3.0, 1.2, 1.7])

    def total(th: np.ndarray) -> float:
        return float(_loglik_and_grad(th, sim["x"], sim["t_x"], sim["T"], shift)[0].sum())

    grad = _loglik_and_grad(theta, sim["x"], sim["t_x"], sim["T"], shift)[1].sum(axis=0)
    np.testing.assert_allclose(grad, approx_fprime(theta, total, 1e-7), rtol=1e-4, atol=1e-3)


def test_expected_purchases_equals_paper_form() -> None:
    """The Euler-transformed evaluation equals eq. 10 as printed, where that one is stable."""
    r, alpha, a, b = PARAMS.values()
    x = np.array([0.0, 1.0, 2.0, 5.0, 9.0])
    t_x = np.array([0.0, 3.0, 30.0, 20.0, 36.0])
    T = np.array([38.0, 30.0, 35.0, 38.0, 37.0])
    t = 39.0
    model = BetaGeoModel().set_params(PARAMS)
    hyper = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numer = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyper)
    denom = 1 + (x > 0) * a / (b + np.maximum(x, 1) - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    np.testing.assert_allclose(model.expected_purchases(t, x, t_x, T), numer / denom, rtol=1e-10)


def test_conditional_predictions_match_monte_carlo(
    simulated: dict[str, np.ndarray], assert_calibrated: Callable[..., None]
) -> None:
    """P(alive), P(no purchase) and E[purchases] agree with the simulated futures, by decile."""
    model = _model(int(simulated["shift"])).set_params(PARAMS)
    x, t_x, T = simulated["x"], simulated["t_x"], simulated["T"]
    p_zero = model.p_no_purchase(26.0, x, t_x, T)
    assert_calibrated(p_zero, (simulated["future"] == 0).astype(float))
    assert_calibrated(model.p_alive(x, t_x, T), simulated["alive"].astype(float))
    assert_calibrated(model.expected_purchases(26.0, x, t_x, T), simulated["future"].astype(float))
    for k in (0, 1, 2, 3):  # also within each frequency
        sel = x == k
        assert_calibrated(p_zero[sel], (simulated["future"][sel] == 0) * 1.0, 4)


@pytest.mark.parametrize("shift", [0, 1])
def test_fit_recovers_simulated_parameters(shift: int) -> None:
    """The purchase process is pinned down; a and b only through the mean dropout a/(a+b)."""
    sim = _simulate(PARAMS, 40_000, horizon=1.0, seed=3, shift=shift)
    T = np.round(sim["T"] * 7) / 7  # whole days, as real data are
    fit = _model(shift).fit(sim["x"], np.minimum(np.round(sim["t_x"] * 7) / 7, T), T).params_
    assert fit["r"] == pytest.approx(PARAMS["r"], rel=0.05)
    assert fit["alpha"] == pytest.approx(PARAMS["alpha"], rel=0.05)
    mean_dropout = PARAMS["a"] / (PARAMS["a"] + PARAMS["b"])
    assert fit["a"] / (fit["a"] + fit["b"]) == pytest.approx(mean_dropout, rel=0.15)


def test_edge_cases_stay_finite() -> None:
    model = BetaGeoModel().set_params(PARAMS)
    x = np.array([0.0, 0.0, 500.0, 500.0, 1.0])
    t_x = np.array([0.0, 0.0, 38.0, 1.0, 0.0])
    T = np.array([0.0, 38.0, 38.0, 38.0, 0.0])
    for values in (
        model.expected_purchases(39.0, x, t_x, T),
        model.p_no_purchase(39.0, x, t_x, T),
        model.p_alive(x, t_x, T),
    ):
        assert np.all(np.isfinite(values))
    assert model.p_alive(x, t_x, T)[3] == pytest.approx(0.0, abs=1e-12)  # silent heavy buyer
    np.testing.assert_allclose(model.expected_purchases(0.0, x, t_x, T), 0.0, atol=1e-12)
    np.testing.assert_allclose(model.p_no_purchase(0.0, x, t_x, T), 1.0)
    near_one = [
        BetaGeoModel().set_params(PARAMS | {"a": a}).expected_purchases(39.0, x, t_x, T)
        for a in (1.0 - 1e-4, 1.0, 1.0 + 1e-4)
    ]
    np.testing.assert_allclose(near_one[1], near_one[0], rtol=1e-3)
    np.testing.assert_allclose(near_one[1], near_one[2], rtol=1e-3)


def test_tiny_data_fits_or_says_why() -> None:
    """Five customers, mostly one-time buyers: a finite fit (possibly a limiting case)."""
    model = BetaGeoModel().fit([0, 0, 1, 0, 3], [0, 0, 2, 0, 9], [10, 12, 9, 4, 10])
    assert all(np.isfinite(v) and v > 0 for v in model.params_.values())
    assert np.all(np.isfinite(model.expected_purchases(10, [0, 3], [0, 9], [10, 10])))


@pytest.mark.realdata
def test_mbgnbd_matches_lifetimes(summary: pd.DataFrame) -> None:
    """MBG/NBD on the CDNOW sample: parameters and forecasts of ``lifetimes``' fitter."""
    lifetimes = pytest.importorskip("lifetimes", reason="benchmark-only dependency")
    x, t_x, T = summary["frequency"], summary["recency"], summary["T"]
    ours = ModifiedBetaGeoModel().fit(x, t_x, T)
    reference = lifetimes.ModifiedBetaGeoFitter().fit(x, t_x, T)
    for name, value in ours.params_.items():
        assert value == pytest.approx(reference.params_[name], rel=1e-3), name
    ref = ModifiedBetaGeoModel().set_params(dict(reference.params_))
    np.testing.assert_allclose(
        ref.expected_purchases(39.0, x, t_x, T),
        reference.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, T),
        rtol=1e-8,
    )
    np.testing.assert_allclose(
        ref.p_alive(x, t_x, T), reference.conditional_probability_alive(x, t_x, T), rtol=1e-8
    )
    # Unlike BG/NBD, a one-time buyer's P(alive) falls with the time since that purchase.
    once = ref.p_alive(np.zeros(3), np.zeros(3), np.array([1.0, 10.0, 30.0]))
    assert np.all(np.diff(once) < 0) and once[0] < 1.0


def test_compressed_rows_are_numpy_unique_rows() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, 500).astype(float)
    t_cal = rng.integers(1, 6, 500).astype(float)
    tx = np.minimum(rng.integers(0, 6, 500).astype(float), t_cal) * (x > 0)
    weights = rng.integers(1, 3, 500).astype(float)
    (ux, utx, ut), summed = compress_rows((x, tx, t_cal), weights)
    unique, inverse = np.unique(np.column_stack([x, tx, t_cal]), axis=0, return_inverse=True)
    np.testing.assert_array_equal(np.column_stack([ux, utx, ut]), unique)
    np.testing.assert_array_equal(summed, np.bincount(inverse.ravel(), weights=weights))
    for values in (ux, x):  # sorted (the linear pass) and not
        levels, idx = levels_of(values)
        expected, expected_idx = np.unique(values, return_inverse=True)
        np.testing.assert_array_equal(levels, expected)
        np.testing.assert_array_equal(idx, expected_idx)
