"""The ``recommend`` command: each customer's next best action and next best items."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ltvcast.cli._app import app, console
from ltvcast.cli._options import Inputs, input_options, out_file, step
from ltvcast.cli.core import AsOfOpt, ModelDirArg
from ltvcast.cli.strategy import load_model_and_data


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
) -> None:
    """Write each customer's next best action and top items (one row per customer and item).

    Items come from the customer's own purchases and their items' co-purchases in the history
    up to as-of; actions from the model's forecasts and the catalogue's uplift and cost
    (--actions).
    """
    from ltvcast.cli._print import print_recommendations
    from ltvcast.data.io import write_table
    from ltvcast.pipeline.recommend import ActionPolicy, Recommender
    from ltvcast.strategy.actions import DEFAULT_CATALOGUE, read_catalogue

    catalogue = DEFAULT_CATALOGUE if actions is None else read_catalogue(actions)
    policy = ActionPolicy(catalogue, margin=margin, at_risk=at_risk, risk_aversion=risk_aversion)
    scoring, data, _, cutoff = load_model_and_data(model_dir, inputs, as_of)
    recommender = Recommender(scoring, top=top, policy=policy, with_items=items)
    with step("Learning which items go together" if items else "Scoring customers"):
        recommender.fit(data, cutoff)
    with step(f"Recommending as of {cutoff:%Y-%m-%d}"):
        table = recommender.recommend(data, cutoff)
    write_table(table, out)
    print_recommendations(table, policy.catalogue)
    console.print(f"  wrote {out}")
