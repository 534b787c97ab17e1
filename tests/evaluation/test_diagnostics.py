"""BTYD diagnostics tables: the unconditional expectation against a simulated cohort and
FHL 2005 eq. 9, tracking and conditional expectations on the CDNOW sample, matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.diagnostics import (
    TRACKING_COLUMNS,
    conditional_expectations,
    expected_purchases_matrix,
    expected_repeat_purchases,
    p_alive_matrix,
    purchase_model,
    tracking_table,
)
from ltvcast.exceptions import ConfigError, NotFittedError
from ltvcast.features.rfm import rfm_summary
from ltvcast.models import create
from ltvcast.models.bgnbd import BetaGeoModel, ModifiedBetaGeoModel
from ltvcast.models.btyd import BTYDForecaster, PurchaseModel
from ltvcast.models.cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel
from ltvcast.models.pareto_nbd import ParetoNBDModel
from ltvcast.timeframe import parse_as_of, parse_horizon

AS_OF = parse_as_of("1997-09-30", None)
END = parse_horizon("39w").end(AS_OF)
#: Published CDNOW fits (weeks): BG/NBD (FHL 2005), Pareto/NBD (FHL note); the CNBD models
#: use the BG/NBD parameters at k = 2.
BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
MODELS: dict[str, PurchaseModel] = {
    "bgnbd": BetaGeoModel().set_params(BG),
    "mbgnbd": ModifiedBetaGeoModel().set_params(BG),
    "pnbd": ParetoNBDModel().set_params(PARETO),
    "bgcnbd": BetaGeoCNBDModel(k=2).set_params(BG),
    "mbgcnbd": ModifiedBetaGeoCNBDModel(k=2).set_params(BG),
}


def _simulated_repeat_purchases(
    name: str, u: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Repeat purchases in ``(0, u]`` of ``n`` fresh customers drawn from the model's story
    (customers x times)."""
    if name == "pnbd":
        rate = rng.gamma(PARETO["r"], 1 / PARETO["alpha"], n)
        lifetime = rng.exponential(1 / rng.gamma(PARETO["s"], 1 / PARETO["beta"], n))
        return rng.poisson(rate[:, None] * np.minimum(u[None, :], lifetime[:, None]))
    k = 2 if "cnbd" in name else 1
    rate = rng.gamma(BG["r"], 1 / BG["alpha"], n)
    p = np.clip(rng.beta(BG["a"], BG["b"], n), 1e-12, 1.0)
    # Purchases a customer lives to make: dropout after each repeat purchase (and, MBG, after
    # the first one too).
    lives = rng.geometric(p) - (1 if name.startswith("m") else 0)
    # Poisson events at the times u (independent increments), every k-th one a purchase.
    steps = rng.poisson(rate[:, None] * np.diff(u, prepend=0.0)[None, :])
    return np.minimum(np.cumsum(steps, axis=1) // k, lives[:, None])


@pytest.mark.parametrize("name", list(MODELS))
def test_expected_repeat_purchases_match_a_simulated_cohort(name: str) -> None:
    u = np.array([1.0, 5.0, 39.0, 78.0])
    draws = _simulated_repeat_purchases(name, u, 400_000, np.random.default_rng(7))
    mean, se = draws.mean(axis=0), draws.std(axis=0) / np.sqrt(len(draws))
    expected = expected_repeat_purchases(MODELS[name], u)
    assert np.all(np.abs(expected - mean) < 5 * se + 1e-3), (expected, mean, se)
    assert np.all(np.diff(expected) > 0)


def test_bgnbd_unconditional_expectation_is_fhl_equation_9() -> None:
    r, alpha, a, b = BG.values()
    u = np.array([[0.5, 10.0], [39.0, 300.0]])
    z = u / (alpha + u)
    eq9 = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + u)) ** r * hyp2f1(r, b, a + b - 1, z))
    np.testing.assert_allclose(expected_repeat_purchases(MODELS["bgnbd"], u), eq9, rtol=1e-10)
    assert expected_repeat_purchases(MODELS["bgnbd"], 0.0) == 0.0


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    """The CDNOW sample, plus rows after the holdout that no table may see."""
    later = pd.DataFrame(
        {
            "customer_id": ["1", "new"],
            "timestamp": pd.to_datetime(["1998-07-01", "1998-07-02"]),
            "amount": [10.0, 20.0],
        }
    )
    return CustomerData(pd.concat([cdnow_sample_tx, later], ignore_index=True))


@pytest.fixture(scope="module")
def textbook(cdnow: CustomerData) -> BTYDForecaster:
    """BG/NBD as FHL (2005) fitted it: 39 weeks of calibration."""
    forecaster = BTYDForecaster(spend_days="repeat", purchase_model="bgnbd")
    return forecaster.fit(cdnow, AS_OF, parse_horizon("39w"))


@pytest.fixture(scope="module")
def tracking(textbook: BTYDForecaster, cdnow: CustomerData) -> pd.DataFrame:
    return tracking_table(textbook, cdnow, AS_OF, END)


@pytest.mark.realdata
def test_tracking_table_on_cdnow(
    tracking: pd.DataFrame, textbook: BTYDForecaster, cdnow: CustomerData
) -> None:
    assert list(tracking.columns) == list(TRACKING_COLUMNS)
    # 78 weeks from 1997-01-01 (the first week ends on Jan 7), 39 of them held out.
    assert len(tracking) == 78 and int(tracking["holdout"].sum()) == 39
    assert (tracking["days"] == 7).all()
    assert tracking["period_end"].iloc[0] == pd.Timestamp("1997-01-07")
    assert tracking.loc[~tracking["holdout"], "period_end"].iloc[-1] == pd.Timestamp("1997-09-30")
    assert tracking["period_end"].iloc[-1] == pd.Timestamp("1998-06-30")
    calibration = tracking.loc[~tracking["holdout"]].iloc[-1]
    rfm = rfm_summary(cdnow.transactions, AS_OF)
    holdout = horizon_labels(cdnow.transactions, rfm.index, AS_OF, END)["purchases"].sum()
    assert calibration["actual_cumulative"] == rfm["frequency"].sum() == 2457
    assert tracking["actual_cumulative"].iloc[-1] == 2457 + holdout
    # The fitted model reproduces the calibration total (FHL 2005, fig. 3: the curves meet).
    assert calibration["expected_cumulative"] == pytest.approx(2457, rel=0.02)
    np.testing.assert_allclose(tracking["actual"].cumsum(), tracking["actual_cumulative"])
    np.testing.assert_allclose(tracking["expected"].cumsum(), tracking["expected_cumulative"])
    # The convolution is the sum of every customer's own curve, week by week.
    model = textbook.bgnbd_
    for row in tracking.iloc[[0, 20, 38, 60, 77]].itertuples():
        weeks = (row.period_end - rfm["first_purchase"]).dt.days.clip(lower=0) / 7.0
        by_customer = model.expected_purchases(weeks, 0 * weeks, 0 * weeks, 0 * weeks)
        assert row.expected_cumulative == pytest.approx(by_customer.sum(), rel=1e-9)


@pytest.mark.realdata
def test_tracking_table_counts_weekly_repeat_days_by_hand(
    tracking: pd.DataFrame, cdnow: CustomerData
) -> None:
    tx = cdnow.transactions
    days = tx.assign(day=tx["timestamp"].dt.floor("D")).drop_duplicates(["customer_id", "day"])
    first = days.groupby("customer_id")["day"].transform("min")
    cohort = days["customer_id"].isin(rfm_summary(tx, AS_OF).index)
    repeat = days.loc[cohort & (days["day"] > first) & (days["day"] <= END), "day"]
    week = (repeat - pd.Timestamp("1997-01-01")).dt.days // 7
    by_week = week.value_counts().reindex(range(78), fill_value=0)
    np.testing.assert_array_equal(tracking["actual"], by_week.to_numpy())


@pytest.mark.realdata
def test_conditional_expectations_on_cdnow(textbook: BTYDForecaster, cdnow: CustomerData) -> None:
    table = conditional_expectations(textbook, cdnow, AS_OF, END)
    assert table["frequency"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["customers"].sum() == 2357 and table["customers"].iloc[0] == 1411
    rfm = rfm_summary(cdnow.transactions, AS_OF)
    group = rfm["frequency"].clip(upper=7)
    expected = textbook.bgnbd_.expected_purchases(39.0, rfm["frequency"], rfm["recency"], rfm["T"])
    actual = horizon_labels(cdnow.transactions, rfm.index, AS_OF, END)["purchases"]
    np.testing.assert_allclose(table["expected"], pd.Series(expected).groupby(group.values).mean())
    np.testing.assert_allclose(table["actual"], actual.groupby(group.values).mean())
    # FHL 2005, fig. 4: the one-time buyers' 0.24 actual vs 0.23 expected holdout purchases.
    assert table["actual"].iloc[0] == pytest.approx(0.237, abs=1e-3)
    assert table["expected"].iloc[0] == pytest.approx(0.225, abs=2e-3)
    wider = conditional_expectations(textbook, cdnow, AS_OF, END, max_frequency=2)
    assert wider["frequency"].tolist() == ["0", "1", "2+"]
    assert wider["customers"].iloc[-1] == table["customers"].iloc[2:].sum()


@pytest.mark.realdata
def test_tables_in_days_equal_tables_in_weeks(
    textbook: BTYDForecaster, cdnow: CustomerData, tracking: pd.DataFrame
) -> None:
    """A BG/NBD in days is the weekly one with alpha x 7: every table is unchanged."""
    params = textbook.bgnbd_.params_
    daily = BetaGeoModel().set_params({**params, "alpha": params["alpha"] * 7})
    pd.testing.assert_frame_equal(
        tracking_table(daily, cdnow, AS_OF, END, time_unit_days=1.0), tracking
    )
    pd.testing.assert_frame_equal(
        conditional_expectations(daily, cdnow, AS_OF, END, time_unit_days=1.0),
        conditional_expectations(textbook, cdnow, AS_OF, END),
    )


@pytest.mark.realdata
def test_tracking_without_holdout(
    textbook: BTYDForecaster, cdnow: CustomerData, tracking: pd.DataFrame
) -> None:
    only_calibration = tracking_table(textbook, cdnow, AS_OF, AS_OF)
    pd.testing.assert_frame_equal(only_calibration, tracking.loc[~tracking["holdout"]])


def test_tracking_periods_end_on_the_cut_off_day() -> None:
    """Periods are whole days; a purchase later on the cut-off's day is a holdout one."""
    times = ["2024-01-01 10:00", "2024-01-03 09:00", "2024-01-10 09:00", "2024-01-10 15:00"]
    times += ["2024-01-12 08:00", "2024-01-20 08:00", "2024-01-09 08:00"]
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "a", "a", "b"],
            "timestamp": pd.to_datetime(times),
            "amount": [10.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0],
        }
    )
    table = tracking_table(
        MODELS["bgnbd"],
        CustomerData(tx),
        pd.Timestamp("2024-01-10 12:00"),
        pd.Timestamp("2024-01-20 23:00"),
    )
    assert table["period_end"].dt.strftime("%m-%d").tolist() == ["01-03", "01-10", "01-17", "01-20"]
    assert table["days"].tolist() == [7, 7, 7, 3]
    assert table["holdout"].tolist() == [False, False, True, True]
    # a: repeats on Jan 3, Jan 10 (morning); Jan 10 (afternoon) and 12; Jan 20. b: none.
    assert table["actual"].tolist() == [1.0, 1.0, 2.0, 1.0]
    weeks = table["period_end"].to_numpy() - np.array([["2024-01-01"], ["2024-01-09"]], "M8[D]")
    by_customer = expected_repeat_purchases(
        MODELS["bgnbd"], np.clip(weeks / np.timedelta64(1, "D"), 0, None) / 7.0
    )
    np.testing.assert_allclose(table["expected_cumulative"], by_customer.sum(axis=0))


def test_purchase_model_of_forecasters() -> None:
    assert purchase_model(MODELS["pnbd"]) is MODELS["pnbd"]
    with pytest.raises(ConfigError, match="'baseline' has no BTYD purchase model"):
        purchase_model(create("baseline"))
    with pytest.raises(NotFittedError):
        purchase_model(create("pnbd"))
    with pytest.raises(ConfigError, match="end must not be before as_of"):
        tracking_table(MODELS["bgnbd"], CustomerData(pd.DataFrame()), END, AS_OF)


@pytest.mark.parametrize("name", list(MODELS))
def test_p_alive_matrix(name: str) -> None:
    model = MODELS[name]
    matrix = p_alive_matrix(model, 38.86, max_frequency=12, recency_step=2.0)
    assert matrix.shape == (13, 20) and matrix.index.name == "frequency"
    assert matrix.columns.tolist() == [2.0 * i for i in range(20)]
    # Only possible cells hold numbers: x = 0 at recency 0, x > 0 at recency > 0.
    expected_nan = (matrix.index.to_numpy()[:, None] > 0) != (matrix.columns.to_numpy() > 0)
    np.testing.assert_array_equal(matrix.isna().to_numpy(), expected_nan)
    assert matrix.loc[3, 10.0] == pytest.approx(model.p_alive([3.0], [10.0], [38.86])[0])
    repeat = matrix.iloc[1:, 1:].to_numpy()
    assert np.all((repeat > 0) & (repeat <= 1))
    # A recent last purchase means more likely alive; more purchases long ago, less likely.
    assert np.all(np.diff(repeat, axis=1) > 0)
    assert np.all(np.diff(repeat[:, 0]) < 0)


def test_expected_purchases_matrix() -> None:
    model = MODELS["bgnbd"]
    matrix = expected_purchases_matrix(model, 30.0, 10.0, max_frequency=5, recency_step=5.0)
    assert matrix.shape == (6, 7)
    assert matrix.loc[0, 0.0] == pytest.approx(model.expected_purchases(10.0, [0], [0], [30])[0])
    assert matrix.loc[4, 25.0] == pytest.approx(model.expected_purchases(10.0, [4], [25], [30])[0])
    assert np.all(np.diff(matrix.iloc[1:, 1:].to_numpy(), axis=1) > 0)
    for bad in ({"T": 0.0}, {"T": 5.0, "recency_step": 6.0}, {"T": 5.0, "max_frequency": -1}):
        with pytest.raises(ConfigError):
            p_alive_matrix(model, **bad)  # type: ignore[arg-type]
