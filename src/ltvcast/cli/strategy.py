"""Decision commands: segment, plan, explain, report and score (one customer from JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ltvcast.cli._app import app, console
from ltvcast.cli._options import Inputs, input_options, out_file, step, writable_file
from ltvcast.cli.core import AsOfOpt, ModelDirArg
from ltvcast.exceptions import ConfigError, InsufficientDataError, SchemaError

if TYPE_CHECKING:
    import pandas as pd

    from ltvcast.data.clean import CleaningReport
    from ltvcast.data.schemas import CustomerData
    from ltvcast.pipeline import ScoringModel
    from ltvcast.strategy.segments import SegmentRules

TopOpt = Annotated[int, typer.Option("--top", help="Drivers to show.")]


def load_model_and_data(
    model_dir: Path, inputs: Inputs, as_of: str | None
) -> tuple[ScoringModel, CustomerData, CleaningReport, pd.Timestamp]:
    """Model, cleaned data (cut at as-of) and the as-of time every command here starts from."""
    from ltvcast.pipeline import load_scoring_model

    scoring = load_scoring_model(model_dir)
    data, cleaning = inputs.load()
    cutoff = scoring.resolve_as_of(data, as_of)
    return scoring, data.until(cutoff), cleaning, cutoff


def _score(
    scoring: ScoringModel, data: CustomerData, as_of: pd.Timestamp, rules: SegmentRules
) -> pd.DataFrame:
    with step(f"Scoring with {scoring.name} ({scoring.horizon.describe()} horizon)"):
        return scoring.score(data, as_of, rules=rules)


@app.command()
@input_options
def segment(
    model_dir: ModelDirArg,
    inputs: Inputs,
    out: Annotated[Path, out_file("Segments file (.csv or .parquet).")],
    as_of: AsOfOpt = None,
    high_value: Annotated[
        float, typer.Option("--high-value", help="High-value cut (quantile or amount).")
    ] = 0.8,
    low_value: Annotated[
        float, typer.Option("--low-value", help="Low-value cut (quantile or amount).")
    ] = 0.5,
    value_mode: Annotated[
        str, typer.Option("--value-mode", help="Value cuts are 'quantile' or 'absolute'.")
    ] = "quantile",
    active: Annotated[float, typer.Option("--active", help="P(active) cut.")] = 0.5,
    active_mode: Annotated[
        str, typer.Option("--active-mode", help="P(active) cut is 'quantile' or 'absolute'.")
    ] = "quantile",
    new_days: Annotated[
        float, typer.Option("--new-days", help="Customers first seen this recently are new.")
    ] = 90.0,
    new_max_purchases: Annotated[
        float, typer.Option("--new-max-purchases", help="... with at most this many purchases.")
    ] = 2.0,
    rules_out: Annotated[
        Path | None,
        typer.Option(
            "--rules-out",
            help="Also write the fitted cuts (JSON, for `score --rules`).",
            callback=writable_file,
        ),
    ] = None,
) -> None:
    """Segment customers by forecast value and P(active); write one row per customer."""
    from ltvcast.cli._print import print_segments
    from ltvcast.data.io import write_table
    from ltvcast.strategy.segments import SegmentRules

    rules = SegmentRules(
        high_value=high_value,
        low_value=low_value,
        value_mode=_mode(value_mode, "--value-mode"),
        active=active,
        active_mode=_mode(active_mode, "--active-mode"),
        new_tenure_days=new_days,
        new_max_purchases=new_max_purchases,
    )
    scoring, data, _, cutoff = load_model_and_data(model_dir, inputs, as_of)
    table = _score(scoring, data, cutoff, rules)
    fitted = scoring.cuts_for(table, rules)
    assert fitted is not None  # SegmentRules always fit
    write_table(table, out)
    print_segments(table, f"Segments as of {cutoff:%Y-%m-%d}, {len(table):,} customers")
    console.print(
        f"Cuts: high value >= {fitted.high_value_cut:,.2f}, low value < "
        f"{fitted.low_value_cut:,.2f}, active: P(active) >= {fitted.active_cut:.2f}, "
        f"value if active (at-risk rescue) >= {fitted.high_stake_cut:,.2f}",
        highlight=False,
    )
    if rules_out is not None:
        rules_out.write_text(json.dumps(fitted.to_dict(), indent=2), encoding="utf-8")
        console.print(f"  wrote {rules_out}")
    console.print(f"  wrote {out}")


@app.command()
@input_options
def plan(
    model_dir: ModelDirArg,
    inputs: Inputs,
    out: Annotated[Path, out_file("Contact list (.csv or .parquet).")],
    budget: Annotated[float, typer.Option("--budget", help="Total campaign budget.")],
    cost_per_contact: Annotated[
        float, typer.Option("--cost-per-contact", help="Cost of contacting one customer.")
    ],
    as_of: AsOfOpt = None,
    uplift: Annotated[
        float | None,
        typer.Option("--uplift", help="Fraction of value a contact adds (default 0.05)."),
    ] = None,
    uplift_by_segment_file: Annotated[
        Path | None,
        typer.Option("--uplift-by-segment", help="CSV with columns segment,uplift."),
    ] = None,
    margin: Annotated[float, typer.Option("--margin", help="Margin share of revenue.")] = 1.0,
    churn_rescue: Annotated[
        bool,
        typer.Option("--churn-rescue", help="Weigh value by P(churn) = 1 - P(active)."),
    ] = False,
) -> None:
    """Choose whom to contact to maximise expected incremental margin within --budget."""

    from ltvcast.data.io import write_table
    from ltvcast.data.schemas import CUSTOMER_ID
    from ltvcast.strategy.plan import plan_contacts, read_uplift_table, uplift_by_segment
    from ltvcast.strategy.segments import SegmentRules

    if uplift is not None and uplift_by_segment_file is not None:
        raise ConfigError("give either --uplift or --uplift-by-segment, not both")
    table_by_segment = (
        None if uplift_by_segment_file is None else read_uplift_table(uplift_by_segment_file)
    )
    scoring, data, _, cutoff = load_model_and_data(model_dir, inputs, as_of)
    table = _score(scoring, data, cutoff, SegmentRules())
    segments = table.set_index(CUSTOMER_ID)["segment"]
    lift: float | pd.Series = 0.05 if uplift is None else uplift
    if table_by_segment is not None:
        lift = uplift_by_segment(segments, table_by_segment)
    with step("Optimising the contact list"):
        result = plan_contacts(
            table,
            budget=budget,
            cost_per_contact=cost_per_contact,
            uplift=lift,
            margin=margin,
            churn_rescue=churn_rescue,
            segments=segments,
        )
    write_table(result.contacts, out)
    s = result.summary
    kind = "churn rescue" if churn_rescue else "growth"
    console.print(
        f"[bold]Contact plan[/] ({kind} campaign, horizon {scoring.horizon.describe()}): "
        f"contact {s.contacts:,} of {s.customers:,} customers "
        f"({s.eligible:,} are worth more than their cost)",
        soft_wrap=True,
    )
    console.print(
        f"  expected cost                {s.expected_cost:>14,.2f}  (budget {budget:,.2f})"
    )
    console.print(f"  expected incremental return  {s.expected_return:>14,.2f}")
    console.print(f"  expected net gain            {s.expected_net:>14,.2f}")
    roi = "n/a (nothing spent)" if s.contacts == 0 else f"{s.roi:.1%}"
    console.print(f"  ROI (net / cost)             {roi:>14}")
    bound = "" if s.upper_bound <= s.expected_net + 1e-9 else f"; net gain <= {s.upper_bound:,.2f}"
    console.print(f"  [dim]method: {s.method}{bound}[/]", highlight=False)
    console.print(f"  wrote {out}")


@app.command()
@input_options
def explain(
    model_dir: ModelDirArg,
    inputs: Inputs,
    as_of: AsOfOpt = None,
    customer: Annotated[
        str | None,
        typer.Option("--customer", help="Explain this customer (default: global importance)."),
    ] = None,
    top: TopOpt = 8,
) -> None:
    """Print the drivers of one customer's forecast, or the model's global driver importance."""
    from rich.table import Table

    from ltvcast.cli._print import print_customer

    scoring, data, _, cutoff = load_model_and_data(model_dir, inputs, as_of)
    if customer is None:
        with step("Explaining a sample of customers"):
            importance = scoring.importance(data, cutoff)
        grid = Table(title=f"What drives {scoring.name}'s forecasts (mean |contribution|)")
        for name in ("driver", "mean |contribution|", "share", "average effect"):
            grid.add_column(name, justify="left" if name == "driver" else "right")
        for row in importance.head(top).itertuples():
            grid.add_row(
                str(row.feature), f"{row.mean_abs:,.2f}", f"{row.share:.1%}", f"{row.mean:+,.2f}"
            )
        console.print(grid)
        return
    forecast = scoring.score_one(data, cutoff, customer_id=customer, explain=True)
    if forecast.contributions is None:
        raise ConfigError(f"model {scoring.name!r} does not provide explanations")
    print_customer(scoring, forecast, top, show_segment=False)


@app.command()
@input_options
def report(
    model_dir: ModelDirArg,
    inputs: Inputs,
    out: Annotated[Path, out_file("HTML file to write.")] = Path("report.html"),
    as_of: AsOfOpt = None,
    models: Annotated[
        str,
        typer.Option("--models", help="Models to backtest next to this one ('' for none)."),
    ] = "baseline",
) -> None:
    """Write a self-contained HTML report: data quality, backtest, forecasts, segments, drivers.

    The backtest retrains this model's kind (and --models) at as-of minus the horizon and
    scores the horizon up to as-of.
    """
    from ltvcast.cli._print import note
    from ltvcast.pipeline import backtest_models
    from ltvcast.report import write_report

    scoring, data, cleaning, cutoff = load_model_and_data(model_dir, inputs, as_of)
    horizon = scoring.horizon
    own = scoring.forecaster.chosen
    others = [m.strip() for m in models.split(",") if m.strip() and m.strip() != own.name]
    result = None
    try:
        with step(f"Backtesting {', '.join([own.name, *others])} over {horizon.describe()}"):
            result = backtest_models(
                data, horizon.start(cutoff), horizon, [own, *others], end=cutoff
            )
    except InsufficientDataError as err:
        note(f"no backtest section ({err})")
    with step("Scoring and writing the report"):
        path = write_report(out, scoring, data, cleaning, result, cutoff)
    console.print(f"  wrote {path}")


@app.command()
def score(
    model_dir: ModelDirArg,
    json_input: Annotated[
        str,
        typer.Option("--json", help="Score request: a JSON object or a file holding one."),
    ],
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Segment cuts from `ltvcast segment --rules-out`."),
    ] = None,
    top: TopOpt = 6,
) -> None:
    """Score one customer described in JSON (the body of the service's POST /v1/score)."""
    from ltvcast.cli._print import print_customer
    from ltvcast.pipeline import load_scoring_model
    from ltvcast.strategy.segments import FittedSegmentRules

    scoring = load_scoring_model(model_dir)
    cuts = None if rules is None else FittedSegmentRules.from_dict(_read_json(str(rules)))
    forecast = scoring.score_one(_read_json(json_input), rules=cuts, explain=True)
    print_customer(scoring, forecast, top)


def _mode(value: str, flag: str) -> Any:
    if value not in ("quantile", "absolute"):
        raise typer.BadParameter(f"{flag} must be 'quantile' or 'absolute'; got {value!r}")
    return value


def _read_json(text: str) -> Any:
    """A JSON document given inline (starts with ``{``) or as a file path."""
    source = "--json"
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise SchemaError(f"{text}: neither a JSON object nor a readable file")
        source, text = str(path), path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SchemaError(f"{source}: invalid JSON ({err})") from err
