"""``auto``: the inner backtest picks the clearly better model, says why, and round-trips."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import backtest
from ltvcast.evaluation.blend import blend_weights
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
    assert auto.chosen.as_of_ == AS_OF
    pd.testing.assert_frame_equal(auto.predict(store, AS_OF), auto.chosen.predict(store, AS_OF))


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
    with pytest.raises(ConfigError, match=r"blend_margin must be in \[0, 1\); got 1.5"):
        AutoForecaster(candidates=("rate",), blend_margin=1.5).fit(store, AS_OF, H)
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
    assert (tmp_path / "model" / "members" / "rate_q" / "rate.json").is_file()
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
    auto = AutoForecaster(candidates=("scaled", "flat"), blend=False).fit(store, AS_OF, H)
    table = auto.inner_table_
    assert table.loc["scaled", "normalized_gini"] > table.loc["flat", "normalized_gini"]
    assert table.loc["scaled", "mae"] > 1.05 * table.loc["flat", "mae"]
    assert auto.choice_ == "flat"
    assert "scaled ranked first but its inner MAE is more than 5% above the best" in auto.reason_
    unguarded = AutoForecaster(candidates=("scaled", "flat"), max_mae_ratio=100.0, blend=False)
    assert unguarded.fit(store, AS_OF, H).choice_ == "scaled"


def test_blend_of_a_low_and_a_high_forecast_pays(
    store: CustomerData, toy_registry: None, tmp_path: Path
) -> None:
    # half and double rank alike; a mix near 2/3 half + 1/3 double is the right scale.
    auto = AutoForecaster(candidates=("half", "double")).fit(store, AS_OF, H)
    assert auto.choice_ in ("half+double", "double+half")
    assert auto.chosen is auto
    weights = auto.weights_
    assert set(weights) == {"half", "double"}
    assert all(w > 0 for w in weights.values())
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["half"] > weights["double"]
    assert auto.reason_.startswith("blended ")
    assert "single best half: inner backtest at 2023-10-01" in auto.reason_
    table = auto.inner_table_
    assert min(table["mae"]) > 0  # both members are off; the blend's MAE is in the reason
    # Every column is the weighted mean of the members' (quantiles: half has none).
    assert auto.has_quantiles is False
    members = {name: m.predict(store, AS_OF) for name, m in auto.members_.items()}
    predicted = auto.predict(store, AS_OF)
    for column in ("predicted_value", "predicted_purchases", "p_active"):
        mixed = sum(w * members[n][column] for n, w in weights.items())
        np.testing.assert_allclose(predicted[column], mixed)
    # Members without explanations contribute their forecast as one driver each.
    drivers = auto.explain(store, AS_OF)
    np.testing.assert_allclose(
        drivers.sum(axis=1).to_numpy(), predicted.set_index("customer_id")["predicted_value"]
    )
    assert {"half", "double", "base_value"} == set(drivers.columns)
    # The artifact holds each member with its registered class and the weights; no pickle.
    save_model(auto, tmp_path / "model")
    assert (tmp_path / "model" / "members" / "double" / "rate.json").is_file()
    loaded, manifest = load_model(tmp_path / "model")
    assert isinstance(loaded, AutoForecaster)
    assert {m["name"]: m["weight"] for m in manifest["state"]["members"]} == weights
    assert loaded.weights_ == weights and loaded.reason_ == auto.reason_
    pd.testing.assert_frame_equal(loaded.predict(store, AS_OF), predicted)
    pd.testing.assert_frame_equal(loaded.explain(store, AS_OF), drivers)
    assert not list((tmp_path / "model").rglob("*.pkl"))


def test_blend_falls_back_to_the_single_best_when_it_does_not_pay(
    store: CustomerData, toy_registry: None
) -> None:
    # rate is right; mixing in the backwards ranking or the flat mean cannot help it.
    auto = AutoForecaster(candidates=("inverse", "rate", "flat")).fit(store, AS_OF, H)
    assert auto.choice_ == "rate"
    assert auto.weights_ == {"rate": 1.0}
    assert auto.chosen.name == "rate"
    assert auto.reason_.startswith("picked rate: inner backtest")
    assert "; no blend: " in auto.reason_
    single = AutoForecaster(candidates=("half", "double"), blend=False).fit(store, AS_OF, H)
    assert single.weights_ == {"half": 1.0}
    assert "blend" not in single.reason_


def test_a_blend_whose_member_cannot_train_on_all_the_data_falls_back(
    store: CustomerData, toy_registry: None
) -> None:
    auto = AutoForecaster(candidates=("half", "short_lived")).fit(store, AS_OF, H)
    assert auto.weights_ == {"half": 1.0}
    assert auto.reason_.startswith("picked half: inner backtest")
    assert "no blend: a member cannot train on the full history (short_lived takes" in auto.reason_


def test_blend_weights_rule_on_a_backtest(store: CustomerData, toy_registry: None) -> None:
    result = backtest(
        store, pd.Timestamp("2023-06-30"), H, [create("half"), create("double"), create("rate")]
    )
    weights, verdict = blend_weights(result, result.ranking()[0])
    # rate alone is right: a blend cannot beat it by the margin.
    assert weights == {} and verdict.startswith("no blend: ")
    pair = [create("half"), create("double")]
    without_rate = backtest(store, pd.Timestamp("2023-06-30"), H, pair)
    weights, verdict = blend_weights(without_rate, "half")
    assert set(weights) == {"half", "double"} and verdict.startswith("blended half ")
    # A margin no blend can reach keeps the single best.
    assert blend_weights(without_rate, "half", margin=0.99)[0] == {}


def test_blend_inner_backtest_stays_inside_the_training_data(
    store: CustomerData, toy: SimpleNamespace, toy_registry: None
) -> None:
    toy.spy.seen.clear()
    as_of = pd.Timestamp("2023-06-30")
    auto = AutoForecaster(candidates=("spy", "half", "double")).fit(store, as_of, H)
    inner_cutoff = as_of - pd.Timedelta(weeks=13)
    assert toy.spy.seen[:2] == [store.until(inner_cutoff).last_timestamp()] * 2
    assert max(toy.spy.seen) <= as_of
    # Rows after as_of change no prediction of the blend.
    whale = {"customer_id": ["c0001"], "timestamp": [as_of + pd.Timedelta(days=1)], "amount": [1e6]}
    late = CustomerData(pd.concat([store.transactions, pd.DataFrame(whale)], ignore_index=True))
    again = AutoForecaster(candidates=("spy", "half", "double")).fit(late, as_of, H)
    assert again.weights_ == auto.weights_
    pd.testing.assert_frame_equal(again.predict(late, as_of), auto.predict(store, as_of))
