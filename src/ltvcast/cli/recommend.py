"""The ``recommend`` command: each customer's next best action and next best items."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ltvcast.cli._app import app, console
from ltvcast.cli._engine import PartitionsOpt, WorkersOpt, partitioned, plan
from ltvcast.cli._options import Inputs, input_options, out_file, step
from ltvcast.cli.core import AsOfOpt, ModelDirArg

if TYPE_CHECKING:
    from ltvcast.pipeline.recommend import ActionPolicy


@app.command()
@input_options
def recommend(
    model_dir: ModelDirArg,
    inputs: Inputs,
    out: Annotated[Path, out_file("Recommendations file (.csv or .parquet).")],
    as_of: AsOfOpt = None,
    top: Annotated[int, typer.Option("--top", help="Items per customer.", min=1, max=100)] = 10,
    actions: Annotated[
        Path | None,
        typer.Option("--actions", help="CSV action,uplift,cost replacing the default assumptions."),
    ] = None,
    margin: Annotated[float, typer.Option("--margin", help="Margin share of revenue.")] = 1.0,
    at_risk: Annotated[
        float, typer.Option("--at-risk", help="P(active) under which a repeat buyer is at risk.")
    ] = 0.5,
    risk_aversion: Annotated[
        float,
        typer.Option("--risk-aversion", help="Share of the p10 downside band taken off value."),
    ] = 0.5,
    items: Annotated[
        bool, typer.Option("--items/--no-items", help="Recommend items (needs --item-col).")
    ] = True,
    partitions: PartitionsOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Write each customer's next best action and top items (one row per customer and item).

    Items come from the customer's own purchases and their items' co-purchases in the history
    up to as-of; actions from the model's forecasts and the catalogue's uplift and cost
    (--actions). Large inputs run in customer buckets, as predict does (BTYD models).
    """
    from ltvcast.cli._print import print_recommendations
    from ltvcast.data.io import write_table
    from ltvcast.pipeline import load_scoring_model
    from ltvcast.pipeline.recommend import RecommendationSummary, Recommender

    scoring = load_scoring_model(model_dir)
    recommender = Recommender(
        scoring, top=top, policy=_policy(actions, margin, at_risk, risk_aversion), with_items=items
    )
    learning = "Learning which items go together" if items else "Scoring customers"
    run = plan(inputs, partitions, workers, scoring=scoring)
    if run.partitioned:
        from ltvcast.engine.local import LocalJob
        from ltvcast.engine.recommend import recommend_job

        with partitioned(inputs, run, as_of) as job:
            assert isinstance(job, LocalJob)  # recommend runs on the local engine only
            with step(learning):
                recommender.fit_files(job.parts, job.as_of)
            with step(f"Recommending as of {job.as_of:%Y-%m-%d} in {run.buckets} buckets"):
                summary = recommend_job(job, recommender, out).summary
    else:
        data, _ = inputs.load()
        cutoff = scoring.resolve_as_of(data, as_of)
        data = data.until(cutoff)
        with step(learning):
            recommender.fit(data, cutoff)
        with step(f"Recommending as of {cutoff:%Y-%m-%d}"):
            table = recommender.recommend(data, cutoff)
        write_table(table, out)
        summary = RecommendationSummary.of(table)
    print_recommendations(summary, recommender.policy.catalogue)
    console.print(f"  wrote {out}")


def _policy(
    actions: Path | None, margin: float, at_risk: float, risk_aversion: float
) -> ActionPolicy:
    """The action policy of the options (the default catalogue, or --actions's)."""
    from ltvcast.pipeline.recommend import ActionPolicy
    from ltvcast.strategy.actions import DEFAULT_CATALOGUE, read_catalogue

    catalogue = DEFAULT_CATALOGUE if actions is None else read_catalogue(actions)
    return ActionPolicy(catalogue, margin=margin, at_risk=at_risk, risk_aversion=risk_aversion)
