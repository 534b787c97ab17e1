"""Fixtures shared by the BTYD model tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData


@pytest.fixture(scope="module")
def cdnow_after_as_of(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    """The CDNOW sample plus purchases, a return, a new customer and an event after
    1997-09-30 (the as-of of the leakage tests): none of them may change a forecast."""
    later = pd.DataFrame(
        {
            "customer_id": ["1", "2", "new-after"],
            "timestamp": pd.to_datetime(
                ["1997-10-01 00:00:01", "1997-10-01 00:00:00", "1997-10-02 00:00:00"]
            ),
            "amount": [1000.0, -50.0, 20.0],
        }
    ).astype(cdnow_sample_tx.dtypes.to_dict())
    events = pd.DataFrame(
        {"customer_id": ["1"], "timestamp": pd.to_datetime(["1997-11-01"]), "event_type": ["view"]}
    )
    return CustomerData(pd.concat([cdnow_sample_tx, later], ignore_index=True), events=events)


@pytest.fixture(scope="session")
def grocery_elog(data_dir: Path) -> pd.DataFrame:
    """BTYDplus' ``groceryElog``: ``cust`` (str) and ``date`` of 10,483 transactions."""
    return pd.read_csv(
        data_dir / "grocery_btydplus" / "groceryElog.csv",
        dtype={"cust": str},
        parse_dates=["date"],
    )


@pytest.fixture(scope="session")
def grocery_cbs(grocery_elog: pd.DataFrame) -> pd.DataFrame:
    """The vignette's ``elog2cbs(groceryElog, T.cal = "2006-12-31")``, built its way.

    BTYDplus 1.2.0 ``elog2cbs``: transactions of one customer and date merge into one; ``x``
    counts the calibration transactions after the first, ``t_x`` and ``T_cal`` run from the
    first date (to the last one, to 2006-12-31) in weeks, ``litt`` sums the logs of the
    inter-transaction times (weeks), ``x_star`` counts the transactions in (2006-12-31,
    2007-12-30]. The log has one row per customer-day, so transactions are purchase days.
    """
    cal_end, tot_end = pd.Timestamp("2006-12-31"), pd.Timestamp("2007-12-30")
    elog = grocery_elog.drop_duplicates().sort_values(["cust", "date"])
    weeks = (elog["date"] - elog.groupby("cust")["date"].transform("min")).dt.days / 7.0
    elog = elog.assign(t=weeks, itt=weeks.groupby(elog["cust"]).diff())
    cal = elog[elog["date"] <= cal_end].groupby("cust")
    cbs = pd.DataFrame(
        {
            "x": cal.size() - 1.0,
            "t_x": cal["t"].max(),
            "litt": cal["itt"].agg(lambda itt: np.log(itt[itt > 0]).sum()),
            "T_cal": (cal_end - cal["date"].min()).dt.days / 7.0,
        }
    )
    holdout = elog[(elog["date"] > cal_end) & (elog["date"] <= tot_end)]
    cbs["x_star"] = holdout.groupby("cust").size().reindex(cbs.index).fillna(0.0)
    return cbs


@pytest.fixture(scope="session")
def assert_calibrated() -> Callable[..., None]:
    """``check(pred, observed, n_bins=10)``: predictions agree with simulated outcomes
    within 5 standard errors in every quantile bin of the prediction."""

    def check(pred: np.ndarray, observed: np.ndarray, n_bins: int = 10) -> None:
        edges = np.unique(np.quantile(pred, np.linspace(0, 1, n_bins + 1)[1:-1]))
        bins = np.searchsorted(edges, pred, side="right")
        frame = pd.DataFrame({"pred": pred, "obs": observed, "bin": bins}).groupby("bin")
        means = frame.mean()
        se = frame["obs"].std().fillna(0.0) / np.sqrt(frame.size())
        assert (np.abs(means["pred"] - means["obs"]) <= 5 * se + 1e-3).all(), means

    return check


def covariate_profiles(n: int, seed: int) -> pd.DataFrame:
    """Covariates of ``n`` customers for the covariate models' tests: ``z`` (standard
    normal), ``member`` (binary, 30%) and ``noise`` (standard normal, acting on nothing)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "z": rng.normal(size=n),
            "member": (rng.uniform(size=n) < 0.3).astype(float),
            "noise": rng.normal(size=n),
        }
    )
