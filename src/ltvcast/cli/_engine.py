"""How train, predict and forecast run: in memory, or partitioned by customer.

:func:`plan` chooses (:func:`ltvcast.engine.plan_job`: by input size, unless ``--partitions``
says) and prints the choice; :func:`partitioned` splits and cleans the transactions in
customer buckets (:class:`ltvcast.engine.LocalJob`) for the command to train or score on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from ltvcast.cli._app import console
from ltvcast.cli._options import Inputs, print_cleaning, step

if TYPE_CHECKING:
    from ltvcast.engine.local import LocalJob
    from ltvcast.engine.plan import Plan
    from ltvcast.pipeline import ScoringModel

PartitionsOpt = Annotated[
    int | None,
    typer.Option(
        "--partitions",
        help="Customer buckets to split the transactions into (0: in memory). Default: in "
        "memory under 2,000,000 rows, else buckets of at most 500,000 rows, for the models "
        "the partitioned path runs (training btyd, pnbd, bgcnbd, mbgcnbd; scoring any BTYD "
        "model; transactions only).",
        min=0,
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
    model: str | None = None,
    scoring: ScoringModel | None = None,
    intervals: bool = False,
) -> Plan:
    """The run of a command that trains ``model`` or scores with ``scoring`` (with value
    intervals, which run in memory only), printed."""
    from ltvcast.engine.plan import plan_job

    refusal = "--intervals runs in memory only (use --partitions 0)" if intervals else None
    chosen = plan_job(
        inputs.transactions,
        partitions=partitions,
        workers=workers or os.cpu_count() or 1,
        refusal=refusal or _refusal(inputs, model, scoring),
    )
    console.print(f"Engine: {chosen.describe()}", highlight=False)
    return chosen


@contextmanager
def partitioned(
    inputs: Inputs, run: Plan, as_of: str | None, *, model: str | None = None, keep: bool = True
) -> Iterator[LocalJob]:
    """A job whose transactions are split and cleaned (the cleaning report printed), summarised
    for training ``model`` when given, and kept for scoring unless not ``keep``."""
    from ltvcast.engine.fit import needs_litt
    from ltvcast.engine.local import LocalJob
    from ltvcast.models.btyd import BTYDForecaster
    from ltvcast.models.registry import create

    forecaster = None if model is None else create(model)
    litt = isinstance(forecaster, BTYDForecaster) and needs_litt(forecaster)
    with LocalJob(
        inputs.transactions,
        as_of=as_of,
        columns=inputs.columns,
        options=inputs.options,
        buckets=run.buckets,
        workers=run.workers,
        keep=keep,
    ) as job:
        with step(f"Splitting the transactions into {run.buckets} customer buckets"):
            job.split()
        with step(f"Loading and validating data in {run.buckets} buckets"):
            report = job.clean(summarise=model is not None, with_litt=litt)
        print_cleaning(report)
        yield job


def _refusal(inputs: Inputs, model: str | None, scoring: ScoringModel | None) -> str | None:
    """Why the command cannot run partitioned, or ``None``."""
    from ltvcast.engine.plan import partitioned_models_message

    if inputs.events is not None or inputs.profiles is not None:
        return "--events and --profiles are read in memory only (use --partitions 0)"
    if inputs.options.winsorize_quantile is not None:
        return "--winsorize caps amounts at a quantile of the whole table (use --partitions 0)"
    if scoring is not None:
        from ltvcast.models.btyd import BTYDForecaster

        if not isinstance(scoring.forecaster.chosen, BTYDForecaster):
            return partitioned_models_message(scoring.chosen_name, scoring=True)
    if model is not None:
        from ltvcast.engine.fit import fits_from_summary
        from ltvcast.models.registry import AUTO, forecaster_class

        if model == AUTO or not fits_from_summary(forecaster_class(model)):
            return partitioned_models_message(model)
    return None
