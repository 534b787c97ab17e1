"""Fixtures of the service tests: a small simulated store and a real fitted model on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.data.store import Store
from ltvcast.data.synthetic import simulate_store
from ltvcast.models import forecaster_class
from ltvcast.scoring.artifacts import save_model
from ltvcast.timeframe import parse_horizon

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="session")
def store_data() -> CustomerData:
    sim = simulate_store(300, days=365, random_state=11)
    return CustomerData(sim.transactions, sim.events, sim.profiles)


@pytest.fixture(scope="session")
def model_dirs(
    tmp_path_factory: pytest.TempPathFactory, store_data: CustomerData
) -> dict[str, Path]:
    """``baseline`` and ``btyd`` fitted on the simulated store, saved with ``save_model``."""
    root = tmp_path_factory.mktemp("models")
    as_of = store_data.last_timestamp()
    out = {}
    for name in ("baseline", "btyd"):
        model = forecaster_class(name)().fit(store_data, as_of, parse_horizon("90d"))
        out[name] = save_model(model, root / name)
    return out


@pytest.fixture()
def db_path(tmp_path: Path, store_data: CustomerData) -> Path:
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        store.replace(store_data)
    return path
