"""``auto``: the inner backtest picks the clearly better model, says why, and round-trips."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import backtest
from ltvcast.evaluation.metrics import METRICS
from ltvcast.evaluation.selection import AutoForecaster
from ltvcast.exceptions import ConfigError, InsufficientDataError, NotFittedError
from ltvcast.models import create
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import Horizon

AS_OF = pd.Timestamp("2023-12-31 23:59:59")
H = Horizon(13, "w")


def test_picks_the_clearly_better_model_and_says_why(
    store: CustomerData, toy_registry: None
) -> None:
    auto = AutoForecaster(candidates=("inverse", "rate", "flat", "missing")).fit(store, AS_OF, H)
    assert auto.choice_ == "rate"
    assert list(auto.inner_table_.index) == ["inverse", "rate", "flat"]
    gini = auto.inner_table_["normalized_gini"]
    assert gini["rate"] > 0.5 > gini["flat"] > gini["inverse"]
    assert auto.reason_.startswith(
        f"picked rate: inner backtest at 2023-10-01 (13 weeks, {store.customers().size} "
        f"customers): normalized Gini {gini['rate']:.3g} vs flat {gini['flat']:.3g}, inverse"
    )
    assert "skipped missing (cannot import" in auto.reason_
    # The winner is refitted on all the data to as_of and predictions are delegated to it.
    assert auto.winner_.as_of_ == AS_OF
    pd.testing.assert_frame_equal(auto.predict(store, AS_OF), auto.winner_.predict(store, AS_OF))


def test_inner_backtest_stays_inside_the_training_data(
    store: CustomerData, toy: SimpleNamespace, toy_registry: None
) -> None:
    toy.spy.seen.clear()
    AutoForecaster(candidates=("spy",)).fit(store, pd.Timestamp("2023-06-30"), H)
    inner_cutoff = pd.Timestamp("2023-06-30") - pd.Timedelta(weeks=13)
    assert toy.spy.seen[:2] == [store.until(inner_cutoff).last_timestamp()] * 2
    assert max(toy.spy.seen) <= pd.Timestamp("2023-06-30")


def test_near_tie_goes_to_the_lower_mae(store: CustomerData, toy_registry: None) -> None:
    # Same ranking (identical Gini) but 3x the spend: the calibrated one wins whatever the order.
    for candidates in (("rate", "scaled"), ("scaled", "rate")):
        auto = AutoForecaster(candidates=candidates).fit(store, AS_OF, H)
        gini = auto.inner_table_["normalized_gini"]
        assert gini["rate"] == pytest.approx(gini["scaled"])
        assert auto.choice_ == "rate"
        assert "scaled is within 1% on normalized Gini, so the lower MAE decided" in auto.reason_


def test_short_history_uses_a_shorter_inner_horizon(
    store: CustomerData, toy: SimpleNamespace, toy_registry: None
) -> None:
    # 100 days of history and a 13-week horizon: the inner backtest uses 50 days.
    as_of = pd.Timestamp("2022-01-01") + pd.Timedelta(days=100)
    auto = AutoForecaster(candidates=("needs_history", "rate", "inverse"), max_mae_ratio=100.0)
    auto.fit(store, as_of, H)
    assert auto.choice_ == "rate"
    assert "uses 50 days" in auto.reason_
    assert "shorter than the horizon (13 weeks) plus 28 days" in auto.reason_
    assert "skipped needs_history (needs_history needs 10000 days; got 50)" in auto.reason_
    assert np.isnan(auto.inner_table_.loc["needs_history", "normalized_gini"])


def test_too_short_for_any_inner_backtest_falls_back_to_first_able(
    store: CustomerData, toy_registry: None
) -> None:
    as_of = pd.Timestamp("2022-01-20")
    auto = AutoForecaster(candidates=("needs_history", "flat", "rate")).fit(store, as_of, H)
    assert auto.choice_ == "flat"
    assert auto.inner_table_.empty
    assert "too short for an inner backtest" in auto.reason_
    assert "needs_history (needs_history needs 10000 days" in auto.reason_


def test_only_candidates_scored_in_the_inner_backtest_compete(
    store: CustomerData, toy_registry: None
) -> None:
    # late_bloomer trains on the full 729 days but not at the inner cutoff (638 days).
    auto = AutoForecaster(candidates=("late_bloomer", "inverse")).fit(store, AS_OF, H)
    assert auto.choice_ == "inverse"
    assert "skipped late_bloomer (late_bloomer needs 700 days; got 638)" in auto.reason_
    alone = AutoForecaster(candidates=("late_bloomer",)).fit(store, AS_OF, H)
    assert alone.choice_ == "late_bloomer"
    assert "no candidate could be scored, so the first candidate able to train" in alone.reason_


def test_nothing_trains(store: CustomerData, toy_registry: None) -> None:
    with pytest.raises(InsufficientDataError, match=r"no candidate could train.*needs_history"):
        AutoForecaster(candidates=("needs_history",)).fit(store, AS_OF, H)
    with pytest.raises(InsufficientDataError, match=r"no candidate model is available \(missing:"):
        AutoForecaster(candidates=("missing",)).fit(store, AS_OF, H)
    with pytest.raises(ConfigError, match="unknown metric"):
        AutoForecaster(candidates=("rate",), metric="r2").fit(store, AS_OF, H)
    with pytest.raises(ConfigError, match="its own candidate"):
        AutoForecaster(candidates=("auto",)).fit(store, AS_OF, H)


def test_quantiles_follow_the_winner(store: CustomerData, toy_registry: None) -> None:
    auto = AutoForecaster(candidates=("rate_q", "inverse"))
    assert auto.has_quantiles is False
    with pytest.raises(NotFittedError):
        auto.predict(store, AS_OF)
    auto.fit(store, AS_OF, H)
    assert auto.has_quantiles is True
    assert {"value_p10", "value_p90"} <= set(auto.predict(store, AS_OF).columns)
    assert AutoForecaster(candidates=("rate",)).fit(store, AS_OF, H).has_quantiles is False


def test_save_load_round_trip(store: CustomerData, toy_registry: None, tmp_path: Path) -> None:
    auto = AutoForecaster(candidates=("inverse", "rate_q", "missing")).fit(store, AS_OF, H)
    save_model(auto, tmp_path / "model")
    assert (tmp_path / "model" / "winner" / "rate.json").is_file()
    loaded, manifest = load_model(tmp_path / "model")
    assert isinstance(loaded, AutoForecaster)
    assert manifest["state"]["choice"] == "rate_q"
    assert (loaded.choice_, loaded.reason_, loaded.has_quantiles) == ("rate_q", auto.reason_, True)
    pd.testing.assert_frame_equal(loaded.inner_table_, auto.inner_table_)
    pd.testing.assert_frame_equal(loaded.predict(store, AS_OF), auto.predict(store, AS_OF))


def test_auto_in_a_backtest(store: CustomerData, toy_registry: None) -> None:
    result = backtest(
        store,
        pd.Timestamp("2023-06-30"),
        H,
        [create("rate"), AutoForecaster(candidates=("inverse", "rate"))],
    )
    table = result.table()
    assert table.loc["auto", "normalized_gini"] == pytest.approx(
        table.loc["rate", "normalized_gini"]
    )
    assert [name for name, _, _ in METRICS] == list(table.columns[: len(METRICS)])


@pytest.mark.realdata
def test_auto_with_registered_models_on_the_cdnow_sample(data_dir: Path) -> None:
    from ltvcast.data.datasets import load_cdnow_sample

    data, _ = load_cdnow_sample(data_dir)
    cutoff = pd.Timestamp("1997-09-30 23:59:59.999999")
    # The 39-week protocol: gbdt cannot build a label inside 39 weeks of history.
    result = backtest(data, cutoff, Horizon(39, "w"), [create("btyd"), create("gbdt")])
    assert result.n_customers == 2357
    table = result.table()
    assert table.loc["btyd", "normalized_gini"] > 0.5
    assert "gbdt needs" in table.loc["gbdt", "error"]
    auto = AutoForecaster(candidates=("baseline", "btyd")).fit(data, cutoff, Horizon(39, "w"))
    inner = auto.inner_table_
    within = inner[inner["mae"] <= 1.05 * inner["mae"].min()]
    assert auto.choice_ == within["normalized_gini"].idxmax()
    assert "inner backtest at 1997-05-17 (136 days, " in auto.reason_


def test_mae_guard_passes_over_a_better_ranking_with_far_worse_values(
    store: CustomerData, toy_registry: None
) -> None:
    auto = AutoForecaster(candidates=("scaled", "flat")).fit(store, AS_OF, H)
    table = auto.inner_table_
    assert table.loc["scaled", "normalized_gini"] > table.loc["flat", "normalized_gini"]
    assert table.loc["scaled", "mae"] > 1.05 * table.loc["flat", "mae"]
    assert auto.choice_ == "flat"
    assert "scaled ranked first but its inner MAE is more than 5% above the best" in auto.reason_
    unguarded = AutoForecaster(candidates=("scaled", "flat"), max_mae_ratio=100.0)
    assert unguarded.fit(store, AS_OF, H).choice_ == "scaled"
