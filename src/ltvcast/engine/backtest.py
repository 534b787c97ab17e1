"""Backtests partitioned by customer: each model trained at the cutoff on the buckets, each
bucket labelled and scored where it runs.

A customer's label (spend and purchase days in ``(cutoff, cutoff + horizon]``,
:func:`~ltvcast.data.purchases.horizon_labels`) and forecast are functions of their own rows,
so :func:`backtest_job` summarises a job's buckets at the cutoff
(:meth:`~ltvcast.engine.jobs.BucketJob.summarise`), trains every model there as ``train``
does partitioned (:meth:`~ltvcast.engine.jobs.BucketJob.train`: BTYD on every customer's RFM
summary, gbdt on a customer sample), and runs one pass over the buckets
(:meth:`~ltvcast.engine.jobs.BucketJob.backtest_parts`: the local job's workers, or Spark
tasks): each bucket loads the saved models and, for its customers seen up to the cutoff,
gives their labels and every model's forecast from their rows up to the cutoff
(:func:`~ltvcast.engine.jobs.backtest_rows`). What comes back is one row per customer (not
per transaction or event), and the metrics are scored over all customers at once by
:func:`~ltvcast.evaluation.backtest.scored_result`, as in memory: given the same models on
the same customers, the metrics are those of :func:`~ltvcast.evaluation.backtest.backtest`
in memory (``tests/engine/test_backtest.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.engine.fit import needs_litt, trains_partitioned
from ltvcast.engine.jobs import LABELS, SCORED, BucketJob, scored_columns
from ltvcast.engine.plan import SAMPLE_CUSTOMERS, partitioned_models_message
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
from ltvcast.models.registry import create
from ltvcast.pipeline import ScoringModel
from ltvcast.timeframe import Horizon, parse_as_of


def backtest_job(
    job: BucketJob,
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
        A job whose buckets are split and cleaned (a local job's kept); its as-of becomes
        ``cutoff``.
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
    forecasters = {name: create(name) for name in models if trains_partitioned(name)}
    litt = any(isinstance(f, BTYDForecaster) and needs_litt(f) for f in forecasters.values())
    job.summarise(when, with_litt=litt)
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
        notes = scoring.training.notes if scoring.training is not None else ()
        trained[name] = _Trained(scoring, time.perf_counter() - started, "; ".join(notes) or None)
    done = job.backtest_parts([t.scoring for t in trained.values()], when, label_end)
    check_customers(sum(len(frame) for frame, _ in done), when)
    rows = pd.concat([frame for frame, _ in done], ignore_index=True)
    rows = rows.sort_values(CUSTOMER_ID, kind="stable", ignore_index=True)
    actuals = rows.set_index(CUSTOMER_ID)[list(LABELS)]
    results = []
    for name in models:
        if name in skipped:
            result = skipped[name]
            if progress is not None:
                progress(f"{name} skipped: {result.error}")
        else:
            at = list(trained).index(name)
            predictions = rows[[CUSTOMER_ID, *scored_columns(at)]]
            predictions = predictions.set_axis([CUSTOMER_ID, *SCORED], axis=1)
            timed = (trained[name].fit_seconds, float(sum(s[at] for _, s in done)))
            note = trained[name].notes
            result = scored_result(name, predictions, actuals, when, timed, note=note)
        results.append(result)
    return BacktestResult(when, horizon, len(actuals), actuals, results)


def backtest_cutoff(
    job: BucketJob, horizon: Horizon, cutoff: str | pd.Timestamp | None
) -> pd.Timestamp:
    """``cutoff`` resolved against the job's data (default: the latest whose whole horizon
    lies in the data, as :func:`~ltvcast.evaluation.backtest.default_cutoff`)."""
    last = job.last_timestamp
    return horizon.start(last) if cutoff is None else parse_as_of(cutoff, last)


def _skipped(name: str, error: str, fit_seconds: float = np.nan) -> ModelResult:
    return ModelResult(name, {}, fit_seconds, np.nan, None, error)


@dataclass(frozen=True)
class _Trained:
    """A model trained at the job's as-of, its fit time and notes."""

    scoring: ScoringModel
    fit_seconds: float
    notes: str | None
