"""How train, predict, forecast and recommend run: in memory, partitioned by customer, or on
Spark.

:func:`plan` chooses (:func:`ltvcast.engine.plan_job`: by input size, unless ``--partitions``
says; ``--engine spark``: on Spark) and prints the choice; :func:`partitioned` splits and
cleans the transactions in customer buckets (:class:`ltvcast.engine.LocalJob`, or
:class:`ltvcast.engine.SparkJob`) for the command to train or score on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ltvcast.cli._app import console
from ltvcast.cli._options import Inputs, print_cleaning, step

if TYPE_CHECKING:
    from ltvcast.engine.local import LocalJob
    from ltvcast.engine.plan import Plan
    from ltvcast.engine.spark import SparkJob
    from ltvcast.pipeline import ScoringModel

PartitionsOpt = Annotated[
    int | None,
    typer.Option(
        "--partitions",
        help="Customer buckets to split the transactions, events and profiles into (0: in "
        "memory). Default: in memory under 2,000,000 rows (all tables together), else "
        "buckets of at most 500,000 rows, for the models the partitioned path runs (training "
        "btyd, pnbd, bgcnbd, mbgcnbd on every customer and gbdt on a customer sample; "
        "scoring any BTYD model and gbdt).",
        min=0,
    ),
]
#: The engines ``--engine`` names.
ENGINES = ("local", "spark")
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local (this machine: in memory or partitioned) or spark (customer buckets as "
        "Spark tasks: pip install 'ltvcast[spark]'; the partitioned path's models; "
        "predictions written as a folder of Parquet parts).",
    ),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL of --engine spark. Default: local[*], or spark-submit's --master.",
    ),
]
SampleOpt = Annotated[
    int | None,
    typer.Option(
        "--sample-customers",
        help="Customers gbdt trains on when the job runs partitioned: a fixed hash-based "
        "sample, all their rows (vocabularies, encoders and segment cuts come from it). "
        "Default: 100,000 (chosen by a learning curve: bench/sample_curve.py).",
        min=1,
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", help="Worker processes of a partitioned run (default: the CPUs).", min=1
    ),
]


def plan(
    inputs: Inputs,
    partitions: int | None,
    workers: int | None,
    *,
    engine: str = "local",
    spark_master: str | None = None,
    model: str | None = None,
    scoring: ScoringModel | None = None,
    intervals: bool = False,
    in_memory: str | None = None,
) -> Plan:
    """The run of a command that trains ``model`` or scores with ``scoring`` (with value
    intervals, which run in memory only) on ``engine``, printed (a Spark session is started
    here, to name its master); ``in_memory`` says why the command must run in memory."""
    from ltvcast.engine.plan import Plan, plan_job

    refusal = "--intervals runs in memory only (use --partitions 0)" if intervals else in_memory
    refusal = refusal or _refusal(inputs, model, scoring)
    if check_engine(engine, spark_master) == "spark":
        from ltvcast.exceptions import ConfigError

        refusal = refusal or _spark_refusal(inputs)
        if refusal is not None:
            raise ConfigError(refusal.replace("--partitions 0", "--engine local --partitions 0"))
        if partitions == 0:
            raise ConfigError(
                "--engine spark runs partitioned; --partitions 0 needs --engine local"
            )
        master = _session(spark_master).sparkContext.master
        chosen = Plan(partitions or 0, 0, "--engine spark", spark_master=master)
    else:
        chosen = plan_job(
            inputs.transactions,
            partitions=partitions,
            workers=workers or os.cpu_count() or 1,
            refusal=refusal,
            others=[p for p in (inputs.events, inputs.profiles) if p is not None],
        )
    console.print(f"Engine: {chosen.describe()}", highlight=False)
    return chosen


def check_engine(engine: str, spark_master: str | None) -> str:
    """``engine``, checked (with ``--spark-master`` given to Spark only)."""
    if engine not in ENGINES:
        raise typer.BadParameter(f"--engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if spark_master is not None and engine != "spark":
        raise typer.BadParameter("--spark-master needs --engine spark")
    return engine


@contextmanager
def partitioned(
    inputs: Inputs, run: Plan, as_of: str | None, *, model: str | None = None, keep: bool = True
) -> Iterator[LocalJob | SparkJob]:
    """A job whose tables are split and cleaned (the cleaning report printed), summarised
    for training ``model`` when given, and kept for scoring (or for ``model``'s sample)
    unless not ``keep``."""
    from ltvcast.engine.fit import needs_litt
    from ltvcast.engine.local import LocalJob
    from ltvcast.engine.plan import SAMPLED_MODELS
    from ltvcast.models.btyd import BTYDForecaster
    from ltvcast.models.registry import create

    forecaster = None if model is None else create(model)
    litt = isinstance(forecaster, BTYDForecaster) and needs_litt(forecaster)
    tables = ", ".join(
        name
        for name, path in (("events", inputs.events), ("profiles", inputs.profiles))
        if path is not None
    )
    what = f"transactions{', ' + tables if tables else ''}"
    if run.spark_master is not None:
        from ltvcast.engine.spark import SparkJob

        with SparkJob(
            inputs.location or str(inputs.transactions),
            spark=_session(run.spark_master),
            events=inputs.events,
            profiles=inputs.profiles,
            as_of=as_of,
            columns=inputs.columns,
            options=inputs.options,
            buckets=run.buckets or None,
        ) as spark_job:
            with step(f"Reading the {what} on Spark"):
                spark_job.split()
            with step(f"Loading and validating data in {spark_job.buckets} buckets on Spark"):
                report = spark_job.clean(summarise=model is not None, with_litt=litt)
            print_cleaning(report)
            yield spark_job
        return
    with LocalJob(
        inputs.transactions,
        events=inputs.events,
        profiles=inputs.profiles,
        as_of=as_of,
        columns=inputs.columns,
        options=inputs.options,
        buckets=run.buckets,
        workers=run.workers,
        keep=keep or model in SAMPLED_MODELS,
    ) as job:
        with step(f"Splitting the {what} into {run.buckets} customer buckets"):
            job.split()
        with step(f"Loading and validating data in {run.buckets} buckets"):
            report = job.clean(summarise=model is not None, with_litt=litt)
        print_cleaning(report)
        yield job


def _session(master: str | None) -> Any:
    """The Spark session on ``master`` (quiet: errors only in Spark's log)."""
    from ltvcast.engine.spark import spark_session

    session = spark_session(master)
    session.sparkContext.setLogLevel("ERROR")
    return session


def _refusal(inputs: Inputs, model: str | None, scoring: ScoringModel | None) -> str | None:
    """Why the command cannot run partitioned, or ``None``."""
    from ltvcast.engine.plan import partitioned_models_message

    if scoring is not None:
        from ltvcast.engine.jobs import check_scorable
        from ltvcast.exceptions import ConfigError

        try:
            check_scorable(scoring)
        except ConfigError as err:
            return str(err)
    if model is not None:
        from ltvcast.engine.fit import trains_partitioned

        if not trains_partitioned(model):
            return partitioned_models_message(model)
    return None


def _spark_refusal(inputs: Inputs) -> str | None:
    """Why the command cannot run on Spark (beyond :func:`_refusal`), or ``None``: amounts
    are not capped (``--winsorize``), and events and profiles are read from local paths (a
    URI's ``//`` is lost in a path; only the transactions argument keeps it)."""
    from urllib.parse import urlparse

    if inputs.options.winsorize_quantile is not None:
        return "--winsorize runs on --engine local (the Spark engine does not cap amounts)"
    for flag, path in (("--events", inputs.events), ("--profiles", inputs.profiles)):
        if path is not None and urlparse(str(path)).scheme not in ("", "file"):
            return (
                f"{flag} {path}: --engine spark reads events and profiles from local paths "
                "(or file: URIs); only the transactions argument takes any URI Spark reads"
            )
    return None
