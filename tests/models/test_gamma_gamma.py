"""Gamma-Gamma: published CDNOW fit, quadrature likelihood, gradient, exclusions, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.optimize import approx_fprime

from ltvcast.exceptions import ConfigError, InsufficientDataError, NotFittedError
from ltvcast.models.gamma_gamma import GammaGammaModel, _loglik_and_grad, _Rows

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "cdnow_btyd.json").read_text())
PARAMS = GOLDEN["gamma_gamma"]


@pytest.fixture(scope="module")
def summary(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "cdnow" / "cdnow_customers_summary_with_transactions.csv")


@pytest.mark.realdata
def test_published_cdnow_parameters(summary: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(summary["x"], summary["zbar"])
    for name, value in PARAMS.items():
        assert model.params_[name] == pytest.approx(value, rel=GOLDEN["rel_tol"]), name
    assert model.n_excluded_ == int((summary["x"] == 0).sum()) == 2357 - 946
    # FH 2013: the population mean spend per transaction is about $35.
    assert model.population_mean == pytest.approx(35.17, abs=0.05)


def test_likelihood_matches_numerical_integration() -> None:
    """Eq. 1 of the note against ``Gamma(px, nu x)`` for the mean, integrated over nu."""
    p, q, v = PARAMS.values()
    model = GammaGammaModel().set_params(PARAMS)
    for x, m in [(1, 12.0), (3, 40.5), (10, 7.25)]:

        def integrand(nu: float, x: int = x, m: float = m) -> float:
            density = stats.gamma.pdf(m, p * x, scale=1 / (nu * x))
            return float(density * stats.gamma.pdf(nu, q, scale=1 / v))

        reference, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)
        assert model.log_likelihood([x], [m]) == pytest.approx(np.log(reference), abs=1e-7)


def test_analytic_gradient() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 8, 300).astype(float)
    m = rng.gamma(3.0, 10.0, 300)
    theta = np.log([4.0, 2.5, 20.0])

    w = rng.uniform(0.5, 2.0, 300)
    rows = _Rows(x, m, w)

    def total(th: np.ndarray) -> float:
        return _loglik_and_grad(th, rows)[0]

    grad = _loglik_and_grad(theta, rows)[1]
    np.testing.assert_allclose(grad, approx_fprime(theta, total, 1e-7), rtol=1e-4, atol=1e-3)


def test_expected_spend_formula_and_population_mean() -> None:
    model = GammaGammaModel().set_params(PARAMS)
    p, q, v = PARAMS.values()
    got = model.expected_spend([0, 2, 2, 5, 3], [0.0, 30.0, 0.0, 10.0, -4.0])
    population = p * v / (q - 1)
    expected = [
        population,
        p * (v + 60) / (2 * p + q - 1),
        population,
        p * (v + 50) / (5 * p + q - 1),
    ]
    np.testing.assert_allclose(got, [*expected, population])
    # The estimate lies between the population mean and the customer's own mean.
    assert population > got[1] > 30.0


def test_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    x = rng.integers(1, 10, n).astype(float)
    nu = rng.gamma(PARAMS["q"], 1 / PARAMS["v"], n)
    m = rng.gamma(PARAMS["p"] * x, 1 / (nu * x))
    model = GammaGammaModel().fit(x, m)
    mean_spend = PARAMS["p"] * PARAMS["v"] / (PARAMS["q"] - 1)
    assert model.population_mean == pytest.approx(mean_spend, rel=0.05)
    assert model.params_["p"] == pytest.approx(PARAMS["p"], rel=0.2)


def test_zero_negative_spend_and_one_time_buyers_are_excluded() -> None:
    frequency = [0, 0, 1, 2, 3, 4, 2, 1]
    spend = [0.0, 25.0, 0.0, -8.0, 20.0, 35.0, 12.0, 50.0]
    model = GammaGammaModel().fit(frequency, spend)
    assert model.n_excluded_ == 4
    assert np.all(np.isfinite(model.expected_spend(frequency, spend)))


def test_errors() -> None:
    with pytest.raises(NotFittedError):
        GammaGammaModel().expected_spend([1], [1.0])
    with pytest.raises(InsufficientDataError, match="at least 3 repeat buyers"):
        GammaGammaModel().fit([0, 1, 2, 0], [0.0, 10.0, -1.0, 5.0])
    with pytest.raises(ConfigError, match="monetary_value must be finite"):
        GammaGammaModel().fit([1, 2], [np.inf, 3.0])
    with pytest.raises(ConfigError, match="q > 1"):
        GammaGammaModel().set_params({"p": 1.0, "q": 0.9, "v": 1.0})
    with pytest.raises(InsufficientDataError, match="heavy-tailed"):
        # Pareto spends with tail index 0.5 have no finite mean: the fit finds q <= 1.
        rng = np.random.default_rng(5)
        GammaGammaModel().fit(np.ones(3000), rng.pareto(0.5, 3000) + 1.0)


def test_degenerate_spend_falls_back_to_the_constant() -> None:
    """Dates-only logs (every amount 1): no spread to fit, so the constant spend, flagged."""
    rng = np.random.default_rng(2)
    frequency = rng.integers(1, 12, 500).astype(float)
    model = GammaGammaModel().fit(frequency, np.ones(500))
    assert model.degenerate_ and "same mean spend" in model.note_
    assert model.params_ == {"mean_spend": 1.0}
    assert model.population_mean == 1.0
    np.testing.assert_array_equal(model.expected_spend([0, 3, 7], [0.0, 1.0, 5.0]), 1.0)
    with pytest.raises(ConfigError, match="degenerate"):
        model.log_likelihood(frequency, np.ones(500))
    restored = GammaGammaModel().set_params(model.params_)
    assert restored.degenerate_ and restored.population_mean == 1.0
    # Almost no spread (one customer of 500 differs, a little): the search cannot converge.
    spend = np.r_[np.full(499, 20.0), 20.5]
    nearly = GammaGammaModel().fit(frequency, spend)
    assert nearly.degenerate_ and "too little spread" in nearly.note_
    assert nearly.population_mean == pytest.approx(spend.mean())
    # Real spread: the maximum-likelihood fit, as before.
    fitted = GammaGammaModel().set_params(PARAMS)
    assert not fitted.degenerate_
    with pytest.raises(ConfigError, match="mean_spend must be positive"):
        GammaGammaModel().set_params({"mean_spend": 0.0})
