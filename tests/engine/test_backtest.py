"""Backtests partitioned by customer give the in-memory backtest's metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.synthetic import write_simulated_store
from ltvcast.data.validate import load_customer_data
from ltvcast.engine import LocalJob
from ltvcast.engine.backtest import backtest_job
from ltvcast.evaluation.backtest import BacktestResult, default_cutoff
from ltvcast.exceptions import InsufficientDataError
from ltvcast.pipeline import backtest_models
from ltvcast.timeframe import parse_as_of, parse_horizon

from .conftest import CDNOW_COLUMNS, NOW


def _partitioned(path: Path, models: list[str], horizon: str, **job: object) -> BacktestResult:
    with LocalJob(path, options=NOW, buckets=4, workers=2, **job) as bucketed:  # type: ignore[arg-type]
        bucketed.split()
        bucketed.clean(summarise=False)
        return backtest_job(bucketed, parse_horizon(horizon), models, sample_customers=10**6)


def _assert_same(
    partitioned: BacktestResult, memory: BacktestResult, skipped: tuple[str, ...] = ()
) -> None:
    assert partitioned.cutoff == memory.cutoff
    assert partitioned.n_customers == memory.n_customers
    pd.testing.assert_frame_equal(partitioned.actuals, memory.actuals)
    for mine, theirs in zip(partitioned.results, memory.results, strict=True):
        if mine.name in skipped:
            continue
        assert (mine.name, mine.error is None) == (theirs.name, theirs.error is None)
        assert mine.metrics.keys() == theirs.metrics.keys()
        for metric, value in theirs.metrics.items():
            np.testing.assert_allclose(mine.metrics[metric], value, rtol=1e-9, err_msg=metric)


def test_btyd_backtest_on_cdnow_is_the_in_memory_one(cdnow_master: Path) -> None:
    horizon = "13w"
    data, _ = load_customer_data(cdnow_master, columns=CDNOW_COLUMNS, options=NOW)
    span = parse_horizon(horizon)
    models = ["btyd", "pnbd", "baseline"]
    memory = backtest_models(data, default_cutoff(data, span), span, models)
    partitioned = _partitioned(cdnow_master, models, horizon, columns=CDNOW_COLUMNS)
    _assert_same(partitioned, memory, skipped=("baseline",))
    assert partitioned.results[2].error is not None  # baseline is not trained partitioned
    assert "partitioned" in (partitioned.results[2].error or "")
    assert partitioned.results[0].metrics["normalized_gini"] > 0.5


def test_gbdt_with_events_and_profiles_backtests_as_in_memory(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """On a store with events and profiles, gbdt's sample (all customers here) and btyd
    give the in-memory metrics; events-only customers are labelled with zeros."""
    folder = tmp_path_factory.mktemp("backtest-shop")
    shop = write_simulated_store(
        folder, 600, chunk_size=300, days=400, dirty_rate=0.02, random_state=5
    )
    data, _ = load_customer_data(
        shop["transactions"], events=shop["events"], profiles=shop["profiles"], options=NOW
    )
    span = parse_horizon("60d")
    cutoff = parse_as_of("2023-11-30", data.last_timestamp())
    models = ["gbdt", "btyd"]
    memory = backtest_models(data, cutoff, span, models)
    with LocalJob(
        shop["transactions"], events=shop["events"], profiles=shop["profiles"], options=NOW,
        buckets=3, workers=2,
    ) as job:  # fmt: skip
        job.split()
        job.clean(summarise=False)
        partitioned = backtest_job(job, span, models, cutoff=cutoff, sample_customers=10**6)
    _assert_same(partitioned, memory)
    assert all(r.error is None for r in partitioned.results)


def test_a_cutoff_without_a_whole_horizon_after_it_is_refused(cdnow_master: Path) -> None:
    with LocalJob(cdnow_master, columns=CDNOW_COLUMNS, options=NOW, buckets=2, workers=1) as job:
        job.split()
        job.clean(summarise=False)
        with pytest.raises(InsufficientDataError, match="needs data to"):
            backtest_job(job, parse_horizon("13w"), ["btyd"], cutoff="1998-06-01")
