"""SeqForecaster: learning, determinism, artifacts, no leakage, rollout, explanations, and
too short histories (the fallback and the backtest skip)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import backtest
from ltvcast.exceptions import ArtifactError, ConfigError, InsufficientDataError
from ltvcast.models.seq.estimator import SeqForecaster
from ltvcast.pipeline import fit_forecaster
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import parse_horizon, parse_horizons

START = pd.Timestamp("2024-01-01")
AS_OF = pd.Timestamp("2024-06-30 23:59:59")
SIX_WEEKS = parse_horizon("6w")
TINY: dict[str, Any] = {
    "conv_filters": 8,
    "lstm_hidden": 8,
    "head_hidden": 8,
    "batch_size": 16,
    "epochs": 25,
    "patience": 5,
    "learning_rate": 1e-2,
    "n_samples": 16,
    "n_threads": 1,
}


def _store(n: int = 80, seed: int = 1) -> CustomerData:
    """Half heavy buyers (about two purchases a week, ~50 each), half rare (~$10 a month)."""
    rng = np.random.default_rng(seed)
    heavy = np.arange(n) < n // 2
    rate = np.where(heavy, 0.3, 0.03)
    days = pd.date_range(START, "2024-09-30", freq="D")
    buys = rng.random((n, len(days))) < rate[:, None]
    rows, cols = np.nonzero(buys)
    amount = np.where(heavy[rows], 50.0, 10.0) * rng.lognormal(0.0, 0.2, len(rows))
    ids = np.array([f"c{i:03d}" for i in range(n)])
    tx = pd.DataFrame(
        {
            "customer_id": ids[rows],
            "timestamp": days[cols] + pd.Timedelta(hours=12),
            "amount": amount,
        }
    )
    events = tx.assign(event_type="view")[["customer_id", "timestamp", "event_type"]]
    profiles = pd.DataFrame(
        {
            "customer_id": ids,
            "tier": np.where(heavy, "gold", "basic"),
            "age": 20.0 + np.arange(n) % 40,
        }
    )
    return CustomerData(tx, events=events, profiles=profiles)


@pytest.fixture(scope="module")
def data() -> CustomerData:
    return _store()


@pytest.fixture(scope="module")
def fitted(data: CustomerData) -> SeqForecaster:
    return SeqForecaster(**TINY).fit(data, AS_OF, parse_horizon("6w"))


def _actual_value(data: CustomerData, start: pd.Timestamp, days: int) -> pd.Series:
    tx = data.transactions
    window = tx[(tx["timestamp"] > start) & (tx["timestamp"] <= start + pd.Timedelta(days=days))]
    return window.groupby("customer_id")["amount"].sum()


def test_direct_mode_learns_who_spends(fitted: SeqForecaster, data: CustomerData) -> None:
    assert fitted.mode_ == "direct" and fitted.period_days_ == 7
    assert fitted.stride_ == 2 and fitted.n_periods_ % 2 == 0  # LSTM steps of two weeks
    assert fitted.event_types_ == ("view",)
    pred = fitted.predict(data, AS_OF)
    assert list(pred.columns) == [
        *("customer_id", "predicted_value", "predicted_purchases", "p_active"),
        *("value_p10", "value_p90"),
    ]
    heavy = pred["customer_id"] < "c040"
    # heavy buyers spend ~$630 in 6 weeks, rare ones ~$13: the ranking must be perfect
    assert pred.loc[heavy, "predicted_value"].min() > pred.loc[~heavy, "predicted_value"].max()
    assert (pred["value_p10"] <= pred["value_p90"]).all()
    assert pred["p_active"].between(0, 1).all()


def test_tiny_model_overfits_tiny_data() -> None:
    small = _store(n=16, seed=3)
    model = SeqForecaster(**{**TINY, "epochs": 60, "patience": 60, "learning_rate": 1e-2})
    model.fit(small, AS_OF, parse_horizon("6w"))
    losses = model.training_["validation_loss"]
    assert min(losses) < losses[0] - 1.0
    pred = model.predict(small, AS_OF).set_index("customer_id")["predicted_value"]
    actual = _actual_value(small, AS_OF - pd.Timedelta(weeks=6), 42).reindex(pred.index).fillna(0)
    # fitted on the same customers: within 35% of the last 6 weeks' total for the heavy half
    heavy = pred.index < "c008"
    ratio = pred[heavy].sum() / actual[heavy].sum()
    assert 0.65 < ratio < 1.35


def test_saved_state_is_keyed_by_name(
    fitted: SeqForecaster, data: CustomerData, tmp_path: Path
) -> None:
    save_model(fitted, tmp_path / "m")
    assert (tmp_path / "m" / "seq_weights.safetensors").is_file()
    loaded, manifest = load_model(tmp_path / "m")
    state = manifest["state"]
    assert state["mode"] == "direct" and state["stride"] == 2 and state["state_version"] == 4
    assert list(state["scalers"]["steps"])[:3] == ["purchases", "log_spend", "event:view"]
    assert list(state["scalers"]["numeric"]) == ["profile_age"]
    assert loaded.get_params() == fitted.get_params()


def _edit_state(directory: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest["state"])
    path.write_text(json.dumps(manifest))


def test_artifacts_of_another_layout_are_refused(fitted: SeqForecaster, tmp_path: Path) -> None:
    save_model(fitted, tmp_path / "m")
    # an input layout without the mean-spend context is refused by name
    _edit_state(tmp_path / "m", lambda state: state["scalers"]["steps"].pop("log_mean_spend"))
    with pytest.raises(ArtifactError, match=r"7 context features .*; this version uses 8"):
        load_model(tmp_path / "m")
    # an artifact of the positional scalers (no state version) must be retrained
    save_model(fitted, tmp_path / "old")
    _edit_state(tmp_path / "old", lambda state: state.pop("state_version"))
    with pytest.raises(ArtifactError, match=r"state version 1; this version reads 4.*retrain it"):
        load_model(tmp_path / "old")


def test_rollout_when_history_shorter_than_horizon(data: CustomerData, tmp_path: Path) -> None:
    as_of = pd.Timestamp("2024-03-31 23:59:59")  # 13 weeks of history, 26-week horizon
    model = SeqForecaster(**TINY).fit(data, as_of, parse_horizon("26w"))
    assert model.mode_ == "rollout" and model.event_types_ == () and model.stride_ == 1
    pred = model.predict(data, as_of)
    heavy = pred["customer_id"] < "c040"
    assert (
        pred.loc[heavy, "predicted_value"].mean() > 5 * pred.loc[~heavy, "predicted_value"].mean()
    )
    assert (pred["value_p10"] <= pred["value_p90"]).all() and pred["p_active"].between(0, 1).all()
    save_model(model, tmp_path / "r")
    loaded, _ = load_model(tmp_path / "r")
    pd.testing.assert_frame_equal(loaded.predict(data, as_of), pred)


def test_explain_rows_sum_to_prediction(fitted: SeqForecaster, data: CustomerData) -> None:
    table = fitted.explain(data, AS_OF)
    pred = fitted.predict(data, AS_OF).set_index("customer_id")["predicted_value"]
    assert {"purchases", "log_spend", "event:view", "log_tenure", "profile_tier"} <= set(table)
    np.testing.assert_allclose(table.sum(axis=1), pred.reindex(table.index), rtol=1e-4, atol=1e-4)


def test_profiles_with_categorical_columns_only(data: CustomerData) -> None:
    """Online Retail's profiles hold only a country: no numeric column to scale."""
    assert data.profiles is not None
    only_tier = CustomerData(
        data.transactions, events=data.events, profiles=data.profiles[["customer_id", "tier"]]
    )
    model = SeqForecaster(**{**TINY, "epochs": 1}).fit(only_tier, AS_OF, parse_horizon("30d"))
    predictions = model.predict(only_tier, AS_OF)
    assert len(predictions) == 80
    assert np.isfinite(predictions["predicted_value"]).all()


def test_rollout_refit_learns_the_latest_level() -> None:
    """Spend drops to a fifth in the last four of 13 weeks: the refit (default) is nearer it.

    The paper's network alone: the hybrid takes its level from BTYD, which does not see
    such a drop."""
    rng = np.random.default_rng(3)
    days = pd.date_range(START, "2024-03-31", freq="D")
    rate = np.where(days < pd.Timestamp("2024-03-04"), 0.3, 0.06)
    buys = rng.random((40, len(days))) < rate[None, :]
    rows, cols = np.nonzero(buys)
    tx = pd.DataFrame(
        {
            "customer_id": np.array([f"c{i:03d}" for i in range(40)])[rows],
            "timestamp": days[cols] + pd.Timedelta(hours=12),
            "amount": 50.0 * rng.lognormal(0.0, 0.2, len(rows)),
        }
    )
    data, as_of = CustomerData(tx), pd.Timestamp("2024-03-31 23:59:59")
    params = TINY | {"calibrate": False, "hybrid": "none"}
    latest = SeqForecaster(**params).fit(data, as_of, parse_horizon("26w"))
    oldest = SeqForecaster(**params, refit=False).fit(data, as_of, parse_horizon("26w"))
    assert latest.mode_ == "rollout" and latest.training_["refit_epochs"] >= 1
    weekly = 7 * 0.06 * 50.0 * np.exp(0.02)  # expected spend a week at the latest rate
    old = oldest.predict(data, as_of)["predicted_value"].mean() / 26
    new = latest.predict(data, as_of)["predicted_value"].mean() / 26
    # measured: 7.7 a week without the refit, 12.4 with it, 21.4 expected
    assert abs(np.log(new / weekly)) < abs(np.log(old / weekly)) - 0.3


def _two_days() -> tuple[CustomerData, pd.Timestamp]:
    """30 customers with two days of history (repeat buyers among them), more after."""
    rng = np.random.default_rng(0)
    ids = [f"c{i:02d}" for i in range(30)]
    days = [
        (c, d)
        for i, c in enumerate(ids)
        for d in (0, 1, 5 + i % 20)
        if d != 1 or rng.random() < 0.5
    ]
    tx = pd.DataFrame(
        {
            "customer_id": [c for c, _ in days],
            "timestamp": [START + pd.Timedelta(days=d, hours=10) for _, d in days],
            "amount": [20.0 + int(c[1:]) for c, _ in days],
        }
    )
    return CustomerData(tx), START + pd.Timedelta(days=1, hours=23)


def test_too_short_history_is_insufficient_data() -> None:
    """Every "too little history" case is an InsufficientDataError: btyd takes over."""
    data, as_of = _two_days()
    with pytest.raises(InsufficientDataError, match="too little history"):
        SeqForecaster(**TINY).fit(data, as_of, parse_horizon("30d"))
    with pytest.raises(InsufficientDataError, match="no transaction up to"):
        SeqForecaster(**TINY).fit(data, START - pd.Timedelta(days=1), parse_horizon("30d"))
    reasons: list[str] = []
    model = fit_forecaster("seq", data, as_of, parse_horizon("30d"), on_fallback=reasons.append)
    assert model.name == "btyd"
    assert len(reasons) == 1 and reasons[0].startswith("seq cannot train here")
    assert "too little history" in reasons[0]


def test_backtest_skips_seq_on_a_too_short_history() -> None:
    data, cutoff = _two_days()
    result = backtest(data, cutoff, parse_horizon("14d"), [SeqForecaster(**TINY)])
    (seq,) = result.results
    assert seq.name == "seq" and seq.metrics == {} and seq.predictions is None
    assert seq.error is not None and "too little history" in seq.error


@pytest.fixture(scope="module")
def ensemble(data: CustomerData) -> SeqForecaster:
    return SeqForecaster(**TINY, n_seeds=2).fit(data, AS_OF, SIX_WEEKS)


def test_seed_ensemble_is_seeded_and_the_mean_of_its_seeds(
    ensemble: SeqForecaster, data: CustomerData
) -> None:
    assert len(ensemble.networks_) == 2 and ensemble.btyd_ is not None
    # weight, factor and unknown customers' scale per seed
    assert [len(b) for b in ensemble.training_["blends"]] == [3, 3]
    pred = ensemble.predict(data, AS_OF)
    again = SeqForecaster(**TINY, n_seeds=2).fit(data, AS_OF, SIX_WEEKS).predict(data, AS_OF)
    pd.testing.assert_frame_equal(pred, again)
    # the networks' mean (before the hybrid's blend with BTYD): the paper's network shows it
    plain = TINY | {"hybrid": "none"}
    both = SeqForecaster(**plain, n_seeds=2).fit(data, AS_OF, SIX_WEEKS).predict(data, AS_OF)
    singles = [
        SeqForecaster(**plain, random_state=seed).fit(data, AS_OF, SIX_WEEKS).predict(data, AS_OF)
        for seed in (0, 1)
    ]
    for column in ("predicted_value", "predicted_purchases", "p_active", "value_p90"):
        mean = (singles[0][column] + singles[1][column]) / 2
        np.testing.assert_allclose(both[column], mean, rtol=1e-5, err_msg=column)
    assert not np.allclose(singles[0]["predicted_value"], singles[1]["predicted_value"])


def test_ensemble_round_trip_is_exact(
    ensemble: SeqForecaster, data: CustomerData, tmp_path: Path
) -> None:
    save_model(ensemble, tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.pkl"))
    loaded, manifest = load_model(tmp_path / "m")
    state = manifest["state"]
    assert state["n_networks"] == 2 and state["hybrid"]["btyd"]["bgnbd"]
    pd.testing.assert_frame_equal(loaded.predict(data, AS_OF), ensemble.predict(data, AS_OF))
    later = AS_OF + pd.Timedelta(days=30)  # a later as-of: BTYD moves with it
    pd.testing.assert_frame_equal(loaded.predict(data, later), ensemble.predict(data, later))


def test_the_papers_plain_network_still_trains(data: CustomerData) -> None:
    plain = SeqForecaster(**TINY, hybrid="none").fit(data, AS_OF, SIX_WEEKS)
    assert plain.btyd_ is None and plain.networks_[0].n_wide == 0
    pred = plain.predict(data, AS_OF)
    heavy = pred["customer_id"] < "c040"
    assert pred.loc[heavy, "predicted_value"].min() > pred.loc[~heavy, "predicted_value"].max()
    with pytest.raises(ConfigError, match="hybrid must be one of btyd_residual, none"):
        SeqForecaster(hybrid="btyd").fit(data, AS_OF, SIX_WEEKS)


def test_hybrid_sees_the_aggregates_and_keeps_the_btyd_level(
    fitted: SeqForecaster, data: CustomerData
) -> None:
    names = fitted.hybrid_["aggregates"]  # type: ignore[index]
    assert {"agg:frequency", "agg:spend_30d", "agg:ev_view_30d"} <= set(names)
    assert fitted.networks_[0].n_wide == 4 + len(names)
    # every customer has bought by AS_OF, so the level is BTYD's
    total = fitted.predict(data, AS_OF)["predicted_value"].sum()
    btyd = fitted.btyd_.predict(data, AS_OF)["predicted_value"].sum()  # type: ignore[union-attr]
    assert total == pytest.approx(btyd, rel=1e-4)


def test_the_ziln_value_without_aggregates(data: CustomerData) -> None:
    model = SeqForecaster(**TINY, network_value="ziln", use_aggregates=False, calibrate=False)
    model.fit(data, AS_OF, SIX_WEEKS)
    assert model.hybrid_["aggregates"] == [] and model.networks_[0].n_wide == 4  # type: ignore[index]
    total = model.predict(data, AS_OF)["predicted_value"].sum()
    btyd = model.btyd_.predict(data, AS_OF)["predicted_value"].sum()  # type: ignore[union-attr]
    assert total == pytest.approx(btyd, rel=1e-4)
    with pytest.raises(ConfigError, match="network_value must be one of purchases, ziln"):
        SeqForecaster(network_value="gbdt").fit(data, AS_OF, SIX_WEEKS)


def test_curve_is_monotone_from_one_model_with_its_own_forecast(
    fitted: SeqForecaster, data: CustomerData, tmp_path: Path
) -> None:
    assert [str(h) for h in fitted.curve_horizons_] == ["30d", "6w", "90d"]
    spans = parse_horizons("7d,30d,6w,60d,90d")
    curve = fitted.predict_curve(data, AS_OF, spans, discount_rate=0.1)
    pred = fitted.predict(data, AS_OF).set_index("customer_id")
    assert curve.index.name == "customer_id" and set(curve.index) == set(pred.index)
    own = curve.reindex(pred.index)
    np.testing.assert_allclose(own["value_6w"], pred["predicted_value"], rtol=1e-9)
    np.testing.assert_allclose(own["purchases_6w"], pred["predicted_purchases"], rtol=1e-9)
    np.testing.assert_allclose(own["p_active_6w"], pred["p_active"], rtol=1e-9)
    for name in ("purchases", "value", "p_active", "discounted_value"):
        table = curve[[f"{name}_{h}" for h in spans]].to_numpy()
        assert (np.diff(table, axis=1) >= -1e-9).all(), name
    assert (curve["value_90d"] > curve["value_6w"]).mean() > 0.9  # the steps add something
    assert (curve["discounted_value_90d"] < curve["value_90d"]).all()
    with pytest.raises(ConfigError, match="trained for is 90d; it has no forecast for 180d"):
        fitted.predict_curve(data, AS_OF, parse_horizons("30d,180d"))
    # no data after the as-of reaches it, and the saved heads give the same curve
    later = CustomerData(_store(seed=9).transactions.assign(
        timestamp=lambda t: t["timestamp"] + pd.Timedelta(days=200)))  # fmt: skip
    merged = CustomerData(pd.concat([data.transactions, later.transactions]), data.events,
                          data.profiles)  # fmt: skip
    pd.testing.assert_frame_equal(fitted.predict_curve(merged, AS_OF, spans, discount_rate=0.1),
                                  curve)  # fmt: skip
    save_model(fitted, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict_curve(data, AS_OF, spans, discount_rate=0.1),
                                  curve)  # fmt: skip


def test_rollout_curve_is_its_own_horizon(data: CustomerData) -> None:
    as_of = pd.Timestamp("2024-03-31 23:59:59")
    model = SeqForecaster(**{**TINY, "epochs": 2}).fit(data, as_of, parse_horizon("26w"))
    assert model.mode_ == "rollout" and [str(h) for h in model.curve_horizons_] == ["26w"]
    curve = model.predict_curve(data, as_of, parse_horizons("13w,26w"))
    pred = model.predict(data, as_of).set_index("customer_id")
    np.testing.assert_allclose(curve.loc[pred.index, "value_26w"], pred["predicted_value"])
    np.testing.assert_allclose(curve["value_13w"], curve["value_26w"] / 2)
    with pytest.raises(ConfigError, match="trained for is 26w"):
        model.predict_curve(data, as_of, parse_horizons("1y"))


def test_negative_binomial_counts_learn_a_size_and_round_trip(
    data: CustomerData, tmp_path: Path
) -> None:
    model = SeqForecaster(**{**TINY, "epochs": 3, "count_loss": "negbin"})
    model.fit(data, AS_OF, SIX_WEEKS)
    sizes = model.networks_[0].log_dispersion
    assert sizes is not None and sizes.shape == (3,) and bool((sizes != 0).any())
    save_model(model, tmp_path / "nb")
    loaded, _ = load_model(tmp_path / "nb")
    pd.testing.assert_frame_equal(loaded.predict(data, AS_OF), model.predict(data, AS_OF))
    with pytest.raises(ConfigError, match="count_loss must be one of poisson, negbin"):
        SeqForecaster(count_loss="hurdle").fit(data, AS_OF, SIX_WEEKS)
