"""Backtests partitioned by customer: each model trained at the cutoff on the buckets, each
bucket scored and labelled in a worker.

A customer's label (spend and purchase days in ``(cutoff, cutoff + horizon]``,
:func:`~ltvcast.data.purchases.horizon_labels`) and forecast are functions of their own rows,
so :func:`backtest_job` summarises the kept buckets of a
:class:`~ltvcast.engine.local.LocalJob` at the cutoff (:meth:`LocalJob.summarise
<ltvcast.engine.local.LocalJob.summarise>`), trains every model there as ``train`` does
partitioned (:meth:`~ltvcast.engine.jobs.BucketJob.train`: BTYD on every customer's RFM
summary, gbdt on a customer sample), and maps the buckets over the workers in one pass:
each loads the saved models and, for its customers seen up to the cutoff, gives their labels
and every model's forecast from their rows up to the cutoff (:func:`backtest_rows`, the
per-bucket function). What comes back is one row per customer (not per transaction or
event), and the metrics are scored over all customers at once by
:func:`~ltvcast.evaluation.backtest.scored_result`, as in memory: given the same models on
the same customers, the metrics are those of
:func:`~ltvcast.evaluation.backtest.backtest` in memory
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
from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
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
from ltvcast.pipeline import ScoringModel, load_scoring_model
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
    trained: dict[str, _Trained] = {}
    skipped: dict[str, ModelResult] = {}
    for name in models:
        if progress is not None:
            progress(f"backtesting {name}")
        if name not in forecasters:
            skipped[name] = _skipped(name, partitioned_models_message(name))
            continue
        started = time.perf_counter()
        try:
            scoring = job.train(name, horizon, on_note=progress, sample_customers=sample_customers)
        except InsufficientDataError as err:
            skipped[name] = _skipped(name, str(err), time.perf_counter() - started)
            continue
        fit_seconds = time.perf_counter() - started
        notes = scoring.training.notes if scoring.training is not None else ()
        model_dir = scoring.save(folder / f"model-{len(trained)}")
        trained[name] = _Trained(model_dir, fit_seconds, "; ".join(notes) or None)
    dirs = [t.model_dir for t in trained.values()]
    tasks = [
        _BucketTask(b, job.kinds, dirs, when, label_end, folder / f"{i}.parquet")
        for i, b in enumerate(job.bucket_files)
    ]
    done = [d for d in job.map(_backtest_bucket, tasks) if d is not None]
    rows = pd.concat([pd.read_parquet(path) for path, _ in done], ignore_index=True)
    rows = rows.sort_values(CUSTOMER_ID, kind="stable", ignore_index=True)
    actuals = rows.set_index(CUSTOMER_ID)[list(LABELS)]
    check_customers(len(actuals), when)
    results = []
    for name in models:
        if name in skipped:
            result = skipped[name]
            if progress is not None:
                progress(f"{name} skipped: {result.error}")
        else:
            at = list(trained).index(name)
            predictions = rows[[CUSTOMER_ID, *_columns(at)]].set_axis(_SCORED, axis=1)
            timed = (trained[name].fit_seconds, float(sum(s[at] for _, s in done)))
            note = trained[name].notes
            result = scored_result(name, predictions, actuals, when, timed, note=note)
        results.append(result)
    return BacktestResult(when, horizon, len(actuals), actuals, results)


def backtest_cutoff(
    job: LocalJob, horizon: Horizon, cutoff: str | pd.Timestamp | None
) -> pd.Timestamp:
    """``cutoff`` resolved against the job's data (default: the latest whose whole horizon
    lies in the data, as :func:`~ltvcast.evaluation.backtest.default_cutoff`)."""
    last = job.last_timestamp
    return horizon.start(last) if cutoff is None else parse_as_of(cutoff, last)


def backtest_rows(
    data: CustomerData,
    cutoff: pd.Timestamp,
    end: pd.Timestamp,
    models: Sequence[ScoringModel],
) -> tuple[pd.DataFrame, list[float]]:
    """One bucket's backtest: for each customer seen up to ``cutoff`` (in id order) the
    labels in ``(cutoff, end]`` and each model's forecast from the rows up to ``cutoff``
    (columns ``predicted_value_<i>``, ``p_active_<i>``); the seconds each model took."""
    data = data.until(end)
    train = data.until(cutoff)
    customers = train.customers()
    rows = horizon_labels(data.transactions, customers, cutoff, end).reset_index()
    seconds = []
    for at, scoring in enumerate(models):
        started = time.perf_counter()
        forecasts = scoring.forecaster.predict(train, cutoff).set_index(CUSTOMER_ID)
        scored = forecasts.reindex(customers)[_SCORED[1:]].to_numpy()
        rows[_columns(at)] = scored
        seconds.append(time.perf_counter() - started)
    return rows, seconds


#: Label columns of :func:`backtest_rows` (:func:`~ltvcast.data.purchases.horizon_labels`).
LABELS = ("value", "purchases")


def _columns(at: int) -> list[str]:
    """Model ``at``'s columns in :func:`backtest_rows`."""
    return [f"{column}_{at}" for column in _SCORED[1:]]


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


@dataclass(frozen=True)
class _BucketTask:
    bucket: BucketFiles
    kinds: dict[str, bool | None]
    model_dirs: list[Path]
    cutoff: pd.Timestamp
    end: pd.Timestamp
    out: Path


def _backtest_bucket(task: _BucketTask) -> tuple[Path, list[float]] | None:
    data = task.bucket.read(task.kinds)
    if data.until(task.cutoff).customers().empty:
        return None
    models = [load_scoring_model(folder) for folder in task.model_dirs]
    rows, seconds = backtest_rows(data, task.cutoff, task.end, models)
    rows.to_parquet(task.out, index=False)
    return task.out, seconds
