"""Gamma-Gamma with covariates: the plain model at zero coefficients, recovery with
calibrated standard errors, the prior and the penalty, parameters by name, the degenerate
spend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcast.exceptions import ConfigError
from ltvcast.models.gamma_gamma import GammaGammaModel
from ltvcast.models.spend_covariates import GammaGammaCovariateModel

from .conftest import covariate_profiles

GG = {"p": 3.0, "q": 4.0, "v": 30.0}


def _zero(params: dict[str, float], columns: list[str]) -> GammaGammaCovariateModel:
    return GammaGammaCovariateModel().set_params(params | {f"spend:{c}": 0.0 for c in columns})


def _simulate_spend(z: pd.DataFrame, g: list[float], seed: int) -> dict[str, np.ndarray]:
    """Mean spends of ``x`` transactions with ``nu ~ Gamma(q, v_i)``, ``v_i = v exp(g'z)``."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(GG["q"], 1.0 / (GG["v"] * np.exp(z.to_numpy() @ g)))
    x = rng.integers(1, 8, len(z)).astype(float)
    return {"x": x, "m": rng.gamma(GG["p"] * x, 1.0 / (nu * x))}


def test_zero_coefficients_are_the_plain_spend_model() -> None:
    z = covariate_profiles(300, 2)
    sim = _simulate_spend(z, [0.0] * 3, 3)
    model = _zero(GG, list(z.columns))
    plain = GammaGammaModel().set_params(GG)
    ll = model.log_likelihood(sim["x"], sim["m"], covariates=z)
    assert ll == pytest.approx(plain.log_likelihood(sim["x"], sim["m"]), rel=1e-12)
    np.testing.assert_allclose(
        model.expected_spend(sim["x"], sim["m"], covariates=z),
        plain.expected_spend(sim["x"], sim["m"]),
        rtol=1e-12,
    )
    assert model.population_mean == pytest.approx(plain.population_mean)


def test_gamma_gamma_recovers_coefficients_with_calibrated_errors() -> None:
    """Over repeated samples the estimates scatter as the standard errors say."""
    estimates, errors = [], []
    for seed in range(30):
        z = covariate_profiles(800, 100 + seed)
        sim = _simulate_spend(z, [0.4, -0.3, 0.0], 200 + seed)
        model = GammaGammaCovariateModel().fit(sim["x"], sim["m"], covariates=z)
        table = model.coefficient_table()
        estimates.append(table["estimate"].to_numpy())
        errors.append(table["std_error"].to_numpy())
    truth = np.array([*GG.values(), 0.4, -0.3, 0.0])
    spread, mean_error = np.std(estimates, axis=0), np.mean(errors, axis=0)
    np.testing.assert_allclose(spread, mean_error, rtol=0.4)
    # The mean of 30 estimates lies within 4 standard errors of that mean.
    assert np.all(np.abs(np.mean(estimates, axis=0) - truth) < 4 * mean_error / np.sqrt(30))


def test_prior_and_penalty() -> None:
    """The default Normal(0, 1) prior on standardised coefficients moves identified ones by
    O(1/n); an L2 penalty shrinks them."""
    z = covariate_profiles(2000, 11)
    sim = _simulate_spend(z, [0.4, -0.3, 0.0], 12)
    mle = GammaGammaCovariateModel(prior_sd=np.inf).fit(sim["x"], sim["m"], covariates=z)
    default = GammaGammaCovariateModel().fit(sim["x"], sim["m"], covariates=z)
    for name in ("spend:z", "spend:member"):
        assert default.params_[name] == pytest.approx(mle.params_[name], rel=1e-2)
    shrunk = GammaGammaCovariateModel(penalizer_coef=0.1).fit(sim["x"], sim["m"], covariates=z)
    assert abs(shrunk.params_["spend:z"]) < abs(mle.params_["spend:z"])
    with pytest.raises(ConfigError, match="prior_sd must be > 0"):
        GammaGammaCovariateModel(prior_sd=0.0).fit(sim["x"], sim["m"], covariates=z)


def test_set_params_round_trip_and_names() -> None:
    z = covariate_profiles(1000, 15)
    sim = _simulate_spend(z, [0.4, 0.0, 0.0], 16)
    model = GammaGammaCovariateModel().fit(sim["x"], sim["m"], covariates=z[["z"]])
    copy = GammaGammaCovariateModel().set_params(model.params_, model.covariance_.tolist())
    pd.testing.assert_frame_equal(copy.coefficient_table(), model.coefficient_table())
    assert copy.covariate_names_ == {"covariates": ("z",)}
    # An array's columns are x0, x1 ...; the names are then the positions.
    arrays = GammaGammaCovariateModel().fit(sim["x"], sim["m"], covariates=z.to_numpy())
    assert [k for k in arrays.params_ if ":" in k] == ["spend:x0", "spend:x1", "spend:x2"]
    with pytest.raises(ConfigError, match="no parameter 'purchase:z'"):
        GammaGammaCovariateModel().set_params(GG | {"purchase:z": 1.0})


def test_degenerate_spend_ignores_covariates() -> None:
    z = covariate_profiles(50, 17)
    model = GammaGammaCovariateModel().fit(np.full(50, 3.0), np.full(50, 7.0), covariates=z)
    assert model.degenerate_ and model.params_ == {"mean_spend": 7.0}
    np.testing.assert_allclose(model.expected_spend([0, 2], [0, 9.0], covariates=z[:2]), 7.0)
