"""Choosing between the in-memory path and the partitioned one, by input size.

Small inputs keep the in-memory path: it is faster there (no split, no worker start). From
:data:`PARTITION_FROM_ROWS` transaction rows on, a job whose model allows it runs partitioned,
in buckets of at most :data:`BUCKET_ROWS` rows, as many as a multiple of the workers. The
choice and its reason are the plan's; ``partitions`` forces it (0: in memory).
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ltvcast.data.io import SUPPORTED_SUFFIXES, check_table_file
from ltvcast.exceptions import ConfigError, SchemaError

#: Transaction rows (estimated for text files) from which jobs run partitioned by default.
#: Measured on 2 cores, whole ``forecast --model btyd`` processes on simulated stores: 1.04M
#: rows took 3.5-4.3 s in memory and 4.8 s partitioned, 2.6M rows 6.8 s and 5.7 s
#: (bench/bench_scale.py): the split, the buckets written and read again and the merge
#: cost more than two workers save below about two million rows.
PARTITION_FROM_ROWS = 2_000_000
#: Most rows a bucket gets when the buckets are chosen by size (a worker holds one bucket).
BUCKET_ROWS = 500_000
#: Models the partitioned path trains on a customer sample (with the in-memory path's
#: training, :meth:`~ltvcast.engine.jobs.BucketJob.train_sample`).
SAMPLED_MODELS = ("gbdt",)
#: Models besides the BTYD ones whose forecasts are a function of each customer's own rows
#: at the as-of time, given what they learnt (so they are scored bucket by bucket): gbdt's
#: features are per customer, its vocabularies and encoders fitted state.
SCORED_BY_CUSTOMER = ("gbdt",)
#: Customers a sampled model trains on by default. On a simulated store of 200,000
#: customers with events and profiles (bench/sample_curve.py, bench_scale.py --events),
#: gbdt's holdout Gini was flat from 12,500 customers on (0.904, 0.899, 0.909 at 12,500,
#: 25,000 and 50,000; 0.903 at 100,000), within the noise of one sample; the default keeps a
#: margin over that at a training cost that stays within the 1M-customer budget.
SAMPLE_CUSTOMERS = 100_000


@dataclass(frozen=True)
class Plan:
    """How a job runs: in memory (``buckets == 0``) or partitioned, and why."""

    buckets: int
    workers: int
    reason: str
    #: The Spark master a Spark job runs on (``None``: this machine); a Spark job with
    #: ``buckets == 0`` chooses them by size.
    spark_master: str | None = None

    @property
    def partitioned(self) -> bool:
        """Whether the job runs in customer buckets."""
        return self.buckets > 0 or self.spark_master is not None

    def describe(self) -> str:
        """One line for the user."""
        if self.spark_master is not None:
            buckets = f"{self.buckets} customer buckets" if self.buckets else "buckets by size"
            return f"spark on {self.spark_master}: {buckets} ({self.reason})"
        if not self.partitioned:
            return f"in memory ({self.reason})"
        return (
            f"partitioned: {self.buckets} customer buckets on {self.workers} worker"
            f"{'s' if self.workers != 1 else ''} ({self.reason})"
        )


def plan_job(
    transactions: Path,
    *,
    partitions: int | None,
    workers: int,
    refusal: str | None,
    others: Sequence[Path] = (),
) -> Plan:
    """The plan of a job over ``transactions`` and the ``others`` tables split with it
    (events, profiles): their rows together choose it.

    Parameters
    ----------
    partitions
        ``None`` to choose by size, 0 for in memory, else that many buckets.
    workers
        Worker processes a partitioned job gets.
    refusal
        Why the job cannot run partitioned (its model, its inputs), or ``None``.

    Raises
    ------
    ConfigError
        For buckets asked of a job that cannot run partitioned, or negative counts.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1; got {workers}")
    if partitions is not None and partitions < 0:
        raise ConfigError(f"--partitions must be 0 (in memory) or more; got {partitions}")
    if partitions == 0:
        return Plan(0, workers, "--partitions 0")
    if partitions is not None:
        if refusal is not None:
            raise ConfigError(refusal)
        return Plan(partitions, min(workers, partitions), f"--partitions {partitions}")
    if refusal is not None:
        return Plan(0, workers, refusal)
    rows = sum(count_rows(path) for path in (transactions, *others))
    if rows < PARTITION_FROM_ROWS:
        return Plan(0, workers, f"~{rows:,} rows, under {PARTITION_FROM_ROWS:,}")
    buckets = workers * math.ceil(rows / (workers * BUCKET_ROWS))
    return Plan(buckets, workers, f"~{rows:,} rows")


def partitioned_models_message(name: str, *, scoring: bool = False) -> str:
    """Why model ``name`` does not run partitioned, and what to do."""
    if scoring:
        runs = (
            f"scores BTYD models and {', '.join(SCORED_BY_CUSTOMER)} (their forecasts are "
            "a function of each customer's own rows)"
        )
    else:
        runs = (
            "trains btyd, pnbd, bgcnbd and mbgcnbd (from every customer's RFM summary) and "
            f"{', '.join(SAMPLED_MODELS)} (on a customer sample)"
        )
    return (
        f"the partitioned path {runs}; {name} needs the whole table in memory: use --partitions 0"
    )


def count_rows(path: Path) -> int:
    """The data rows of an input table: exact for Parquet (its metadata), estimated from the
    size and the first lines for text (used to plan, never to count).

    Raises
    ------
    SchemaError
        For a file :func:`~ltvcast.data.io.read_table` refuses at once (missing, empty ...).
    """
    if SUPPORTED_SUFFIXES[check_table_file(path)] is None:
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (OSError, ValueError) as err:
            raise SchemaError(f"{path}: cannot read the file as Parquet ({err})") from None
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        head = handle.read(1 << 16)
    lines = max(head.count(b"\n"), 1)
    size = path.stat().st_size * (4 if path.name.lower().endswith(".gz") else 1)
    return max(int(size / (len(head) / lines)) - 1, 1)
