"""Horizon curves, P(alive) at a future time, discounted value and the new-customer forecast
of the BTYD models (:mod:`ltvcast.models.clv`, ``p_alive_at``, ``BTYDForecaster.predict_curve``
and ``new_customer``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ParetoNBDFitter

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.models.bgnbd import BetaGeoModel, ModifiedBetaGeoModel
from ltvcast.models.btyd import BTYDForecaster, ParetoNBDForecaster
from ltvcast.models.btyd_cal import CalibratedBTYDForecaster
from ltvcast.models.clv import discounted_purchases
from ltvcast.models.cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel
from ltvcast.models.pareto_nbd import ParetoNBDModel
from ltvcast.timeframe import parse_as_of, parse_horizon, parse_horizons

#: Published CDNOW parameters (weeks): BG/NBD (FHL 2005) and Pareto/NBD (FHL note).
BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
#: Customers (x, t_x, T) in weeks: one-time buyers old and new, light, heavy.
X = np.array([0.0, 0.0, 1.0, 3.0, 10.0, 50.0])
TX = np.array([0.0, 0.0, 10.0, 20.0, 30.0, 38.0])
T = np.array([39.0, 5.0, 39.0, 39.0, 39.0, 39.0])


def models() -> list[object]:
    return [
        BetaGeoModel().set_params(BG),
        ModifiedBetaGeoModel().set_params(BG),
        ParetoNBDModel().set_params(PNBD),
        BetaGeoCNBDModel(3).set_params(BG),
        ModifiedBetaGeoCNBDModel(2).set_params(BG),
    ]


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_p_alive_at_starts_at_p_alive_and_falls(model: BetaGeoModel) -> None:
    assert np.allclose(model.p_alive_at(0.0, X, TX, T), model.p_alive(X, TX, T), atol=1e-12)
    curve = np.array([model.p_alive_at(t, X, TX, T) for t in (0.0, 4.0, 13.0, 52.0, 520.0)])
    assert np.all(np.diff(curve, axis=0) <= 1e-12)
    assert np.all(curve[-1] > 0)


@pytest.mark.parametrize("k1", [BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel])
def test_p_alive_at_of_k1_equals_the_closed_form(k1: type[BetaGeoCNBDModel]) -> None:
    """The (M)BG/CNBD-k series at k = 1 and the BG/NBD's hypergeometric form agree."""
    closed = (BetaGeoModel if k1 is BetaGeoCNBDModel else ModifiedBetaGeoModel)().set_params(BG)
    series = k1(1).set_params(BG)
    for t in (1.0, 39.0, 300.0):
        assert np.allclose(
            series.p_alive_at(t, X, TX, T), closed.p_alive_at(t, X, TX, T), rtol=1e-9
        )


def test_p_alive_at_matches_simulated_new_customers() -> None:
    """Monte Carlo of customers who have just made a first purchase (x = t_x = T = 0)."""
    rng = np.random.default_rng(7)
    n, t = 400_000, 20.0
    lam = rng.gamma(BG["r"], 1.0 / BG["alpha"], n)
    p = rng.beta(BG["a"], BG["b"], n)
    bg_alive = rng.random(n) < (1.0 - p) ** rng.poisson(lam * t)  # no dropout at any purchase
    mbg_alive = bg_alive & (rng.random(n) > p)  # nor at the first one
    erlang3_alive = rng.random(n) < (1.0 - p) ** (rng.poisson(lam * t) // 3)
    mu = rng.gamma(PNBD["s"], 1.0 / PNBD["beta"], n)
    pnbd_alive = rng.exponential(1.0 / mu) > t
    se = 0.5 / np.sqrt(n)
    cases = [
        (BetaGeoModel().set_params(BG), bg_alive),
        (ModifiedBetaGeoModel().set_params(BG), mbg_alive),
        (BetaGeoCNBDModel(3).set_params(BG), erlang3_alive),
        (ParetoNBDModel().set_params(PNBD), pnbd_alive),
    ]
    for model, alive in cases:
        assert model.p_alive_at(t, 0.0, 0.0, 0.0)[0] == pytest.approx(alive.mean(), abs=5 * se)


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_discounted_purchases_is_the_discounted_sum_of_increments(model: BetaGeoModel) -> None:
    t, rate = 104.0, 0.15
    grid = np.linspace(0.0, t, 2001)
    rows = [np.tile(v, grid.size) for v in (X, TX, T)]
    curve = model.expected_purchases(np.repeat(grid, X.size), *rows).reshape(grid.size, X.size)
    mid = 0.5 * (grid[1:] + grid[:-1]) * 7.0 / 365.25
    riemann = (np.exp(-rate * mid)[:, None] * np.diff(curve, axis=0)).sum(axis=0)
    quadrature = discounted_purchases(model, t, X, TX, T, rate=rate, unit_days=7.0)
    assert np.allclose(quadrature, riemann, rtol=1e-5)
    undiscounted = model.expected_purchases(t, X, TX, T)
    assert np.array_equal(
        discounted_purchases(model, t, X, TX, T, rate=0.0, unit_days=7.0), undiscounted
    )
    assert np.all(quadrature < undiscounted)


@pytest.mark.parametrize("rate", [-0.1, 11.0, float("nan")])
def test_discount_rate_out_of_range_is_refused(rate: float) -> None:
    with pytest.raises(ConfigError, match="discount rate"):
        discounted_purchases(models()[0], 10.0, X, TX, T, rate=rate, unit_days=7.0)


def test_new_customer_curve_matches_lifetimes_unconditional_expectation() -> None:
    """lifetimes' ``expected_number_of_purchases_up_to_time`` is the same population curve."""
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(BG)
    pnf = ParetoNBDFitter()
    pnf.params_ = pd.Series(PNBD)
    for ours, theirs in (
        (BetaGeoModel().set_params(BG), bgf),
        (ParetoNBDModel().set_params(PNBD), pnf),
    ):
        for t in (1.0, 13.0, 78.0):
            expected = float(theirs.expected_number_of_purchases_up_to_time(t))
            assert ours.expected_purchases(t, 0.0, 0.0, 0.0)[0] == pytest.approx(expected, rel=1e-8)


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    return CustomerData(cdnow_sample_tx)


AS_OF = parse_as_of("1997-09-30", pd.Timestamp("1998-06-30"))


@pytest.mark.parametrize("cls", [BTYDForecaster, ParetoNBDForecaster, CalibratedBTYDForecaster])
def test_curve_agrees_with_predict_and_is_monotone(
    cls: type[BTYDForecaster], cdnow: CustomerData
) -> None:
    forecaster = cls().fit(cdnow, AS_OF, parse_horizon("39w"))
    horizons = parse_horizons("52w,4w,39w,2y")
    curve = forecaster.predict_curve(cdnow, AS_OF, horizons, discount_rate=0.1)
    assert [str(h) for h in horizons] == ["4w", "39w", "52w", "2y"]
    predicted = forecaster.predict(cdnow, AS_OF).set_index("customer_id")
    assert curve.index.equals(predicted.index)
    assert np.allclose(curve["value_39w"], predicted["predicted_value"], rtol=1e-12)
    assert np.allclose(curve["purchases_39w"], predicted["predicted_purchases"], rtol=1e-12)
    for family in ("purchases", "value", "discounted_value"):
        block = curve[[f"{family}_{h}" for h in horizons]].to_numpy()
        assert np.all(np.diff(block, axis=1) >= -1e-12), family
    alive = curve[[f"p_alive_{h}" for h in horizons]].to_numpy()
    assert np.all(np.diff(alive, axis=1) <= 1e-12)
    assert np.all(curve["discounted_value_2y"] <= curve["value_2y"])


def test_new_customer_is_the_fresh_customer_curve(cdnow: CustomerData) -> None:
    forecaster = BTYDForecaster(spend_days="repeat", purchase_model="bgnbd").fit(
        cdnow, AS_OF, parse_horizon("39w")
    )
    table = forecaster.new_customer(parse_horizons("39w,1y"), discount_rate=0.05)
    assert list(table.index) == ["39w", "1y"]
    assert list(table.columns) == ["purchases", "value", "p_alive", "discounted_value"]
    purchases = forecaster.bgnbd_.expected_purchases(39.0, 0.0, 0.0, 0.0)[0]
    assert table.loc["39w", "purchases"] == pytest.approx(purchases, rel=1e-12)
    spend = forecaster.gamma_gamma_.population_mean
    assert table.loc["39w", "value"] == pytest.approx(purchases * spend, rel=1e-12)
    assert table.loc["39w", "p_alive"] == pytest.approx(
        forecaster.bgnbd_.p_alive_at(39.0, 0.0, 0.0, 0.0)[0], rel=1e-12
    )
    assert table.loc["1y", "discounted_value"] < table.loc["1y", "value"]


def test_curve_before_fit_is_refused(cdnow: CustomerData) -> None:
    from ltvcast.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        BTYDForecaster().predict_curve(cdnow, AS_OF, parse_horizons("4w"))
