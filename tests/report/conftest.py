"""A simulated store run through validation, a two-model backtest and a BTYD fit (module-wide)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.clean import CleaningReport
from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import BacktestResult, backtest, default_cutoff
from ltvcast.models import create
from ltvcast.models.base import Forecaster
from ltvcast.pipeline import ScoringModel, train_model
from ltvcast.timeframe import Horizon


@dataclass
class Pipeline:
    """Everything :func:`ltvcast.report.build_report` takes."""

    data: CustomerData
    cleaning: CleaningReport
    result: BacktestResult
    scoring: ScoringModel
    forecaster: Forecaster
    predictions: pd.DataFrame
    as_of: pd.Timestamp
    files: dict[str, Path]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """600 simulated customers over 400 days (1% dirty rows), 60-day horizon."""
    from ltvcast.data.synthetic import simulate_store, write_store
    from ltvcast.data.validate import load_customer_data

    horizon = Horizon(60, "d")
    store = simulate_store(600, days=400, dirty_rate=0.01, random_state=1)
    files = write_store(store, tmp_path_factory.mktemp("store"), horizon=horizon)
    data, cleaning = load_customer_data(files["transactions"], files["events"], files["profiles"])
    result = backtest(
        data, default_cutoff(data, horizon), horizon, [create("baseline"), create("btyd")]
    )
    as_of = data.last_timestamp()
    scoring = train_model(data, model="btyd", horizon=horizon, as_of=as_of, cleaning=cleaning)
    model = scoring.forecaster
    return Pipeline(
        data, cleaning, result, scoring, model, model.predict(data, as_of), as_of, files
    )
