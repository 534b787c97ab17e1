"""Backtests partitioned by customer: each model trained at the cutoff on the buckets, each
bucket scored and labelled in a worker.

A customer's label (spend and purchase days in ``(cutoff, cutoff + horizon]``,
:func:`~ltvcast.data.purchases.horizon_labels`) and forecast are functions of their own rows,
so :func:`backtest_job` summarises the kept buckets of a
:class:`~ltvcast.engine.local.LocalJob` at the cutoff (:meth:`LocalJob.summarise
<ltvcast.engine.local.LocalJob.summarise>`), trains every model there as ``train`` does
partitioned (:meth:`~ltvcast.engine.jobs.BucketJob.train`: BTYD on every customer's RFM
summary, gbdt on a customer sample), and maps the buckets over the workers: each labels its
customers seen up to the cutoff, or loads a saved model and scores them on their rows up to
the cutoff. What comes back is one row per customer (not per transaction or event), and the
metrics are scored over all customers at once by
:func:`~ltvcast.evaluation.backtest.scored_result`, as in memory. Given the same models on
the same customers, the metrics are the in-memory :func:`~ltvcast.evaluation.backtest.backtest`'s
(``tests/engine/test_backtest.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.engine.fit import fits_from_summary, needs_litt
from ltvcast.engine.local import BucketFiles, LocalJob
from ltvcast.engine.plan import SAMPLE_CUSTOMERS, SAMPLED_MODELS, partitioned_models_message
from ltvcast.evaluation.backtest import (
    BacktestResult,
    ModelResult,
    check_customers,
    day_end,
    label_window_end,
    scored_result,
)
from ltvcast.exceptions import InsufficientDataError
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.models.registry import AUTO, create, forecaster_class
from ltvcast.pipeline import load_scoring_model
from ltvcast.timeframe import Horizon, parse_as_of

#: The columns of a model's predictions that a backtest scores.
_SCORED = [CUSTOMER_ID, "predicted_value", "p_active"]


def backtest_job(
    job: LocalJob,
    horizon: Horizon,
    models: Sequence[str],
    *,
    cutoff: str | pd.Timestamp | None = None,
    sample_customers: int = SAMPLE_CUSTOMERS,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Train each of ``models`` up to ``cutoff`` on the job's buckets and score it on
    ``(cutoff, cutoff + horizon]``: the result of
    :func:`~ltvcast.evaluation.backtest.backtest` in memory.

    Parameters
    ----------
    job
        A job whose buckets are split and cleaned (kept); its as-of becomes ``cutoff``.
    cutoff
        Training as-of time (default: the latest whose whole horizon lies in the data, as
        :func:`~ltvcast.evaluation.backtest.default_cutoff`).
    sample_customers
        Customers a model of :data:`~ltvcast.engine.plan.SAMPLED_MODELS` trains on.
    progress
        Called with a short line as each model starts, when one is skipped, and with what a
        model's training notes (its sample).

    Returns
    -------
    BacktestResult
        A model that cannot train on the history, or does not run partitioned, is recorded
        with its ``error`` and no metrics.

    Raises
    ------
    InsufficientDataError
        When ``cutoff + horizon`` is past the end of the data, or no customer is seen up to
        ``cutoff``.
    """
    when = backtest_cutoff(job, horizon, cutoff)
    label_end = label_window_end(day_end(job.last_timestamp), when, horizon)
    forecasters = {name: create(name) for name in models if _runs_partitioned(name)}
    litt = any(isinstance(f, BTYDForecaster) and needs_litt(f) for f in forecasters.values())
    job.summarise(when, with_litt=litt)
    folder = job.root / "backtest"
    folder.mkdir(exist_ok=True)
    buckets, kinds = job.bucket_files, job.kinds
    labelled = job.map(
        _label,
        [
            _LabelTask(b, kinds, when, label_end, folder / f"labels-{i}.parquet")
            for i, b in enumerate(buckets)
        ],
    )
    actuals = _gathered([path for path in labelled if path is not None]).set_index(CUSTOMER_ID)
    check_customers(len(actuals), when)
    results = []
    for position, name in enumerate(models):
        if progress is not None:
            progress(f"backtesting {name}")
        if name not in forecasters:
            result = _skipped(name, partitioned_models_message(name))
        else:
            trained = _train(job, name, position, horizon, sample_customers, progress)
            result = (
                trained
                if isinstance(trained, ModelResult)
                else _score(job, name, position, trained, actuals)
            )
        if result.error is not None and progress is not None:
            progress(f"{name} skipped: {result.error}")
        results.append(result)
    return BacktestResult(when, horizon, len(actuals), actuals, results)


def backtest_cutoff(
    job: LocalJob, horizon: Horizon, cutoff: str | pd.Timestamp | None
) -> pd.Timestamp:
    """``cutoff`` resolved against the job's data (default: the latest whose whole horizon
    lies in the data, as :func:`~ltvcast.evaluation.backtest.default_cutoff`)."""
    last = job.last_timestamp
    return horizon.start(last) if cutoff is None else parse_as_of(cutoff, last)


def _runs_partitioned(name: str) -> bool:
    """Whether ``name`` trains on a partitioned job (from the summary, or on a sample)."""
    return name != AUTO and (name in SAMPLED_MODELS or fits_from_summary(forecaster_class(name)))


def _skipped(name: str, error: str, fit_seconds: float = np.nan) -> ModelResult:
    return ModelResult(name, {}, fit_seconds, np.nan, None, error)


@dataclass(frozen=True)
class _Trained:
    """A model trained at the job's as-of: where it is saved, its fit time and notes."""

    model_dir: Path
    fit_seconds: float
    notes: str | None


def _train(
    job: LocalJob,
    name: str,
    position: int,
    horizon: Horizon,
    sample_customers: int,
    progress: Callable[[str], None] | None,
) -> _Trained | ModelResult:
    """``name`` trained at the job's as-of and saved, or its skipped result."""
    started = time.perf_counter()
    try:
        scoring = job.train(name, horizon, on_note=progress, sample_customers=sample_customers)
    except InsufficientDataError as err:
        return _skipped(name, str(err), time.perf_counter() - started)
    seconds = time.perf_counter() - started
    training = scoring.training
    notes = "; ".join(training.notes) if training is not None and training.notes else None
    return _Trained(scoring.save(job.root / "backtest" / f"model-{position}"), seconds, notes)


def _score(
    job: LocalJob, name: str, position: int, trained: _Trained, actuals: pd.DataFrame
) -> ModelResult:
    """Score a trained model in every bucket; its result."""
    started = time.perf_counter()
    folder = job.root / "backtest"
    tasks = [
        _ScoreTask(
            b, job.kinds, trained.model_dir, job.as_of, folder / f"scores-{position}-{i}.parquet"
        )
        for i, b in enumerate(job.bucket_files)
    ]
    written = job.map(_predict, tasks)
    predictions = _gathered([path for path in written if path is not None])
    seconds = (trained.fit_seconds, time.perf_counter() - started)
    return scored_result(name, predictions, actuals, job.as_of, seconds, note=trained.notes)


def _gathered(paths: Sequence[Path]) -> pd.DataFrame:
    """The parts' rows in customer-id order (the in-memory backtest's)."""
    frame = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    return frame.sort_values(CUSTOMER_ID, kind="stable", ignore_index=True)


@dataclass(frozen=True)
class _LabelTask:
    bucket: BucketFiles
    kinds: dict[str, bool | None]
    cutoff: pd.Timestamp
    end: pd.Timestamp
    out: Path


@dataclass(frozen=True)
class _ScoreTask:
    bucket: BucketFiles
    kinds: dict[str, bool | None]
    model_dir: Path
    cutoff: pd.Timestamp
    out: Path


def _label(task: _LabelTask) -> Path | None:
    data = task.bucket.read(task.kinds).until(task.end)
    customers = data.until(task.cutoff).customers()
    if customers.empty:
        return None
    labels = horizon_labels(data.transactions, customers, task.cutoff, task.end)
    labels.reset_index().to_parquet(task.out, index=False)
    return task.out


def _predict(task: _ScoreTask) -> Path | None:
    train = task.bucket.read(task.kinds).until(task.cutoff)
    if train.customers().empty:
        return None
    scoring = load_scoring_model(task.model_dir)
    scoring.forecaster.predict(train, task.cutoff)[_SCORED].to_parquet(task.out, index=False)
    return task.out
