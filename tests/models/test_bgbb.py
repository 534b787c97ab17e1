"""BG/BB: published donations fit and forecast, lifetimes, likelihood and Monte-Carlo checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime
from scipy.special import betaln, comb, gammaln

from ltvcast.exceptions import ConfigError, InsufficientDataError, NotFittedError
from ltvcast.models.bgbb import BetaGeoBetaBinomModel, _loglik_and_grad

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "bgbb_donations.json").read_text())
PARAMS = GOLDEN["params"]

#: lifetimes 0.11.3 ``BetaGeoBetaBinomFitter().fit(frequency, recency, periods, weights)`` on
#: ``donations.csv`` (computed once; the test does not import lifetimes). Forecasts are per
#: row of the file: ``conditional_expected_number_of_purchases_up_to_time(5, ...)`` and
#: ``conditional_probability_alive(1, ...)`` (alive at opportunity n + 1).
LIFETIMES = {
    "params": {
        "alpha": 1.2035223936081028,
        "beta": 0.7497163581757851,
        "gamma": 0.6567181695498653,
        "delta": 2.7834419828870645,
    },
    "expected_5": [
        0.0728633389408454, 0.08569570763928226, 0.31423812673271373, 0.5938533148536412,
        0.8393961811765616, 1.0216890142224269, 1.147884996892796, 0.11912088238046062,
        0.5361107650651028, 1.057603546110472, 1.4430422340799829, 1.6688168468353526,
        0.2235945879016246, 1.034571598127008, 1.8047029632184959, 2.1897486967779947,
        0.5831920016402496, 2.0300240283998114, 2.710680546721109, 1.8129421860453447,
        3.231612396664475, 3.7525442466076697,
    ],
    "p_alive": [
        0.10813327510957339, 0.06946180501685913, 0.2547099275946144, 0.4813557679996371,
        0.680383831057315, 0.8281437314516541, 0.9304335775085638, 0.06641475903085939,
        0.2989036562198004, 0.589657189079309, 0.8045550060792326, 0.9304335775083936,
        0.09500629576303544, 0.4395938925093124, 0.7668260001149925, 0.9304335775083398,
        0.20017903663226821, 0.696800115918093, 0.9304335775084678, 0.5219754342196314,
        0.9304335775086283, 0.9304335775087005,
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def donations(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "donations_fhs" / "donations.csv")


@pytest.fixture(scope="module")
def fitted(donations: pd.DataFrame) -> BetaGeoBetaBinomModel:
    return BetaGeoBetaBinomModel().fit(*_rfn(donations), weights=donations["weights"])


def _rfn(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return frame["frequency"], frame["recency"], frame["periods"]


@pytest.mark.realdata
def test_published_donations_fit_and_forecast(
    fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame
) -> None:
    """FHS (2010): alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783 (to 1e-3
    relative); 12,884.2 expected repeat donations by the 11,104 donors over the next 5
    opportunities (to 0.1)."""
    for name, value in PARAMS.items():
        assert fitted.params_[name] == pytest.approx(value, rel=GOLDEN["rel_tol"]), name
    assert fitted.n_customers_ == 11104
    expected = fitted.expected_purchases(GOLDEN["n_future_periods"], *_rfn(donations))
    total = float(expected @ donations["weights"])
    assert total == pytest.approx(GOLDEN["expected_repeat_donations"], abs=0.1)


@pytest.mark.realdata
def test_matches_lifetimes(fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    """lifetimes 0.11.3 on the same inputs: parameters to 1%, forecasts to 0.5%."""
    for name, value in LIFETIMES["params"].items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-2), name
    rows = _rfn(donations)
    np.testing.assert_allclose(
        fitted.expected_purchases(5, *rows), LIFETIMES["expected_5"], rtol=5e-3
    )
    np.testing.assert_allclose(fitted.p_alive(*rows), LIFETIMES["p_alive"], rtol=5e-3)
    theirs = BetaGeoBetaBinomModel().set_params(LIFETIMES["params"])
    # lifetimes adds 1e-15 to the likelihood's second term: agreement to that rounding.
    np.testing.assert_allclose(
        theirs.expected_purchases(5, *rows), LIFETIMES["expected_5"], rtol=1e-8
    )
    np.testing.assert_allclose(theirs.p_alive(*rows), LIFETIMES["p_alive"], rtol=1e-8)


def _patterns(n: int) -> pd.DataFrame:
    """Every (x, t_x) reachable in n opportunities, with the number of 0/1 sequences of each."""
    rows = [(0, 0, 1)] + [
        (x, t_x, int(comb(t_x - 1, x - 1))) for t_x in range(1, n + 1) for x in range(1, t_x + 1)
    ]
    return pd.DataFrame(rows, columns=["x", "t_x", "sequences"])


def test_likelihood_is_a_distribution_over_sequences() -> None:
    """Eq. 5 is the probability of one 0/1 transaction sequence: summed over all 2^n
    sequences (grouped by their (x, t_x)) it gives 1."""
    model = BetaGeoBetaBinomModel().set_params(PARAMS)
    for n in (1, 4, 9):
        patterns = _patterns(n)
        assert patterns["sequences"].sum() == 2**n
        counts = patterns["sequences"].to_numpy(float)
        x, t_x = patterns["x"].to_numpy(float), patterns["t_x"].to_numpy(float)
        per_row = _loglik_and_grad(np.log(list(PARAMS.values())), x, t_x, np.full(x.size, n))[0]
        assert float(np.exp(per_row) @ counts) == pytest.approx(1.0, abs=1e-12)
        # log_likelihood weights the same rows.
        assert model.log_likelihood(x, t_x, np.full(x.size, n), counts) == pytest.approx(
            float(per_row @ counts)
        )


def test_analytic_gradient() -> None:
    patterns = _patterns(7)
    x, t_x = patterns["x"].to_numpy(float), patterns["t_x"].to_numpy(float)
    n = np.full(x.size, 7.0)
    w = np.random.default_rng(0).uniform(0.5, 3.0, x.size)
    theta = np.log([0.8, 1.7, 0.4, 3.1])

    def total(th: np.ndarray) -> float:
        return float(_loglik_and_grad(th, x, t_x, n)[0] @ w)

    grad = _loglik_and_grad(theta, x, t_x, n)[1].T @ w
    np.testing.assert_allclose(grad, approx_fprime(theta, total, 1e-7), rtol=1e-5, atol=1e-4)


def _simulate(params: dict[str, float], n: int, horizon: int, size: int, seed: int) -> dict:
    """Donors drawn from the BG/BB story over n + horizon opportunities."""
    rng = np.random.default_rng(seed)
    p = rng.beta(params["alpha"], params["beta"], size)
    theta = rng.beta(params["gamma"], params["delta"], size)
    # The first opportunity whose start the donor does not survive (1-based).
    death = rng.geometric(theta)
    period = np.arange(1, n + horizon + 1)
    alive = period[None, :] < death[:, None]
    buys = alive & (rng.random((size, n + horizon)) < p[:, None])
    past, future = buys[:, :n], buys[:, n:]
    x = past.sum(axis=1)
    t_x = np.where(x > 0, n - np.argmax(past[:, ::-1], axis=1), 0)
    return {
        "x": x.astype(float),
        "t_x": t_x.astype(float),
        "n": np.full(size, float(n)),
        "future": future.sum(axis=1).astype(float),
        "alive_next": death > n + 1,
    }


def test_predictions_match_monte_carlo(assert_calibrated: Callable[..., None]) -> None:
    sim = _simulate(PARAMS, n=6, horizon=5, size=300_000, seed=4)
    model = BetaGeoBetaBinomModel().set_params(PARAMS)
    rows = sim["x"], sim["t_x"], sim["n"]
    assert_calibrated(model.expected_purchases(5, *rows), sim["future"])
    assert_calibrated(model.p_alive(*rows), sim["alive_next"].astype(float))


def test_fit_recovers_simulated_parameters_and_weights_equal_rows() -> None:
    sim = _simulate(PARAMS, n=6, horizon=0, size=50_000, seed=9)
    rows = sim["x"], sim["t_x"], sim["n"]
    model = BetaGeoBetaBinomModel().fit(*rows)
    for name, value in PARAMS.items():
        assert model.params_[name] == pytest.approx(value, rel=0.15), name
    table = pd.DataFrame({"x": sim["x"], "t_x": sim["t_x"], "n": sim["n"]}).value_counts()
    table = table.reset_index()
    weighted = BetaGeoBetaBinomModel().fit(
        table["x"], table["t_x"], table["n"], weights=table["count"]
    )
    for name, value in model.params_.items():
        assert weighted.params_[name] == pytest.approx(value, rel=1e-6), name


def test_forecast_horizons_and_paper_closed_form() -> None:
    """The term-by-term sum equals eq. 13 as printed (``gamma != 1``), for mixed horizons."""
    model = BetaGeoBetaBinomModel().set_params(PARAMS)
    x, t_x, n = np.array([0, 3, 6, 2]), np.array([0, 5, 6, 2]), np.array([6, 6, 6, 10])
    np.testing.assert_array_equal(model.expected_purchases(0, x, t_x, n), 0.0)
    a, b, g, d = PARAMS.values()
    lik = np.exp(_loglik_and_grad(np.log([a, b, g, d]), x * 1.0, t_x * 1.0, n * 1.0)[0])
    for horizon in (1, 5, 30):
        closed = (
            np.exp(betaln(a + x + 1, b + n - x) - betaln(a, b))
            / lik
            * d
            / (g - 1)
            * np.exp(gammaln(g + d) - gammaln(1 + d))
            * (
                np.exp(gammaln(1 + d + n) - gammaln(g + d + n))
                - np.exp(gammaln(1 + d + n + horizon) - gammaln(g + d + n + horizon))
            )
        )
        np.testing.assert_allclose(model.expected_purchases(horizon, x, t_x, n), closed, rtol=1e-10)
    one_by_one = np.column_stack([model.expected_purchases(h, x, t_x, n) for h in range(1, 8)])
    assert np.all(np.diff(one_by_one, axis=1) > 0)
    mixed = model.expected_purchases([1, 3, 5, 7], x, t_x, n)
    np.testing.assert_allclose(mixed, one_by_one[np.arange(4), [0, 2, 4, 6]])


def test_errors() -> None:
    with pytest.raises(NotFittedError):
        BetaGeoBetaBinomModel().p_alive([0], [0], [6])
    with pytest.raises(InsufficientDataError, match="at least one repeat"):
        BetaGeoBetaBinomModel().fit([0] * 5, [0] * 5, [6] * 5)
    with pytest.raises(ConfigError, match="recency"):
        BetaGeoBetaBinomModel().fit([2, 1, 0, 1], [1, 1, 0, 1], [6, 6, 6, 6])
    with pytest.raises(ConfigError, match="recency = 0 when frequency = 0"):
        BetaGeoBetaBinomModel().fit([0, 1, 0, 1], [3, 1, 0, 1], [6, 6, 6, 6])
    with pytest.raises(ConfigError, match="whole numbers"):
        BetaGeoBetaBinomModel().fit([0.5, 1, 0, 1], [1, 1, 0, 1], [6, 6, 6, 6])
    model = BetaGeoBetaBinomModel().set_params(PARAMS)
    with pytest.raises(ConfigError, match="n_future_periods"):
        model.expected_purchases(2.5, [1], [1], [6])
    with pytest.raises(ConfigError, match="positive"):
        BetaGeoBetaBinomModel().set_params(PARAMS | {"delta": -1.0})
