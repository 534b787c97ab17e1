"""LightGBM forecaster: training origins, no leakage, persistence, explanations, real data."""

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
    assert len(fitted.origins_) == 3 and fitted.origins_[-1] == HORIZON.start(as_of)


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
    assert (tmp_path / "model" / "gbdt_spend.txt").is_file()
    loaded, manifest = load_model(tmp_path / "model")
    assert isinstance(loaded, GBDTForecaster) and manifest["model"] == "gbdt"
    pd.testing.assert_frame_equal(loaded.explain(data, as_of), fitted.explain(data, as_of))


def _check_additive(model: GBDTForecaster, data: CustomerData, as_of: pd.Timestamp) -> None:
    explained = model.explain(data, as_of)
    pred = model.predict(data, as_of).set_index("customer_id")["predicted_value"]
    assert list(explained.columns) == [*model.feature_names_, "base_value"]
    assert list(explained.index) == list(pred.index)
    np.testing.assert_allclose(explained.sum(axis=1), pred, rtol=1e-9, atol=1e-9)
    assert explained["base_value"].nunique() == 1  # one bias for everyone


def test_explain_is_additive_two_part(
    fitted: GBDTForecaster, store_data: tuple[CustomerData, pd.Timestamp]
) -> None:
    _check_additive(fitted, *store_data)


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
