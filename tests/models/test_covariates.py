"""Covariate purchase models (Fader & Hardie 2007): the plain likelihood at zero
coefficients, the plain formulas at each customer's parameters, gradients, recovery of
simulated coefficients with honest standard errors, Complete Journey, and the input checks
(shared with the spend model, tests/models/test_spend_covariates.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

from ltvcast.data.datasets import load_completejourney
from ltvcast.exceptions import ConfigError, InsufficientDataError, NotFittedError
from ltvcast.features.profile_design import ProfileDesign
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.bgnbd import BetaGeoModel, ModifiedBetaGeoModel, loglik_and_grad_rows
from ltvcast.models.covariates import (
    BetaGeoCovariateModel,
    ModifiedBetaGeoCovariateModel,
    ParetoNBDCovariateModel,
)
from ltvcast.models.pareto_nbd import ParetoNBDModel, log_tail_integral

from .conftest import covariate_profiles

BG = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
PNBD = {"r": 0.55, "alpha": 10.6, "s": 0.6, "beta": 11.7}
RFM_MODELS = [
    (BetaGeoCovariateModel, BetaGeoModel, BG),
    (ModifiedBetaGeoCovariateModel, ModifiedBetaGeoModel, BG),
    (ParetoNBDCovariateModel, ParetoNBDModel, PNBD),
]


def _simulate_pnbd(
    z: pd.DataFrame, g_purchase: list[float], g_dropout: list[float], seed: int
) -> dict[str, np.ndarray]:
    """Pareto/NBD customers with ``alpha_i = alpha exp(-g'z)``, ``beta_i = beta exp(-g'z)``."""
    rng = np.random.default_rng(seed)
    alpha = PNBD["alpha"] * np.exp(-z.to_numpy() @ g_purchase)
    beta = PNBD["beta"] * np.exp(-z.to_numpy() @ g_dropout)
    lam, mu = rng.gamma(PNBD["r"], 1.0 / alpha), rng.gamma(PNBD["s"], 1.0 / beta)
    T = rng.uniform(20.0, 40.0, len(z))
    observed = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * observed).astype(float)
    t_x = np.where(x > 0, observed * rng.beta(np.maximum(x, 1.0), 1.0), 0.0)
    return {"x": x, "t_x": t_x, "T": T}


def _simulate_bg(
    z: pd.DataFrame, g_purchase: list[float], g_a: list[float], g_b: list[float], seed: int
) -> dict[str, np.ndarray]:
    """BG/NBD customers with ``alpha_i``, ``a_i``, ``b_i`` from their covariates: at most
    ``Geometric(p) `` repeat purchases; the last one before ``T`` an order statistic."""
    rng = np.random.default_rng(seed)
    zs = z.to_numpy()
    alpha = BG["alpha"] * np.exp(-zs @ g_purchase)
    a, b = BG["a"] * np.exp(zs @ g_a), BG["b"] * np.exp(zs @ g_b)
    lam, p = rng.gamma(BG["r"], 1.0 / alpha), np.clip(rng.beta(a, b), 1e-12, 1.0)
    T = rng.uniform(20.0, 40.0, len(z))
    events = rng.poisson(lam * T)
    x = np.minimum(events, rng.geometric(p)).astype(float)
    order = rng.beta(np.maximum(x, 1.0), np.maximum(events - x + 1.0, 1.0))
    return {"x": x, "t_x": np.where(x > 0, T * order, 0.0), "T": T}


def _zero(model: type, params: dict[str, float], columns: list[str]) -> object:
    coefs = {f"{block.name}:{c}": 0.0 for block in model._BLOCKS for c in columns}
    return model().set_params(params | coefs)


@pytest.mark.parametrize(("cls", "plain_cls", "params"), RFM_MODELS)
def test_zero_coefficients_are_the_plain_model(
    cls: type[BetaGeoCovariateModel], plain_cls: type[BetaGeoModel], params: dict[str, float]
) -> None:
    z = covariate_profiles(400, 0)
    sim = _simulate_pnbd(z, [0.0] * 3, [0.0] * 3, 1)
    rows = (sim["x"], sim["t_x"], sim["T"])
    model = _zero(cls, params, list(z.columns))
    plain = plain_cls().set_params(params)
    given = {"purchase_covariates": z, "dropout_covariates": z}
    assert model.log_likelihood(*rows, **given) == pytest.approx(
        plain.log_likelihood(*rows), rel=1e-12
    )
    for method in ("p_alive", "expected_purchases", "p_no_purchase", "p_alive_at"):
        args = rows if method == "p_alive" else (13.0, *rows)
        np.testing.assert_allclose(
            getattr(model, method)(*args, **given), getattr(plain, method)(*args), rtol=1e-12
        )


@pytest.mark.parametrize(("cls", "plain_cls", "params"), RFM_MODELS)
def test_predictions_are_the_plain_formulas_at_each_customers_parameters(
    cls: type[BetaGeoCovariateModel], plain_cls: type[BetaGeoModel], params: dict[str, float]
) -> None:
    """The vectorised plain formulas at per-row parameters equal one plain model per
    customer (Fader & Hardie 2007: every expression holds at the customer's parameters)."""
    z = pd.DataFrame({"z": [-1.5, 0.0, 0.7, 2.0, 1.0], "w": [1.0, 0.0, 1.0, 0.0, 1.0]})
    x, t_x, T = np.array([0.0, 1, 3, 12, 200]), np.array([0.0, 5, 20, 30, 39]), np.full(5, 40.0)
    coefs = {f"{b.name}:{c}": 0.3 * (i + 1) * (-1) ** j for i, b in enumerate(cls._BLOCKS)
             for j, c in enumerate(z.columns)}  # fmt: skip
    model = cls().set_params(params | coefs)
    given = {"purchase_covariates": z, "dropout_covariates": z}
    full = {
        "p_alive": model.p_alive(x, t_x, T, **given),
        "expected_purchases": model.expected_purchases(26.0, x, t_x, T, **given),
        "p_no_purchase": model.p_no_purchase(26.0, x, t_x, T, **given),
        "p_alive_at": model.p_alive_at(26.0, x, t_x, T, **given),
    }
    bound = model.for_customers(**given)
    np.testing.assert_array_equal(bound.expected_purchases(26.0, x, t_x, T),
                                  full["expected_purchases"])  # fmt: skip
    for i in range(len(z)):
        own = dict(params)
        for block in cls._BLOCKS:
            name = cls.PARAMS[block.param]
            link = sum(coefs[f"{block.name}:{c}"] * z[c].iloc[i] for c in z.columns)
            own[name] = own[name] * np.exp(block.sign * link)
        single = plain_cls().set_params(own)
        row = (x[i : i + 1], t_x[i : i + 1], T[i : i + 1])
        assert full["p_alive"][i] == pytest.approx(single.p_alive(*row)[0], rel=1e-10)
        for method in ("expected_purchases", "p_no_purchase", "p_alive_at"):
            value = getattr(single, method)(26.0, *row)[0]
            assert full[method][i] == pytest.approx(value, rel=1e-10), method
        one = {k: v.iloc[i : i + 1] for k, v in given.items()}
        assert model.log_likelihood(*row, **one) == pytest.approx(
            single.log_likelihood(*row), rel=1e-10
        )


def test_large_dropout_parameters_stay_finite() -> None:
    """Covariates fitted on few customers can send a_i, b_i into the thousands, where the
    heavy-buyer form of eq. 10 under- and overflows; the other Euler form takes over and
    agrees with mpmath's hypergeometric function."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    r, alpha, t = 0.4, 4.5, 9.0
    x, t_x, T = (
        np.array([0.0, 3.0, 12.0]),
        np.array([0.0, 11.0, 20.0]),
        np.array([30.0, 30.0, 30.0]),
    )
    for shift, cls in ((0, BetaGeoModel), (1, ModifiedBetaGeoModel)):
        for a, b in ((1756.0, 7249.0), (0.79, 2.4)):
            model = cls().set_params({"r": r, "alpha": alpha, "a": a, "b": b})
            got = model.expected_purchases(t, x, t_x, T) / model.p_alive(x, t_x, T)
            for i in range(3):
                z = mp.mpf(t) / (alpha + T[i] + t)
                c = a + b - 1 + shift + x[i]
                hyper = mp.hyp2f1(r + x[i], b + x[i] + shift, c, z)
                exact = c / (a - 1) * (1 - (1 - z) ** (r + x[i]) * hyper)
                assert got[i] == pytest.approx(float(exact), rel=1e-9), (a, b, i)
            survive = model.p_alive_at(t, x, t_x, T) / model.p_alive(x, t_x, T)
            assert np.all(np.isfinite(survive)) and np.all((survive > 0) & (survive <= 1))


def test_log_tail_integral_takes_per_row_parameters() -> None:
    alpha, beta = np.array([10.6, 0.5, 400.0, 3.0]), np.array([11.7, 300.0, 0.01, 3.0])
    A, B, y = np.array([0.6, 1500.0, 900.0, 2.0]), np.array([1.6, 2.4, 1.5, 0.5]), np.ones(4)
    rows = log_tail_integral(alpha, beta, A, B, y)
    for i in range(4):
        one = log_tail_integral(alpha[i], beta[i], A[i : i + 1], B[i : i + 1], y[i : i + 1])
        assert rows[i] == pytest.approx(one[0], rel=1e-13)


@pytest.mark.parametrize("shift", [0, 1])
def test_per_row_gradient_of_the_bg_likelihood(shift: int) -> None:
    """Column j of the gradient is each row's derivative in its own log-parameter j."""
    z = covariate_profiles(60, 4)
    sim = _simulate_bg(z, [0.5, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, -0.5, 0.0], 5)
    rng = np.random.default_rng(6)
    log_rows = [np.log(0.5), rng.normal(1.0, 0.3, 60), rng.normal(0.0, 0.3, 60), 0.4]
    weights = rng.uniform(0.5, 2.0, 60)

    def total(theta: np.ndarray, j: int) -> float:
        params = [np.exp(v) for v in log_rows]
        params[j] = np.exp(theta) if np.ndim(log_rows[j]) else float(np.exp(theta[0]))
        ll, _ = loglik_and_grad_rows(tuple(params), sim["x"], sim["t_x"], sim["T"], shift)
        return float(weights @ ll)

    _, grad = loglik_and_grad_rows(
        tuple(np.exp(v) for v in log_rows), sim["x"], sim["t_x"], sim["T"], shift
    )
    for j, value in enumerate(log_rows):
        point = np.atleast_1d(np.asarray(value, dtype=float))
        numeric = approx_fprime(point, total, 1e-7, j)
        analytic = weights * grad[:, j] if point.size > 1 else [weights @ grad[:, j]]
        np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-5)


def _within(model: object, truth: dict[str, float], n_se: float = 4.0) -> pd.DataFrame:
    table = model.coefficient_table()  # type: ignore[attr-defined]
    for name, value in truth.items():
        row = table.loc[name]
        assert np.isfinite(row["std_error"]) and row["std_error"] > 0, name
        assert abs(row["estimate"] - value) < n_se * row["std_error"], (name, row.to_dict())
    return table


def test_pareto_nbd_recovers_simulated_coefficients() -> None:
    z = covariate_profiles(6000, 7)
    sim = _simulate_pnbd(z, [0.5, -0.4, 0.0], [-0.3, 0.6, 0.0], 8)
    model = ParetoNBDCovariateModel().fit(
        sim["x"], sim["t_x"], sim["T"], purchase_covariates=z, dropout_covariates=z
    )
    truth = {"purchase:z": 0.5, "purchase:member": -0.4, "purchase:noise": 0.0,
             "dropout:z": -0.3, "dropout:member": 0.6, "dropout:noise": 0.0} | PNBD  # fmt: skip
    table = _within(model, truth)
    assert table.loc["purchase:z", "p_value"] < 1e-6
    assert model.log_likelihood_ > model.null_log_likelihood_ + 100
    assert model.log_likelihood_ == pytest.approx(
        model.log_likelihood(
            sim["x"], sim["t_x"], sim["T"], purchase_covariates=z, dropout_covariates=z
        )
    )


def test_bg_nbd_recovers_simulated_coefficients() -> None:
    """The purchase process on two covariates; the dropout process on a binary one (the
    Beta's two shapes are weakly identified apart, so one covariate drives both)."""
    z = covariate_profiles(8000, 9)
    sim = _simulate_bg(z, [0.5, -0.4, 0.0], [0.0, 0.5, 0.0], [0.0, -0.5, 0.0], 10)
    model = BetaGeoCovariateModel().fit(
        sim["x"], sim["t_x"], sim["T"], purchase_covariates=z, dropout_covariates=z[["member"]]
    )
    truth = {"purchase:z": 0.5, "purchase:member": -0.4, "purchase:noise": 0.0,
             "dropout_a:member": 0.5, "dropout_b:member": -0.5} | BG  # fmt: skip
    _within(model, truth)
    assert list(model.params_) == [*BG, "purchase:z", "purchase:member", "purchase:noise",
                                   "dropout_a:member", "dropout_b:member"]  # fmt: skip


def test_no_covariates_is_the_plain_fit_with_errors() -> None:
    z = covariate_profiles(1500, 13)
    sim = _simulate_bg(z, [0.0] * 3, [0.0] * 3, [0.0] * 3, 14)
    rows = (sim["x"], sim["t_x"], sim["T"])
    model = BetaGeoCovariateModel().fit(*rows)
    plain = BetaGeoModel().fit(*rows)
    for name, value in plain.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-4)
    assert model.log_likelihood_ == pytest.approx(model.null_log_likelihood_, abs=1e-6)
    assert model.coefficient_table()["std_error"].notna().all()


def test_input_checks_name_the_column() -> None:
    z = covariate_profiles(200, 18)
    sim = _simulate_pnbd(z, [0.0] * 3, [0.0] * 3, 19)
    rows = (sim["x"], sim["t_x"], sim["T"])
    fit = BetaGeoCovariateModel().fit
    bad = z.assign(z=z["z"].where(z.index != 7))
    with pytest.raises(ConfigError, match=r"purchase_covariates column 'z' must be finite; 1 "):
        fit(*rows, purchase_covariates=bad)
    with pytest.raises(ConfigError, match="dropout_covariates column 'one' is constant"):
        fit(*rows, dropout_covariates=z.assign(one=1.0))
    with pytest.raises(ConfigError, match="column 'twice' is a linear combination"):
        fit(*rows, purchase_covariates=z.assign(twice=2.0 * z["z"] - 1.0))
    with pytest.raises(ConfigError, match="column 'city' must be numeric"):
        fit(*rows, purchase_covariates=z.assign(city="Paris"))
    with pytest.raises(ConfigError, match="has 199 rows but 200"):
        fit(*rows, purchase_covariates=z.iloc[1:].to_numpy())
    with pytest.raises(ConfigError, match="1- or 2-dimensional"):
        fit(*rows, purchase_covariates=np.zeros((200, 2, 2)))
    with pytest.raises(InsufficientDataError, match="at least 13 customers to fit 13 parameters"):
        fit(rows[0][:9], rows[1][:9], rows[2][:9], purchase_covariates=z.iloc[:9],
            dropout_covariates=z.iloc[:9])  # fmt: skip
    with pytest.raises(ConfigError, match="lack"):
        BetaGeoCovariateModel().set_params({"r": 1.0})
    with pytest.raises(NotFittedError, match="purchase_covariates"):
        BetaGeoCovariateModel().p_alive(*rows)
    model = fit(*rows, purchase_covariates=z[["z"]])
    with pytest.raises(ConfigError, match="purchase_covariates is missing"):
        model.p_alive(*rows)
    with pytest.raises(ConfigError, match=r"lacks the column\(s\) \['z'\]"):
        model.p_alive(*rows, purchase_covariates=z[["noise"]])
    with pytest.raises(ConfigError, match="fitted without dropout_covariates"):
        model.p_alive(*rows, purchase_covariates=z, dropout_covariates=z)
    with pytest.raises(ConfigError, match="has 3 columns; the model was fitted with 1"):
        model.p_alive(*rows, purchase_covariates=z.to_numpy())
    # Columns are found by name, in any order.
    np.testing.assert_array_equal(
        model.p_alive(*rows, purchase_covariates=z[["noise", "z"]]),
        model.p_alive(*rows, purchase_covariates=z["z"].to_numpy()),
    )


@pytest.mark.realdata
@pytest.mark.slow
def test_complete_journey_demographics_on_the_purchase_rate(data_dir: Path) -> None:
    """A user's first look: Pareto/NBD on the first half of 2017 with household age and home
    ownership on the purchase rate. The likelihood rises far beyond chance (LR 388 on 8
    degrees of freedom); households without demographics (2/3 of them) buy half as often;
    and the standard errors agree with those of the MBG/NBD fitted to the same purchases
    (both models find almost no dropout: their purchase processes are the same Gamma-Poisson).
    Pareto/NBD's ``s`` and ``beta`` run along their ridge (no dropout to tell them apart):
    no error for them, the purchase rate's unaffected."""
    data, _ = load_completejourney(data_dir)
    as_of = pd.Timestamp("2017-06-30 23:59:59")
    rfm = rfm_summary(data.transactions, as_of, time_unit_days=7.0)
    design = ProfileDesign(("age", "home_ownership")).fit(data.profiles, rfm.index)
    z = design.transform(data.profiles, rfm.index)
    rows = (rfm["frequency"], rfm["recency"], rfm["T"])
    model = ParetoNBDCovariateModel().fit(*rows, purchase_covariates=z)
    assert 2 * (model.log_likelihood_ - model.null_log_likelihood_) > 300
    table = model.coefficient_table()
    coefficients = table.loc[[f"purchase:{c}" for c in z.columns]]
    assert coefficients.loc["purchase:age=(missing)", "estimate"] == pytest.approx(
        np.log(0.5), abs=0.1
    )
    assert coefficients.loc["purchase:age=(missing)", "p_value"] < 1e-10
    assert table.loc[["s", "beta"], "std_error"].isna().all()
    mbg = ModifiedBetaGeoCovariateModel().fit(*rows, purchase_covariates=z)
    reference = mbg.coefficient_table().loc[coefficients.index, "std_error"]
    np.testing.assert_allclose(coefficients["std_error"], reference, rtol=0.05)
    assert coefficients["std_error"].between(0.05, 0.2).all()
