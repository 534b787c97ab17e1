"""Backtests on a small synthetic store with toy models (see conftest)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import (
    BacktestResult,
    ModelResult,
    backtest,
    data_end,
    default_cutoff,
)
from ltvcast.evaluation.metrics import METRICS, evaluate
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.timeframe import Horizon, parse_as_of

CUTOFF = pd.Timestamp("2023-06-30 23:59:59")
H = Horizon(13, "w")
METRIC_NAMES = [name for name, _, _ in METRICS]


def _hand_labels(data: CustomerData, cutoff: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Spend and distinct purchase days per customer seen up to the cutoff."""
    tx = data.transactions
    seen = np.sort(tx.loc[tx["timestamp"] <= cutoff, "customer_id"].unique())
    window = tx[(tx["timestamp"] > cutoff) & (tx["timestamp"] <= end)]
    value = window.groupby("customer_id")["amount"].sum()
    days = window.assign(day=window["timestamp"].dt.date).groupby("customer_id")["day"].nunique()
    return pd.DataFrame({"value": value, "purchases": days}).reindex(seen).fillna(0.0)


def test_backtest_scores_against_the_horizon_after_the_cutoff(
    store: CustomerData, toy: SimpleNamespace
) -> None:
    lines: list[str] = []
    result = backtest(store, CUTOFF, H, [toy.rate(), toy.flat()], progress=lines.append)
    expected = _hand_labels(store, CUTOFF, CUTOFF + pd.Timedelta(weeks=13))
    assert result.n_customers == len(expected)
    np.testing.assert_allclose(result.actuals["value"], expected["value"])
    np.testing.assert_allclose(result.actuals["purchases"], expected["purchases"])
    assert lines == ["backtesting rate", "backtesting flat"]

    rate = result.results[0]
    assert rate.error is None and rate.fit_seconds >= 0 and rate.predict_seconds >= 0
    assert rate.predictions is not None and len(rate.predictions) == result.n_customers
    reference = evaluate(
        expected["value"].to_numpy(),
        rate.predictions["predicted_value"].to_numpy(),
        actual_purchases=expected["purchases"].to_numpy(),
        p_active=rate.predictions["p_active"].to_numpy(),
    )
    assert rate.metrics == pytest.approx(reference, nan_ok=True)

    table = result.table()
    assert list(table.index) == ["rate", "flat"]
    assert list(table.columns) == [*METRIC_NAMES, "fit_s", "predict_s"]
    assert table.loc["rate", "normalized_gini"] > 0.5 > table.loc["flat", "normalized_gini"]
    assert result.best() == "rate"
    assert result.best("mae") == ("rate" if table["mae"].idxmin() == "rate" else "flat")


def test_duplicate_names_are_numbered(store: CustomerData, toy: SimpleNamespace) -> None:
    result = backtest(store, CUTOFF, H, [toy.rate(), toy.rate(scale=2.0), toy.inverse()])
    assert [r.name for r in result.results] == ["rate", "rate#2", "inverse"]
    table = result.table()
    # Scaling the forecast keeps its ranking and changes its errors.
    assert table.loc["rate", "normalized_gini"] == pytest.approx(
        table.loc["rate#2", "normalized_gini"]
    )
    assert table.loc["rate", "mae"] != table.loc["rate#2", "mae"]
    assert table.loc["inverse", "normalized_gini"] < 0


def test_insufficient_data_is_recorded_not_raised(
    store: CustomerData, toy: SimpleNamespace
) -> None:
    lines: list[str] = []
    result = backtest(store, CUTOFF, H, [toy.needs_history(), toy.rate()], progress=lines.append)
    table = result.table()
    assert "error" in table.columns
    assert table.loc["needs_history", "error"] == "needs_history needs 10000 days; got 545"
    assert table.loc["needs_history", METRIC_NAMES].isna().all()
    assert pd.isna(table.loc["rate", "error"])
    assert "needs_history skipped: needs_history needs 10000 days; got 545" in lines
    assert result.best() == "rate"


def test_rows_after_the_horizon_change_nothing_and_models_never_see_the_future(
    store: CustomerData, toy: SimpleNamespace
) -> None:
    end = CUTOFF + pd.Timedelta(weeks=13)
    early = CustomerData(store.transactions[store.transactions["timestamp"] <= end])
    future = pd.DataFrame(
        {
            "customer_id": ["c0000", "zzz_new"],
            "timestamp": [end + pd.Timedelta(seconds=1), end + pd.Timedelta(days=3)],
            "amount": [1e6, 5e5],
        }
    )
    late = CustomerData(pd.concat([early.transactions, future], ignore_index=True))
    toy.spy.seen.clear()
    a = backtest(early, CUTOFF, H, [toy.spy(), toy.flat()])
    b = backtest(late, CUTOFF, H, [toy.spy(), toy.flat()])
    assert max(toy.spy.seen) <= CUTOFF
    columns = [c for c in a.table().columns if c not in ("fit_s", "predict_s")]
    pd.testing.assert_frame_equal(a.table()[columns], b.table()[columns])
    pd.testing.assert_frame_equal(a.actuals, b.actuals)


def test_cutoff_too_late_raises_with_the_dates(store: CustomerData, toy: SimpleNamespace) -> None:
    with pytest.raises(InsufficientDataError, match=r"ends at 2023-12-31 23:59.*needs data to"):
        backtest(store, pd.Timestamp("2023-11-01"), H, [toy.rate()])


def test_default_cutoff_and_day_resolution_end(store: CustomerData, toy: SimpleNamespace) -> None:
    last = store.last_timestamp()
    assert default_cutoff(store, H) == last - pd.Timedelta(weeks=13)
    assert data_end(store) == pd.Timestamp("2023-12-31 23:59:59.999999")
    # A date cutoff (end of day) whose horizon ends on the last recorded day is allowed,
    # as in CDNOW's "calibration to 1997-09-30, 39 weeks after" protocol.
    day_data = CustomerData(
        store.transactions.assign(timestamp=store.transactions["timestamp"].dt.floor("D"))
    )
    cutoff = parse_as_of("2023-10-01", day_data.last_timestamp())
    result = backtest(day_data, cutoff, Horizon(91, "d"), [toy.rate()])
    assert result.horizon.end(cutoff) > day_data.last_timestamp()
    assert result.results[0].error is None


def test_no_customer_before_the_cutoff(store: CustomerData, toy: SimpleNamespace) -> None:
    with pytest.raises(InsufficientDataError, match="no customer"):
        backtest(store, pd.Timestamp("2021-01-01"), H, [toy.rate()])


def _result(scores: dict[str, tuple[float, float]]) -> BacktestResult:
    """A result with given (normalized Gini, MAE) per model."""
    results = []
    for name, (gini, error) in scores.items():
        metrics = dict.fromkeys(METRIC_NAMES, 0.0) | {"normalized_gini": gini, "mae": error}
        results.append(ModelResult(name, metrics, 0.0, 0.0, None))
    return BacktestResult(pd.Timestamp("2024-01-01"), H, 10, pd.DataFrame(), results)


def test_best_breaks_near_ties_by_mae() -> None:
    result = _result({"a": (0.700, 5.0), "b": (0.695, 4.0), "c": (0.5, 1.0), "d": (0.69, 0.5)})
    assert result.ranking() == ["b", "a", "d", "c"]
    assert result.best() == "b"
    assert result.ranking(tolerance=0.0) == ["a", "b", "d", "c"]
    assert result.best("mae") == "d"


def test_best_errors() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'gini'"):
        _result({"a": (0.7, 1.0)}).best("gini")
    empty = BacktestResult(
        pd.Timestamp("2024-01-01"), H, 10, pd.DataFrame(),
        [ModelResult("x", {}, 0.0, np.nan, None, "too short")],
    )  # fmt: skip
    with pytest.raises(InsufficientDataError, match="x: too short"):
        empty.best()


def test_clones_the_given_forecaster(store: CustomerData, toy: SimpleNamespace) -> None:
    model = toy.inverse(scale=3.0)
    result = backtest(store, CUTOFF, H, [model])
    assert not hasattr(model, "days_")
    assert result.results[0].error is None
    assert model.get_params() == {"scale": 3.0, "min_days": 0}
