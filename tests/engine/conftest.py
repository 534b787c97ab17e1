"""Inputs of the partitioned-path tests: CDNOW's raw file and small simulated stores."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ltvcast.data.clean import CleaningOptions
from ltvcast.data.io import ColumnMap
from ltvcast.data.synthetic import write_simulated_store
from ltvcast.data.validate import DEFAULT_COLUMNS, load_customer_data
from ltvcast.models.base import Forecaster
from ltvcast.pipeline import ScoringModel, train_model
from ltvcast.timeframe import parse_horizon, parse_horizons

#: How CDNOW_master.txt names the canonical columns.
CDNOW_COLUMNS = ColumnMap(time="date", amount="dollar_value", quantity="number_of_cds")
#: The cleaning options of every job here (a fixed "now").
NOW = CleaningOptions(now=pd.Timestamp("2026-01-01"))
#: A path's model, cleaning report lines and predictions.
Run = tuple[ScoringModel, list[str], pd.DataFrame]


def in_memory(
    path: Path,
    model: str,
    horizon: str,
    *,
    as_of: str | None = None,
    columns: ColumnMap = DEFAULT_COLUMNS,
    curves: str | None = None,
) -> Run:
    """The in-memory path's run (``curves``: those horizons and a 10% discount rate)."""
    spans = None if curves is None else parse_horizons(curves)
    data, cleaning = load_customer_data(path, columns=columns, options=NOW)
    memory = train_model(
        data, horizon=parse_horizon(horizon), model=model, as_of=as_of, cleaning=cleaning
    )
    rate = 0.1 if curves else None
    predictions = memory.predict(data, as_of, horizons=spans, discount_rate=rate)
    return memory, cleaning.lines(), predictions


def saved_state(forecaster: Forecaster) -> dict[str, Any]:
    """``forecaster.save_state`` written to a temporary folder (a gbdt writes its boosters)."""
    with tempfile.TemporaryDirectory() as folder:
        return forecaster.save_state(Path(folder))


def assert_same(partitioned: Run, memory: Run, *, rtol: float = 0.0) -> None:
    """Same report, manifest (window, customers, cleaning, cuts), parameters and
    predictions (exactly, or to ``rtol``)."""
    (model, lines, predictions), (model_m, lines_m, predictions_m) = partitioned, memory
    assert lines == lines_m
    assert model.manifest == model_m.manifest
    assert saved_state(model.forecaster) == saved_state(model_m.forecaster)
    exact = {"check_exact": True} if not rtol else {"rtol": rtol, "atol": 0.0}
    pd.testing.assert_frame_equal(predictions, predictions_m, **exact)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def cdnow_master(data_dir: Path) -> Path:
    """The raw CDNOW master log (whitespace-separated text)."""
    return data_dir / "cdnow" / "CDNOW_master.txt"


@pytest.fixture(scope="session", params=["csv", "parquet"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Transactions of a dirty simulated store written in chunks (1,500 customers)."""
    fmt = request.param
    folder = tmp_path_factory.mktemp(f"store-{fmt}")
    paths = write_simulated_store(
        folder, 1500, chunk_size=600, fmt=fmt, days=400, dirty_rate=0.03, events=False,
        random_state=7,
    )  # fmt: skip
    return paths["transactions"]
