"""The application layer: what a notebook user and every edge compose through."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ltvcast
from ltvcast.data.schemas import CustomerData
from ltvcast.data.synthetic import simulate_store, write_store
from ltvcast.exceptions import InsufficientDataError
from ltvcast.models import registry
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.pipeline import (
    MANIFEST_KEYS,
    MIN_CUSTOMERS_FOR_CUTS,
    UNSEGMENTED,
    ScoringModel,
    backtest_models,
    fit_forecaster,
    forecast,
    train_model,
)
from ltvcast.strategy.segments import SEGMENTS, SegmentRules
from ltvcast.timeframe import Horizon


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    store = simulate_store(400, days=500, dirty_rate=0.01, random_state=3)
    return write_store(store, tmp_path_factory.mktemp("store"), horizon=Horizon(60, "d"))


@pytest.fixture(scope="module")
def data(files: dict[str, Path]) -> CustomerData:
    return ltvcast.load_customer_data(files["transactions"], files["events"], files["profiles"])[0]


@pytest.fixture(scope="module")
def model(data: CustomerData) -> ScoringModel:
    return train_model(data, model="btyd", horizon="60d")


def test_notebook_round_trip(files: dict[str, Path], tmp_path: Path) -> None:
    data, cleaning = ltvcast.load_customer_data(files["transactions"], files["events"])
    model = ltvcast.train_model(data, horizon="60d", model="btyd", cleaning=cleaning)
    scores = model.score(data)
    drivers = model.explain(data, scores["customer_id"][:3], top=3)
    model.save(tmp_path / "model")
    again = ltvcast.load_scoring_model(tmp_path / "model")
    pd.testing.assert_frame_equal(again.score(data), scores)
    assert set(scores["segment"]) <= set(SEGMENTS) and len(drivers) == 9


def test_forecast_is_train_then_predict(data: CustomerData) -> None:
    as_of = data.last_timestamp() - pd.Timedelta(days=30)
    done = forecast(
        data, model="btyd", horizon="60d", as_of=as_of, horizons="30d,1y", intervals=True
    )
    trained = train_model(data, model="btyd", horizon="60d", as_of=as_of)
    again = trained.predict(data, as_of, horizons="30d,1y", intervals=True)
    pd.testing.assert_frame_equal(done.predictions, again)
    assert done.scoring.rules == trained.rules
    assert {"value_p10", "value_30d", "value_1y"} <= set(done.predictions.columns)


def test_score_columns_and_history(model: ScoringModel, data: CustomerData) -> None:
    scores = model.score(data)
    assert list(scores.columns) == [
        "customer_id", "segment", "predicted_value", "predicted_purchases", "p_active",
        "tenure_days", "purchases", "past_value",
    ]  # fmt: skip
    assert len(scores) == len(data.customers())
    assert (scores["tenure_days"] >= 0).all() and (scores["purchases"] >= 0).all()


def test_explanations_add_up(model: ScoringModel, data: CustomerData) -> None:
    ids = data.customers()[:5]
    contributions = model.contributions(data, ids)
    predicted = model.predict(data).set_index("customer_id")["predicted_value"]
    np.testing.assert_allclose(contributions.sum(axis=1), predicted.reindex(ids), rtol=1e-9)
    top = model.explain(data, ids, top=2)
    assert list(top.columns) == ["customer_id", "rank", "feature", "contribution", "base_value"]
    assert top.groupby("customer_id")["rank"].max().eq(2).all()


def test_score_one_is_the_batch_answer(model: ScoringModel, data: CustomerData) -> None:
    batch = model.score(data).set_index("customer_id")
    customer = str(batch.index[7])
    one = model.score_one(data, customer_id=customer, explain=True)
    row = batch.loc[customer]
    assert one.values["predicted_value"] == pytest.approx(row["predicted_value"], rel=1e-9)
    assert (one.segment, one.tenure_days, one.purchases) == (
        row["segment"],
        pytest.approx(row["tenure_days"]),
        row["purchases"],
    )
    assert one.contributions is not None and one.base_value is not None
    assert len(one.top_drivers(2)) == 2
    assert set(one.answer()) == {*one.values, "segment", "as_of"}


def test_score_one_from_a_request(model: ScoringModel) -> None:
    request = {"transactions": [{"timestamp": "2024-04-16", "amount": 30.0}]}
    answer = model.score_one(request)
    assert answer.customer_id == "request" and answer.values["predicted_value"] >= 0
    with pytest.raises(InsufficientDataError, match="the request has no transaction"):
        model.score_one({**request, "as_of": "2024-01-01"})


def test_segment_cuts(model: ScoringModel, data: CustomerData) -> None:
    predictions = model.predict(data)
    assert model.cuts_for(predictions) == model.rules
    tight = SegmentRules(high_value=0.9)
    assert model.cuts_for(predictions, tight) == tight.fit(predictions)
    bare = ScoringModel(model.forecaster)
    assert bare.cuts_for(predictions) == SegmentRules().fit(predictions)
    few = predictions.head(MIN_CUSTOMERS_FOR_CUTS - 1)
    assert bare.cuts_for(few) is None
    assert set(bare.score(CustomerData(data.transactions.head(50)))["segment"]) == {UNSEGMENTED}


def test_manifest_keys_round_trip(model: ScoringModel, tmp_path: Path) -> None:
    model.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(MANIFEST_KEYS) <= set(manifest)
    loaded = ltvcast.load_scoring_model(tmp_path)
    assert loaded.training == model.training and loaded.rules == model.rules
    assert loaded.manifest == model.manifest


def test_auto_says_why(data: CustomerData) -> None:
    auto = train_model(data, horizon="60d", model="auto")
    assert auto.name == "auto" and auto.chosen_name in registry.model_names()
    assert auto.reason is not None and auto.reason.startswith(f"picked {auto.chosen_name}")
    assert auto.training is not None and auto.training.reason == auto.reason


def test_a_short_history_falls_back_and_says_so(data: CustomerData) -> None:
    first = data.first_timestamp()
    short = data.until(first + pd.Timedelta(days=80))
    notes: list[str] = []
    model = train_model(short, horizon="60d", model="gbdt", on_note=notes.append)
    assert model.name == "btyd" and notes and "gbdt cannot train here" in notes[0]
    assert model.training is not None and model.training.notes == tuple(notes)


def test_backtest_models_by_name_and_instance(
    data: CustomerData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    registry.register("missing", "ltvcast.models.missing:MissingForecaster")
    cutoff = data.last_timestamp() - pd.Timedelta(days=60)
    result = backtest_models(
        data, cutoff, Horizon(60, "d"), ["baseline", "missing", registry.create("btyd")]
    )
    assert [r.name for r in result.results] == ["baseline", "missing", "btyd"]
    assert "cannot import 'missing'" in str(result.results[1].error)
    assert result.results[0].error is None and result.results[2].error is None


def test_curves_from_a_notebook(data: CustomerData) -> None:
    """Horizons as text, curve columns after the predictions, the new-customer table; a
    model that learns one horizon says so."""
    scoring = train_model(data, horizon="60d", model="btyd")
    table = scoring.predict(data, horizons="1y,60d", discount_rate=0.1)
    assert list(table.columns[4:]) == [
        f"{name}_{h}" for h in ("60d", "1y") for name in ("purchases", "value", "p_alive",
                                                          "discounted_value")
    ]  # fmt: skip
    assert np.allclose(table["value_60d"], table["predicted_value"], rtol=1e-12)
    fresh = scoring.new_customer("30d,1y")
    assert list(fresh.index) == ["30d", "1y"] and fresh["value"].is_monotonic_increasing
    assert scoring.new_customer().index.tolist() == ["60d"]
    baseline = train_model(data, horizon="60d", model="baseline")
    with pytest.raises(ltvcast.ConfigError, match="need a BTYD model"):
        baseline.predict(data, horizons="30d")


def test_covariates_from_a_notebook(data: CustomerData, tmp_path: Path) -> None:
    """``model_params`` reach the model: profile covariates, their table, a new customer by
    profile, and the saved model."""
    params = {"covariates": ["channel", "device"]}  # a list, as from JSON
    scoring = train_model(data, horizon="60d", model="btyd", model_params=params)
    assert scoring.covariates == ("channel", "device")
    table = scoring.coefficient_table()
    assert {"purchase", "spend"} == set(table.index.get_level_values("model"))
    assert "purchase:device=mobile" in table.index.get_level_values("parameter") or (
        "purchase:device=desktop" in table.index.get_level_values("parameter")
    )
    by_channel = {
        c: scoring.new_customer(profile={"channel": c})["value"].iloc[0]
        for c in ("organic", "referral")
    }
    assert by_channel["organic"] != by_channel["referral"]
    scoring.save(tmp_path / "model")
    again = ltvcast.load_scoring_model(tmp_path / "model")
    pd.testing.assert_frame_equal(again.score(data), scoring.score(data))
    assert again.covariates == scoring.covariates
    plain = train_model(data, horizon="60d", model="btyd")
    with pytest.raises(ltvcast.ConfigError, match="no covariates"):
        plain.coefficient_table()


def test_model_params_are_checked_and_kept_by_the_fallback(
    data: CustomerData, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        ltvcast.ConfigError, match="model 'gbdt' has no hyperparameter 'covariates'"
    ):
        train_model(data, horizon="60d", model="gbdt", model_params={"covariates": ("channel",)})

    class Picky(BTYDForecaster):
        """Takes covariates and a knob of its own; never has enough data."""

        name = "picky"

        def __init__(self, covariates: tuple[str, ...] = (), knob: float = 1.0) -> None:
            super().__init__(covariates=covariates)
            self.knob = knob

        def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
            raise InsufficientDataError("picky wants more")

    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    registry.register("picky", Picky)
    notes: list[str] = []
    params = {"covariates": ["channel"], "knob": 2.0}
    fitted = fit_forecaster(
        "picky", data, data.last_timestamp(), Horizon(60, "d"), on_fallback=notes.append,
        model_params=params,
    )  # fmt: skip
    assert fitted.name == "btyd" and fitted.get_params()["covariates"] == ("channel",)
    assert notes == ["picky cannot train here (picky wants more); using btyd, "
                     "covariates=['channel'] instead"]  # fmt: skip
