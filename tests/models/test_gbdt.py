"""LightGBM forecaster: training origins, the inner choice of objective and window, no
leakage, monotone constraints, persistence, explanations, real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.datasets import load_cdnow_sample
from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import PREDICTION_COLUMNS, CustomerData
from ltvcast.data.synthetic import simulate_store
from ltvcast.evaluation.metrics import normalized_gini
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.features.tabular import tabular_features
from ltvcast.models.baseline import SpendRateForecaster
from ltvcast.models.gbdt import GBDTForecaster
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import parse_as_of, parse_horizon

HORIZON = parse_horizon("30d")
SMALL = {
    "n_estimators": 40,
    "min_child_samples": 10,
    "num_threads": 1,
    "max_origins": 3,
    "early_stopping_rounds": 10,
}


@pytest.fixture(scope="module")
def store_data() -> tuple[CustomerData, pd.Timestamp]:
    """A small simulated store; customers first seen after the last training origin get a
    profile segment ("late") that no training customer has."""
    store = simulate_store(400, days=400, random_state=3)
    as_of = pd.Timestamp(store.start + pd.Timedelta(days=330))
    last_origin = HORIZON.start(as_of)
    rows = pd.concat([store.transactions, store.events])[["customer_id", "timestamp"]]
    first_seen = rows.groupby("customer_id")["timestamp"].min()
    late = first_seen[first_seen > last_origin].index
    profiles = store.profiles.assign(
        segment=np.where(store.profiles["customer_id"].isin(late), "late", "early")
    )
    return CustomerData(store.transactions, store.events, profiles), as_of


@pytest.fixture(scope="module")
def fitted(store_data: tuple[CustomerData, pd.Timestamp]) -> GBDTForecaster:
    data, as_of = store_data
    return GBDTForecaster(**SMALL).fit(data, as_of, HORIZON)


def test_predict_contract(
    fitted: GBDTForecaster, store_data: tuple[CustomerData, pd.Timestamp]
) -> None:
    data, as_of = store_data
    pred = fitted.predict(data, as_of)
    assert list(pred.columns) == list(PREDICTION_COLUMNS)
    assert list(pred["customer_id"]) == list(data.until(as_of).customers())
    assert ((pred["p_active"] > 0) & (pred["p_active"] < 1)).all()
    assert (pred["predicted_purchases"] >= pred["p_active"]).all()
    assert (pred["predicted_value"] >= 0).all()
    assert 1 <= len(fitted.origins_) <= 3 and fitted.origins_[-1] == HORIZON.start(as_of)


def test_profile_vocabulary_from_training_customers_only(
    fitted: GBDTForecaster, store_data: tuple[CustomerData, pd.Timestamp]
) -> None:
    data, as_of = store_data
    encoder = fitted.profile_encoder_
    assert encoder is not None
    assert encoder.vocabularies_["segment"] == ["early"]
    assert "profile_signup_date" not in fitted.feature_names_
    features = tabular_features(data, as_of, encoder)
    late = data.profiles.loc[data.profiles["segment"] == "late", "customer_id"]
    late = late[late.isin(features.index)]
    assert len(late) > 0
    assert (features.loc[late, "profile_segment"] == 1.0).all()  # "other"


def test_short_history_raises_insufficient_data() -> None:
    store = simulate_store(50, days=40, events=False, random_state=0)
    data = CustomerData(store.transactions)
    with pytest.raises(InsufficientDataError, match=r"--model btyd"):
        GBDTForecaster(**SMALL).fit(data, data.last_timestamp(), HORIZON)
    # long enough, but nobody buys in any label window: nothing to learn spend from
    late_as_of = data.last_timestamp() + pd.Timedelta(days=200)
    with pytest.raises(InsufficientDataError, match="no purchase with positive spend"):
        GBDTForecaster(**SMALL).fit(data, late_as_of, HORIZON)


def test_invalid_objective() -> None:
    store = simulate_store(50, days=200, events=False, random_state=0)
    data = CustomerData(store.transactions)
    with pytest.raises(ConfigError, match="objective"):
        GBDTForecaster(objective="ziln").fit(data, data.last_timestamp(), HORIZON)


def test_saved_boosters_explain_the_same(
    fitted: GBDTForecaster, store_data: tuple[CustomerData, pd.Timestamp], tmp_path: Path
) -> None:
    data, as_of = store_data
    save_model(fitted, tmp_path / "model")
    for kind in fitted.boosters_:
        assert (tmp_path / "model" / f"gbdt_{kind}.txt").is_file()
    loaded, manifest = load_model(tmp_path / "model")
    assert isinstance(loaded, GBDTForecaster) and manifest["model"] == "gbdt"
    assert (loaded.objective_, loaded.n_origins_) == (fitted.objective_, fitted.n_origins_)
    assert loaded.validation_mae_ == fitted.validation_mae_
    pd.testing.assert_frame_equal(loaded.explain(data, as_of), fitted.explain(data, as_of))


def _check_additive(model: GBDTForecaster, data: CustomerData, as_of: pd.Timestamp) -> None:
    explained = model.explain(data, as_of)
    pred = model.predict(data, as_of).set_index("customer_id")["predicted_value"]
    assert list(explained.columns) == [*model.feature_names_, "base_value"]
    assert list(explained.index) == list(pred.index)
    np.testing.assert_allclose(explained.sum(axis=1), pred, rtol=1e-9, atol=1e-9)
    assert explained["base_value"].nunique() == 1  # one bias for everyone


def test_explain_is_additive_two_part(store_data: tuple[CustomerData, pd.Timestamp]) -> None:
    data, as_of = store_data
    model = GBDTForecaster(objective="two_part", **SMALL).fit(data, as_of, HORIZON)
    assert set(model.boosters_) == {"active", "purchases", "spend"}
    _check_additive(model, data, as_of)


def test_tweedie_objective_and_its_explanations(
    store_data: tuple[CustomerData, pd.Timestamp],
) -> None:
    data, as_of = store_data
    model = GBDTForecaster(objective="tweedie", **SMALL).fit(data, as_of, HORIZON)
    assert set(model.boosters_) == {"active", "purchases", "value"}
    _check_additive(model, data, as_of)
    importance = model.feature_importance()
    assert importance.sum() == pytest.approx(1.0)


def test_feature_importance(fitted: GBDTForecaster) -> None:
    importance = fitted.feature_importance()
    assert set(importance.index) == set(fitted.feature_names_)
    assert importance.sum() == pytest.approx(1.0)
    assert importance.is_monotonic_decreasing and (importance >= 0).all()


@pytest.mark.realdata
def test_beats_spend_rate_on_cdnow_sample(data_dir: Path) -> None:
    data, _ = load_cdnow_sample(data_dir)
    as_of = parse_as_of("1998-03-31", data.last_timestamp())
    horizon = parse_horizon("13w")
    gbdt = GBDTForecaster(n_estimators=100, num_threads=1).fit(data, as_of, horizon)
    rate = SpendRateForecaster().fit(data, as_of, horizon)
    pred = gbdt.predict(data, as_of).set_index("customer_id")
    base = rate.predict(data, as_of).set_index("customer_id")
    actual = horizon_labels(data.transactions, pred.index, as_of, horizon.end(as_of))["value"]
    gini_gbdt = normalized_gini(actual, pred["predicted_value"])
    gini_rate = normalized_gini(actual, base["predicted_value"])
    assert gini_gbdt > gini_rate + 0.01, (gini_gbdt, gini_rate)


def test_auto_choice_is_the_lowest_validation_mae(fitted: GBDTForecaster) -> None:
    # SMALL stacks at most 3 origins: windows of 1 and 2 origins before the latest, 2 objectives
    assert set(fitted.validation_mae_) == {
        f"{o}/{m}" for o in ("two_part", "tweedie") for m in (1, 2)
    }
    best = min(fitted.validation_mae_, key=fitted.validation_mae_.__getitem__)
    objective, window = best.split("/")
    assert fitted.objective_ == objective and fitted.n_origins_ == int(window) + 1
    assert len(fitted.origins_) == fitted.n_origins_
    kinds = {"two_part": {"active", "spend"}, "tweedie": {"value"}}[objective]
    assert set(fitted.boosters_) == {"active", "purchases"} | kinds


def test_choice_uses_labels_up_to_as_of_only(
    fitted: GBDTForecaster, store_data: tuple[CustomerData, pd.Timestamp]
) -> None:
    """The inner backtest scores the latest origin's window, which ends at ``as_of``: spend
    after ``as_of`` changes no choice and no forecast; spend inside that window does."""
    data, as_of = store_data
    tx = data.transactions
    later = tx.assign(amount=tx["amount"].where(tx["timestamp"] <= as_of, tx["amount"] * 50))
    refit = GBDTForecaster(**SMALL).fit(
        CustomerData(later, data.events, data.profiles), as_of, HORIZON
    )
    assert refit.validation_mae_ == fitted.validation_mae_
    pd.testing.assert_frame_equal(refit.predict(data, as_of), fitted.predict(data, as_of))
    inside = (tx["timestamp"] > HORIZON.start(as_of)) & (tx["timestamp"] <= as_of)
    moved = tx.assign(amount=tx["amount"].where(~inside, tx["amount"] * 50))
    changed = GBDTForecaster(**SMALL).fit(
        CustomerData(moved, data.events, data.profiles), as_of, HORIZON
    )
    assert changed.validation_mae_ != fitted.validation_mae_


def test_fixed_objective_is_kept(store_data: tuple[CustomerData, pd.Timestamp]) -> None:
    data, as_of = store_data
    model = GBDTForecaster(objective="two_part", **SMALL).fit(data, as_of, HORIZON)
    assert model.objective_ == "two_part" and set(model.validation_mae_) == {
        "two_part/1",
        "two_part/2",
    }


def test_monotone_in_spend_and_recency(
    fitted: GBDTForecaster, store_data: tuple[CustomerData, pd.Timestamp]
) -> None:
    data, as_of = store_data
    x = fitted._design(data, as_of)
    more = x.assign(spend_30d=x["spend_30d"] + 100.0, purchases_90d=x["purchases_90d"] + 2.0)
    later = x.assign(days_since_last_purchase=x["days_since_last_purchase"] + 60.0)
    for kind in fitted.boosters_:
        base = fitted._raw(kind, x.to_numpy(np.float64))
        assert (fitted._raw(kind, more.to_numpy(np.float64)) >= base - 1e-12).all(), kind
        assert (fitted._raw(kind, later.to_numpy(np.float64)) <= base + 1e-12).all(), kind


def test_one_origin_has_no_choice(store_data: tuple[CustomerData, pd.Timestamp]) -> None:
    data, as_of = store_data
    model = GBDTForecaster(**{**SMALL, "max_origins": 1}).fit(data, as_of, HORIZON)
    assert model.validation_mae_ == {} and model.objective_ == "two_part"
    assert model.n_origins_ == 1 and model.best_iterations_["active"] == SMALL["n_estimators"]


def test_max_origins_must_be_positive(store_data: tuple[CustomerData, pd.Timestamp]) -> None:
    data, as_of = store_data
    with pytest.raises(ConfigError, match="max_origins"):
        GBDTForecaster(max_origins=0).fit(data, as_of, HORIZON)
