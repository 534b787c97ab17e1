"""Options shared by several commands, and the data-loading step they all take."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ltvcast.cli._app import console
from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.data.validate import load_customer_data
from ltvcast.features.rfm import customer_history
from ltvcast.models.base import Forecaster
from ltvcast.strategy.segments import (
    FittedSegmentRules,
    SegmentRules,
    segment_summary,
)
from ltvcast.timeframe import parse_as_of

TransactionsArg = Annotated[
    Path, typer.Argument(help="Transactions file (CSV, CSV.gz or Parquet).", show_default=False)
]
EventsOpt = Annotated[
    Path | None, typer.Option("--events", help="Behaviour events file (view, click, cart ...).")
]
ProfilesOpt = Annotated[Path | None, typer.Option("--profiles", help="Customer profiles file.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Forecast origin: a date (through its end) or a timestamp. Default: last timestamp.",
    ),
]
HorizonOpt = Annotated[
    str, typer.Option("--horizon", help="Forecast horizon: 30d, 13w, 6m, 1y ...")
]
CustomerColOpt = Annotated[
    str | None, typer.Option("--customer-col", help="Column holding the customer id.")
]
TimeColOpt = Annotated[str | None, typer.Option("--time-col", help="Column holding the time.")]
AmountColOpt = Annotated[
    str | None, typer.Option("--amount-col", help="Column holding the transaction amount.")
]
EventColOpt = Annotated[
    str | None, typer.Option("--event-col", help="Column holding the event type.")
]
OrderColOpt = Annotated[
    str | None, typer.Option("--order-col", help="Column holding the order id.")
]
QuantityColOpt = Annotated[
    str | None, typer.Option("--quantity-col", help="Column holding the quantity.")
]
PriceColOpt = Annotated[
    str | None,
    typer.Option("--price-col", help="Unit price column (amount = quantity x price)."),
]
ReturnsOpt = Annotated[
    str,
    typer.Option("--returns", help="Negative amounts and cancellations: 'net' or 'drop'."),
]
WinsorizeOpt = Annotated[
    float | None,
    typer.Option("--winsorize", help="Cap amounts at this quantile (e.g. 0.999)."),
]
TimezoneOpt = Annotated[
    str, typer.Option("--timezone", help="Time zone of naive timestamps in the input.")
]


def load_data(
    transactions: Path,
    events: Path | None = None,
    profiles: Path | None = None,
    *,
    customer_col: str | None = None,
    time_col: str | None = None,
    amount_col: str | None = None,
    event_col: str | None = None,
    order_col: str | None = None,
    quantity_col: str | None = None,
    price_col: str | None = None,
    returns: str = "net",
    winsorize: float | None = None,
    timezone: str = "UTC",
    quiet: bool = False,
) -> tuple[CustomerData, CleaningReport]:
    """Read, validate and clean the input files; print the cleaning report unless ``quiet``."""
    if returns not in ("net", "drop"):
        raise typer.BadParameter("--returns must be 'net' or 'drop'")
    mode: Literal["net", "drop"] = "net" if returns == "net" else "drop"
    columns = ColumnMap(
        customer=customer_col,
        time=time_col,
        amount=amount_col,
        event=event_col,
        order=order_col,
        quantity=quantity_col,
        price=price_col,
    )
    options = CleaningOptions(returns=mode, winsorize_quantile=winsorize, source_timezone=timezone)
    with step("Loading and validating data"):
        data, report = load_customer_data(
            transactions, events, profiles, columns=columns, options=options
        )
    if not quiet:
        print_cleaning(report)
    return data, report


def resolve_as_of(data: CustomerData, as_of: str | None) -> pd.Timestamp:
    """The as-of time from ``--as-of`` (default: the data's last timestamp)."""
    return parse_as_of(as_of, data.last_timestamp())


def print_cleaning(report: CleaningReport) -> None:
    """Print the cleaning steps that touched rows."""
    for line in report.lines():
        console.print(f"  [dim]{line}[/]", highlight=False)


@contextmanager
def step(message: str) -> Iterator[None]:
    """Show a spinner with elapsed time while a step runs, then a check mark and its duration."""
    start = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        progress.add_task(message, total=None)
        yield
    console.print(f"[green]✓[/] {message} [dim]({time.perf_counter() - start:.1f}s)[/]")


def score_segments(
    forecaster: Forecaster, data: CustomerData, as_of: pd.Timestamp, rules: SegmentRules
) -> tuple[pd.DataFrame, FittedSegmentRules]:
    """Predictions joined with each customer's history and segment."""
    with step(f"Scoring with {forecaster.name} ({forecaster.horizon_.describe()} horizon)"):
        predictions = forecaster.predict(data, as_of)
    fitted = rules.fit(predictions)
    history = customer_history(data, as_of)
    table = predictions.merge(history, on=CUSTOMER_ID, how="left")
    table.insert(1, "segment", fitted.assign(predictions, history).to_numpy())
    return table, fitted


def print_segments(table: pd.DataFrame, title: str) -> None:
    """Print the segment summary table and each segment's recommended action."""
    summary = segment_summary(table, table.set_index(CUSTOMER_ID)["segment"])
    grid = Table(title=title)
    for name in ("segment", "customers", "share", "predicted revenue", "revenue share"):
        grid.add_column(name, justify="left" if name == "segment" else "right")
    for row in summary.itertuples():
        grid.add_row(
            str(row.segment),
            f"{row.customers:,}",
            f"{row.share:.1%}",
            f"{row.predicted_revenue:,.0f}",
            f"{row.revenue_share:.1%}",
        )
    console.print(grid)
    for row in summary[summary["customers"] > 0].itertuples():
        console.print(f"  [bold]{row.segment}[/]: {row.action}", highlight=False, soft_wrap=True)
