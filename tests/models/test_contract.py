"""The forecaster contract, checked on every registered model (as scikit-learn's
``check_estimator`` does): hyperparameters only in ``__init__``, ``fit`` returns ``self``,
unfitted prediction raises, rows after as-of change nothing, a save/load round trip gives
identical predictions, the same seed gives the same predictions, bad input is an ``LTVError``.

Per-model test files keep only what is specific to their model.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import PREDICTION_COLUMNS, CustomerData
from ltvcast.exceptions import LTVError, NotFittedError
from ltvcast.models import registry
from ltvcast.models.base import Forecaster
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.timeframe import Horizon

AS_OF = pd.Timestamp("2024-06-30 23:59:59")
HORIZON = Horizon(42, "d")
#: Hyperparameters that keep the slow models quick on a small store (their defaults are
#: exercised by their own tests and the benchmarks).
QUICK: dict[str, dict[str, Any]] = {
    "seq": {"epochs": 4, "conv_filters": 8, "lstm_hidden": 8, "head_hidden": 8, "n_threads": 1},
    "gbdt": {"n_estimators": 40},
    "auto": {"candidates": ("baseline", "btyd")},
}
MODELS = sorted((*registry.model_names(), registry.AUTO))


def _store(n: int = 120, seed: int = 5) -> CustomerData:
    """Regular and rare buyers over half a year, with views and a profile column."""
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(n) % 3 == 0, 0.15, 0.02)
    days = pd.date_range("2024-01-01", "2024-09-30", freq="D")
    rows, cols = np.nonzero(rng.random((n, len(days))) < rate[:, None])
    ids = np.array([f"c{i:03d}" for i in range(n)])
    tx = pd.DataFrame(
        {
            "customer_id": ids[rows],
            "timestamp": days[cols] + pd.Timedelta(hours=10),
            "amount": rng.lognormal(3.0, 0.5, len(rows)),
        }
    )
    # after as-of: a big purchase, a return, a new buyer and a new browser (none may matter)
    late = pd.DataFrame(
        {
            "customer_id": ["c000", "c001", "late"],
            "timestamp": pd.to_datetime(["2024-07-01", "2024-07-02", "2024-07-03"]),
            "amount": [5000.0, -80.0, 20.0],
        }
    )
    tx = pd.concat([tx, late], ignore_index=True)
    events = tx.assign(event_type="view")[["customer_id", "timestamp", "event_type"]]
    browser = pd.DataFrame(
        {"customer_id": ["browser"], "timestamp": [AS_OF + pd.Timedelta(hours=1)],
         "event_type": ["cart"]}
    )  # fmt: skip
    events = pd.concat([events, browser], ignore_index=True)
    profiles = pd.DataFrame(
        {"customer_id": [*ids, "late"], "tier": [*np.where(rate > 0.1, "gold", "basic"), "gold"]}
    )
    return CustomerData(tx, events=events, profiles=profiles)


def _make(name: str) -> Forecaster:
    return registry.create(name, random_state=0, **QUICK.get(name, {}))


@pytest.fixture(scope="module")
def data() -> CustomerData:
    return _store()


@pytest.fixture(scope="module", params=MODELS)
def fitted(request: pytest.FixtureRequest, data: CustomerData) -> tuple[str, Forecaster]:
    name = request.param
    model = _make(name)
    assert model.fit(data, AS_OF, HORIZON) is model  # fit returns self
    return name, model


def test_hyperparameters_only_in_init(fitted: tuple[str, Forecaster]) -> None:
    name, model = fitted
    params = model.get_params()
    signature = inspect.signature(type(model).__init__)
    assert list(params) == [p for p in signature.parameters if p != "self"]
    assert all(p.default is not inspect.Parameter.empty for p in signature.parameters.values()
               if p.name != "self"), f"{name}: every hyperparameter needs a default"  # fmt: skip
    fresh = type(model)(**params)
    assert fresh.get_params() == params  # __init__ stores them as given
    assert not [k for k in vars(fresh) if k.endswith("_") and not k.startswith("_")]
    assert model.clone().get_params() == params


def test_unfitted_predict_raises(fitted: tuple[str, Forecaster], data: CustomerData) -> None:
    with pytest.raises(NotFittedError):
        fitted[1].clone().predict(data, AS_OF)


def test_prediction_table(fitted: tuple[str, Forecaster], data: CustomerData) -> None:
    _, model = fitted
    out = model.predict(data, AS_OF)
    assert list(out.columns[: len(PREDICTION_COLUMNS)]) == list(PREDICTION_COLUMNS)
    assert out["customer_id"].tolist() == data.until(AS_OF).customers().tolist()
    values = out[list(PREDICTION_COLUMNS[1:])].to_numpy(np.float64)
    assert np.isfinite(values).all() and (values >= 0).all()
    assert (out["p_active"] <= 1).all()


def test_rows_after_as_of_change_nothing(
    fitted: tuple[str, Forecaster], data: CustomerData
) -> None:
    name, model = fitted
    cut = data.until(AS_OF)
    truncated = _make(name).fit(cut, AS_OF, HORIZON)
    pd.testing.assert_frame_equal(model.predict(data, AS_OF), truncated.predict(cut, AS_OF))


def test_same_seed_same_predictions(fitted: tuple[str, Forecaster], data: CustomerData) -> None:
    name, model = fitted
    again = _make(name).fit(data, AS_OF, HORIZON)
    pd.testing.assert_frame_equal(again.predict(data, AS_OF), model.predict(data, AS_OF))


def test_save_load_round_trip(
    fitted: tuple[str, Forecaster], data: CustomerData, tmp_path: Path
) -> None:
    name, model = fitted
    save_model(model, tmp_path / name)
    loaded, manifest = load_model(tmp_path / name)
    assert type(loaded) is type(model) and manifest["model"] == model.name
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.predict(data, AS_OF), model.predict(data, AS_OF))


def test_bad_input_is_an_ltv_error(fitted: tuple[str, Forecaster], data: CustomerData) -> None:
    name, _ = fitted
    empty = CustomerData(data.transactions.iloc[:0])
    with pytest.raises(LTVError):
        _make(name).fit(empty, AS_OF, HORIZON)
    before = data.transactions["timestamp"].min() - pd.Timedelta(days=1)
    with pytest.raises(LTVError):
        _make(name).fit(data, before, HORIZON)
