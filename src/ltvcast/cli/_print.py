"""Terminal output shared by the commands: tables, segment summaries, one customer's answer."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from ltvcast.cli._app import console
from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.evaluation.backtest import BacktestResult
from ltvcast.evaluation.metrics import METRICS
from ltvcast.pipeline import CustomerForecast, ScoringModel
from ltvcast.pipeline.recommend import RecommendationSummary
from ltvcast.strategy.actions import Action
from ltvcast.strategy.explain import render_drivers
from ltvcast.strategy.segments import ACTIONS, segment_summary


def note(message: str) -> None:
    """A yellow ``note:`` line."""
    console.print(f"[yellow]note:[/] {message}", highlight=False)


def print_metrics(result: BacktestResult) -> None:
    """A backtest's metrics: one row per metric, one column per model, best in bold."""
    table = result.table()
    ok = [m for m in table.index if not _skipped(table.loc[m])]
    grid = Table(
        title=f"Backtest: {result.n_customers:,} customers, {result.horizon.describe()} "
        f"after {result.cutoff:%Y-%m-%d}"
    )
    grid.add_column("metric")
    for model in ok:
        grid.add_column(str(model), justify="right")
    for name, label, higher in METRICS:
        if name not in table.columns:
            continue
        values = table.loc[ok, name].astype(float)
        best = None
        if values.notna().any() and higher is not None:
            best = values.idxmax() if higher else values.idxmin()
        elif values.notna().any():
            best = values.abs().idxmin()
        cells = [f"[bold]{values[m]:.3f}[/]" if m == best else f"{values[m]:.3f}" for m in ok]
        grid.add_row(label, *cells)
    grid.add_row("fit seconds", *[f"{table.loc[m, 'fit_s']:.1f}" for m in ok])
    console.print(grid)
    for model in table.index:
        if _skipped(table.loc[model]):
            console.print(f"  [yellow]{model} skipped:[/] {table.loc[model, 'error']}")
    for run in result.results:
        if run.note:
            console.print(f"  {run.name}: {run.note}", highlight=False)


def print_segments(table: pd.DataFrame, title: str) -> None:
    """The segment summary of a scored table and each segment's recommended action."""
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


def print_new_customer(table: pd.DataFrame) -> None:
    """The new-customer forecast (:meth:`~ltvcast.pipeline.ScoringModel.new_customer`)."""
    grid = Table(title="A new customer, just after their first purchase (population level)")
    grid.add_column("horizon")
    labels = {
        "purchases": "repeat purchases",
        "value": "value",
        "p_alive": "P(alive) then",
        "discounted_value": "discounted value",
    }
    for column in table.columns:
        grid.add_column(labels.get(column, column), justify="right")
    for horizon, row in table.iterrows():
        cells = [f"{row[c]:.1%}" if c == "p_alive" else f"{row[c]:,.2f}" for c in table.columns]
        grid.add_row(str(horizon), *cells)
    console.print(grid)


def print_coefficients(table: pd.DataFrame) -> None:
    """The covariates' effects (``coefficient_table``): estimate, standard error, p-value."""
    grid = Table(title="Covariates (positive: more purchasing, dropout or spend)")
    for name in ("model", "parameter", "estimate", "std. error", "p-value"):
        grid.add_column(name, justify="left" if name in ("model", "parameter") else "right")
    coefficients = table[table.index.get_level_values("parameter").str.contains(":")]
    for (model, parameter), estimate, error, p_value in zip(
        coefficients.index,
        coefficients["estimate"],
        coefficients["std_error"],
        coefficients["p_value"],
        strict=True,
    ):
        grid.add_row(
            str(model), str(parameter), f"{estimate:+.3f}", f"{error:.3f}", f"{p_value:.3g}"
        )
    console.print(grid)


def print_customer(
    model: ScoringModel,
    forecast: CustomerForecast,
    top: int,
    *,
    show_segment: bool = True,
) -> None:
    """One customer's forecast, segment and top drivers."""
    values = forecast.values
    console.print(
        f"[bold]Customer {forecast.customer_id}[/] as of {forecast.as_of:%Y-%m-%d %H:%M} "
        f"({model.name})"
    )
    value = f"{values['predicted_value']:,.2f}"
    if values.get("value_p10") is not None:
        value += f"  (80% interval {values['value_p10']:,.2f} .. {values['value_p90']:,.2f})"
    console.print(f"  predicted value over {model.horizon.describe()}: {value}", highlight=False)
    console.print(f"  expected purchases: {values['predicted_purchases']:,.2f}")
    console.print(f"  P(active): {values['p_active']:.1%}")
    if show_segment:
        segment = forecast.segment
        text = (
            f"[bold]{segment}[/] - {ACTIONS[segment]}"
            if segment in ACTIONS
            else "n/a (no segment cuts: pass --rules from `ltvcast segment --rules-out`)"
        )
        console.print(f"  segment: {text}", highlight=False, soft_wrap=True)
    if forecast.contributions is None:
        console.print(f"  [dim]model {model.name!r} gives no explanations[/]")
        return
    console.print("  top drivers:")
    console.print(render_drivers(forecast.contributions, top), highlight=False)


def _skipped(row: pd.Series) -> bool:
    return isinstance(row.get("error"), str) and bool(row["error"])


def print_recommendations(summary: RecommendationSummary, catalogue: tuple[Action, ...]) -> None:
    """The action mix of a recommendation table and how many customers got items."""
    customers = summary.customers
    grid = Table(title=f"Next best action, {customers:,} customers")
    for name in ("action", "customers", "share", "expected incremental value", "uplift", "cost"):
        grid.add_column(name, justify="left" if name == "action" else "right")
    assumptions = {action.name: action for action in catalogue}
    for row in summary.mix.itertuples():
        action = assumptions.get(str(row.action))
        grid.add_row(
            str(row.action),
            f"{row.customers:,}",
            f"{row.share:.1%}",
            f"{row.expected_value:,.2f}",
            "" if action is None else f"{action.uplift:.0%}",
            "" if action is None else f"{action.cost:,.2f}",
        )
    console.print(grid)
    with_items = summary.with_items
    got = f"up to {summary.most_items} items each" if with_items else "none"
    console.print(f"  items: {with_items:,} of {customers:,} customers, {got}", highlight=False)
