"""Recommendations partitioned by customer: each bucket scored and recommended in a worker.

A customer's next best action is a function of their forecast, and their items of their own
rows and the item relations every customer shares; so once the relations are learned
(:meth:`~ltvcast.pipeline.recommend.Recommender.fit_files`: DuckDB over the cleaned buckets'
Parquet files, out of core) :func:`recommend_job` maps the buckets of a
:class:`~ltvcast.engine.local.LocalJob` over its workers. Each worker loads the saved model
and item relations (nothing is pickled but paths and the policy), runs
:meth:`~ltvcast.pipeline.recommend.Recommender.recommend` on its bucket, writes its part and
returns its summary; DuckDB merges the parts into the output sorted by customer and rank.
The output is the in-memory path's table (``tests/engine/test_recommend.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.engine.jobs import check_scorable
from ltvcast.engine.local import BucketFiles, LocalJob
from ltvcast.exceptions import NotFittedError
from ltvcast.pipeline import load_scoring_model
from ltvcast.pipeline.recommend import ActionPolicy, RecommendationSummary, Recommender


@dataclass(frozen=True)
class Recommended:
    """What :func:`recommend_job` wrote: the output, its summary and the as-of time."""

    path: Path
    summary: RecommendationSummary
    as_of: pd.Timestamp


def recommend_job(job: LocalJob, recommender: Recommender, out: str | Path) -> Recommended:
    """Every customer's next best action and items as of the job's as-of, written to ``out``
    (``.csv``, ``.csv.gz`` or ``.parquet``) sorted by customer and rank: the table
    :meth:`~ltvcast.pipeline.recommend.Recommender.recommend` gives in memory.

    Parameters
    ----------
    job
        A job whose buckets are split and cleaned (kept).
    recommender
        Fitted at the job's as-of (:meth:`~ltvcast.pipeline.recommend.Recommender.fit_files`
        on ``job.parts``, or :meth:`~ltvcast.pipeline.recommend.Recommender.fit`).

    Raises
    ------
    ConfigError
        When the model's forecasts are not a function of each customer's own rows alone
        (:data:`~ltvcast.engine.plan.SCORED_BY_CUSTOMER`).
    NotFittedError
        For a recommender with items whose relations are not fitted.
    """
    check_scorable(recommender.scoring)
    if recommender.with_items and recommender.items_ is None:
        raise NotFittedError("Recommender is not fitted; call fit_files() or fit() first")
    buckets, kinds = job.bucket_files, job.kinds
    folder = job.root / "recommend"
    model_dir = recommender.scoring.save(folder / "model")
    items_dir = recommender.save_items(folder / "items")
    tasks = [
        _RecommendTask(
            bucket,
            kinds,
            model_dir,
            items_dir,
            job.as_of,
            recommender.top,
            recommender.policy,
            folder / f"{i}.parquet",
        )
        for i, bucket in enumerate(buckets)
    ]
    done = job.map(_recommend, tasks)
    path = job.write_sorted([t.out for t in tasks], out, by=(CUSTOMER_ID, "rank"))
    return Recommended(path, RecommendationSummary.merge(done), job.as_of)


@dataclass(frozen=True)
class _RecommendTask:
    bucket: BucketFiles
    kinds: dict[str, bool | None]
    model_dir: Path
    items_dir: Path | None
    as_of: pd.Timestamp
    top: int
    policy: ActionPolicy
    out: Path


def _recommend(task: _RecommendTask) -> RecommendationSummary:
    recommender = Recommender(load_scoring_model(task.model_dir), top=task.top, policy=task.policy)
    data = task.bucket.read(task.kinds)  # events and profiles too: a model may use them
    table = recommender.load_items(task.items_dir).recommend(data, task.as_of)
    table.to_parquet(task.out, index=False)
    return RecommendationSummary.of(table)
