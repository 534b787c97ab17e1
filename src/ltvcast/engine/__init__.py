"""Customer-partitioned execution: the jobs whose data does not fit in memory.

Every BTYD forecast is a formula of one customer's rows, and a BTYD fit needs only every
customer's RFM summary; gbdt's features are a function of one customer's rows at the as-of
time too, given what it learnt. So a job can split its input by customer into buckets (the
transactions, and the events and profiles into the same buckets by the same hash), run the
in-memory path's per-table functions on each bucket (:mod:`ltvcast.engine.buckets`) and
combine small results: cleaning reports add up, summaries are gathered for one fit, forecasts
stream to the output. :class:`~ltvcast.engine.local.LocalJob` does so on one machine with
DuckDB and a pool of worker processes; :func:`~ltvcast.engine.plan.plan_job` chooses it over
the in-memory path by input size (all tables' rows). :class:`~ltvcast.engine.spark.SparkJob`
runs the same per-bucket functions as Spark's ``groupBy(bucket).applyInPandas`` (``pip
install 'ltvcast[spark]'``), over any path Spark reads, with events and profiles, for the
same models.
Recommendations run on a local job too (:func:`~ltvcast.engine.recommend.recommend_job`):
the item relations are learned in DuckDB from the cleaned buckets' files, and each bucket is
scored and recommended in a worker.

The partitioned path gives the in-memory path's cleaning report, model and forecasts
(``tests/engine``). It applies every cleaning rule bucket by bucket, as in memory; the rules
that look at a whole column are handled so: the day/month order of numeric dates, when the
column's dates bear on it, must be given (``--date-format``); the ``--winsorize`` cap (a
quantile of the whole table, the last rule) is the quantile of the cleaned buckets' amounts,
computed by DuckDB out of core, and a second pass caps each bucket; a profile column is
numeric when every value is a number, and one whose buckets disagree (numbers in some, text
in others) is refused; the unit of numeric epoch times, the YYYYMMDD test, the
cancelled-order rule (it needs plain order ids in the column) and pandas' reading of a text
column as numbers are decided per bucket, which agrees with the whole column unless the
column mixes kinds of values. Customer ids are matched after stripping ASCII blanks (other
Unicode blanks around an id may split a customer).

The partitioned path trains ``btyd``, ``pnbd``, ``bgcnbd`` and ``mbgcnbd`` on every
customer's RFM summary, and ``gbdt`` (:data:`~ltvcast.engine.plan.SAMPLED_MODELS`) with the
in-memory training itself on a customer sample: the
:data:`~ltvcast.engine.plan.SAMPLE_CUSTOMERS` customers (``--sample-customers``) with the
smallest fixed hash of their id, with all their cleaned rows up to the as-of, gathered from
the buckets. What gbdt learns across customers (the event-type vocabulary, the profile
encoder's categories and medians, the inner backtest's choices) and the segment cuts come
from the sample. It scores (and recommends with) every BTYD model and gbdt
(:data:`~ltvcast.engine.plan.SCORED_BY_CUSTOMER`) bucket by bucket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ltvcast._lazy import load

if TYPE_CHECKING:
    from ltvcast.engine.jobs import Predicted
    from ltvcast.engine.local import LocalJob
    from ltvcast.engine.plan import (
        BUCKET_ROWS,
        PARTITION_FROM_ROWS,
        Plan,
        partitioned_models_message,
        plan_job,
    )
    from ltvcast.engine.recommend import Recommended, recommend_job
    from ltvcast.engine.spark import SparkJob, spark_session

#: Public name -> defining module, imported on first access (choosing a plan loads neither
#: DuckDB nor the models).
_PUBLIC = {
    "BUCKET_ROWS": "ltvcast.engine.plan",
    "LocalJob": "ltvcast.engine.local",
    "PARTITION_FROM_ROWS": "ltvcast.engine.plan",
    "Plan": "ltvcast.engine.plan",
    "Predicted": "ltvcast.engine.jobs",
    "Recommended": "ltvcast.engine.recommend",
    "SparkJob": "ltvcast.engine.spark",
    "partitioned_models_message": "ltvcast.engine.plan",
    "plan_job": "ltvcast.engine.plan",
    "recommend_job": "ltvcast.engine.recommend",
    "spark_session": "ltvcast.engine.spark",
}

__all__ = [
    "BUCKET_ROWS",
    "PARTITION_FROM_ROWS",
    "LocalJob",
    "Plan",
    "Predicted",
    "Recommended",
    "SparkJob",
    "partitioned_models_message",
    "plan_job",
    "recommend_job",
    "spark_session",
]


def __getattr__(name: str) -> Any:
    return load(globals(), _PUBLIC, name)
