"""Core commands: simulate, train, predict, backtest and demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from ltvcast.cli._app import app, console
from ltvcast.cli._options import (
    AmountColOpt,
    AsOfOpt,
    CustomerColOpt,
    EventColOpt,
    EventsOpt,
    HorizonOpt,
    OrderColOpt,
    PriceColOpt,
    ProfilesOpt,
    QuantityColOpt,
    ReturnsOpt,
    TimeColOpt,
    TimezoneOpt,
    TransactionsArg,
    WinsorizeOpt,
    load_data,
    print_segments,
    resolve_as_of,
    score_segments,
    step,
)
from ltvcast.data.clean import CleaningReport
from ltvcast.data.io import write_table
from ltvcast.data.schemas import PREDICTION_COLUMNS, QUANTILE_COLUMNS, CustomerData
from ltvcast.evaluation.backtest import BacktestResult, default_cutoff
from ltvcast.evaluation.metrics import METRICS
from ltvcast.evaluation.selection import preference_order
from ltvcast.models.base import Forecaster
from ltvcast.models.registry import model_names
from ltvcast.pipeline import backtest_models, fit_forecaster
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.strategy.segments import SegmentRules
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon

ModelOpt = Annotated[
    str,
    typer.Option("--model", help=f"auto or one of {', '.join(model_names())}."),
]
OutDirOpt = Annotated[Path, typer.Option("--out", help="Output directory.")]

#: Models the backtest and demo compare by default.
DEFAULT_MODELS = ",".join(model_names())


def _warn(message: str) -> None:
    console.print(f"[yellow]note:[/] {message}", highlight=False)


@app.command()
def simulate(
    out: OutDirOpt,
    customers: Annotated[int, typer.Option("--customers", help="Customers to simulate.")] = 5000,
    days: Annotated[int, typer.Option("--days", help="Days of history.")] = 730,
    start: Annotated[str, typer.Option("--start", help="First day.")] = "2023-01-01",
    dirty_rate: Annotated[
        float, typer.Option("--dirty-rate", help="Share of dirty rows to inject.")
    ] = 0.01,
    horizon: HorizonOpt = "90d",
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Simulate a store (profiles, events, purchases, returns, dirty rows) with true values."""
    from ltvcast.data.synthetic import simulate_store, write_store

    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("--format must be csv or parquet")
    with step(f"Simulating {customers:,} customers over {days} days"):
        store = simulate_store(
            customers, start=start, days=days, dirty_rate=dirty_rate, random_state=seed
        )
        paths = write_store(
            store, out, horizon=parse_horizon(horizon), fmt="csv" if fmt == "csv" else "parquet"
        )
    for name, path in paths.items():
        console.print(f"  {name}: {path}")


@app.command()
def train(
    transactions: TransactionsArg,
    out: OutDirOpt,
    horizon: HorizonOpt,
    events: EventsOpt = None,
    profiles: ProfilesOpt = None,
    as_of: AsOfOpt = None,
    model: ModelOpt = "auto",
    customer_col: CustomerColOpt = None,
    time_col: TimeColOpt = None,
    amount_col: AmountColOpt = None,
    event_col: EventColOpt = None,
    order_col: OrderColOpt = None,
    quantity_col: QuantityColOpt = None,
    price_col: PriceColOpt = None,
    returns: ReturnsOpt = "net",
    winsorize: WinsorizeOpt = None,
    timezone: TimezoneOpt = "UTC",
) -> None:
    """Train a model on data up to --as-of and save it to --out."""
    span = parse_horizon(horizon)
    data, report = load_data(
        transactions, events, profiles,
        customer_col=customer_col, time_col=time_col, amount_col=amount_col,
        event_col=event_col, order_col=order_col, quantity_col=quantity_col,
        price_col=price_col, returns=returns, winsorize=winsorize, timezone=timezone,
    )  # fmt: skip
    cutoff = resolve_as_of(data, as_of)
    forecaster = _train(data, report, model, cutoff, span, out)
    console.print(f"Model [bold]{forecaster.name}[/] written to {out}")


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Directory written by `ltvcast train`.")],
    transactions: TransactionsArg,
    out: Annotated[Path, typer.Option("--out", help="Predictions file (.csv or .parquet).")],
    events: EventsOpt = None,
    profiles: ProfilesOpt = None,
    as_of: AsOfOpt = None,
    customer_col: CustomerColOpt = None,
    time_col: TimeColOpt = None,
    amount_col: AmountColOpt = None,
    event_col: EventColOpt = None,
    order_col: OrderColOpt = None,
    quantity_col: QuantityColOpt = None,
    price_col: PriceColOpt = None,
    returns: ReturnsOpt = "net",
    winsorize: WinsorizeOpt = None,
    timezone: TimezoneOpt = "UTC",
) -> None:
    """Score every customer seen up to --as-of over the model's horizon."""
    forecaster, manifest = load_model(model_dir)
    data, _ = load_data(
        transactions, events, profiles,
        customer_col=customer_col, time_col=time_col, amount_col=amount_col,
        event_col=event_col, order_col=order_col, quantity_col=quantity_col,
        price_col=price_col, returns=returns, winsorize=winsorize, timezone=timezone,
    )  # fmt: skip
    cutoff = resolve_as_of(data, as_of)
    with step(f"Scoring with {manifest['model']} ({manifest['horizon']} horizon)"):
        predictions = forecaster.predict(data, cutoff)
    write_table(predictions, out)
    console.print(
        f"{len(predictions):,} customers as of {cutoff:%Y-%m-%d %H:%M}: predicted "
        f"{predictions['predicted_value'].sum():,.2f} over {forecaster.horizon_.describe()} "
        f"-> {out}"
    )


@app.command(name="backtest")
def backtest_command(
    transactions: TransactionsArg,
    horizon: HorizonOpt,
    events: EventsOpt = None,
    profiles: ProfilesOpt = None,
    cutoff: Annotated[
        str | None,
        typer.Option("--cutoff", help="Train up to this time; score the horizon after it."),
    ] = None,
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated models to compare.")
    ] = DEFAULT_MODELS,
    out: Annotated[Path | None, typer.Option("--out", help="Directory for the results.")] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Also write report.html into --out.")
    ] = False,
    customer_col: CustomerColOpt = None,
    time_col: TimeColOpt = None,
    amount_col: AmountColOpt = None,
    event_col: EventColOpt = None,
    order_col: OrderColOpt = None,
    quantity_col: QuantityColOpt = None,
    price_col: PriceColOpt = None,
    returns: ReturnsOpt = "net",
    winsorize: WinsorizeOpt = None,
    timezone: TimezoneOpt = "UTC",
) -> None:
    """Train every model up to --cutoff, score the period after it and compare."""
    span = parse_horizon(horizon)
    data, cleaning = load_data(
        transactions, events, profiles,
        customer_col=customer_col, time_col=time_col, amount_col=amount_col,
        event_col=event_col, order_col=order_col, quantity_col=quantity_col,
        price_col=price_col, returns=returns, winsorize=winsorize, timezone=timezone,
    )  # fmt: skip
    origin = (
        default_cutoff(data, span) if cutoff is None else parse_as_of(cutoff, data.last_timestamp())
    )
    result = _run_backtest(data, origin, span, [m.strip() for m in models.split(",") if m])
    if out is not None:
        written = _write_backtest(result, out)
        if report:
            written.append(_write_backtest_report(data, cleaning, result, out))
        for path in written:
            console.print(f"  wrote {path}")


@app.command()
def demo(
    out: OutDirOpt = Path("out/demo"),
    data_dir: Annotated[
        Path | None,
        typer.Option("--data", help="Run on a real dataset folder instead of a simulated store."),
    ] = None,
    customers: Annotated[int, typer.Option("--customers", help="Simulated customers.")] = 4000,
    horizon: HorizonOpt = "90d",
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated models to compare.")
    ] = DEFAULT_MODELS,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """The main job end to end: data, validation, backtest, training, predictions, report."""
    from ltvcast.data.datasets import load_dataset_dir
    from ltvcast.data.synthetic import simulate_store, write_store
    from ltvcast.data.validate import load_customer_data

    out.mkdir(parents=True, exist_ok=True)
    span = parse_horizon(horizon)
    truth: pd.DataFrame | None = None
    if data_dir is None:
        with step(f"Simulating a store of {customers:,} customers"):
            store = simulate_store(customers, dirty_rate=0.01, random_state=seed)
            files = write_store(store, out / "data", horizon=span)
        with step("Loading and validating the simulated files"):
            data, cleaning = load_customer_data(
                files["transactions"], files["events"], files["profiles"]
            )
        source = f"simulated store ({customers:,} customers, seed {seed})"
    else:
        with step(f"Loading {data_dir}"):
            source, data, cleaning = load_dataset_dir(data_dir)
    for line in cleaning.lines():
        console.print(f"  [dim]{line}[/]", highlight=False)

    cutoff = default_cutoff(data, span)
    result = _run_backtest(data, cutoff, span, [m.strip() for m in models.split(",") if m])
    written = _write_backtest(result, out / "backtest")

    as_of = data.last_timestamp()
    preferred, passed = preference_order(result)
    choice = preferred[0] if preferred else "btyd"
    console.print(
        f"Chose [bold]{choice}[/] by the backtest above (best normalized Gini among models "
        f"within 5% of the best MAE{'; passed over ' + ', '.join(passed) if passed else ''})."
    )
    forecaster = _train(data, cleaning, choice, as_of, span, out / "model")
    table, _ = score_segments(forecaster, data, as_of, SegmentRules())
    predictions = table[[c for c in (*PREDICTION_COLUMNS, *QUANTILE_COLUMNS) if c in table]]
    written.append(write_table(predictions, out / "predictions.csv"))
    written.append(write_table(table, out / "segments.csv"))
    print_segments(table, f"Segments as of {as_of:%Y-%m-%d}, {len(table):,} customers")
    if data_dir is None:
        truth = store.truth(as_of, span)
        _print_truth_check(predictions, truth)
    written.append(
        _write_report(data, cleaning, result, forecaster, predictions, as_of, out / "report.html")
    )
    console.print(f"\n[bold]Demo on {source}[/]: {len(predictions):,} customers scored.")
    for path in written:
        console.print(f"  wrote {path}")


def _train(
    data: CustomerData,
    cleaning: CleaningReport,
    model: str,
    as_of: pd.Timestamp,
    horizon: Horizon,
    out: Path,
) -> Forecaster:
    with step(
        f"Training {model} on data up to {as_of:%Y-%m-%d} for a {horizon.describe()} horizon"
    ):
        forecaster = fit_forecaster(model, data, as_of, horizon, on_fallback=_warn)
    reason = getattr(forecaster, "reason_", None)
    if reason:
        console.print(f"  {reason}", highlight=False)
    with step("Fitting segment cuts on the training customers"):
        segment_rules = SegmentRules().fit(forecaster.predict(data, as_of))
    save_model(
        forecaster,
        out,
        extra={
            "training_window": {
                "start": data.first_timestamp().isoformat(),
                "end": as_of.isoformat(),
            },
            "customers": len(data.until(as_of).customers()),
            "event_types": list(data.event_types),
            "profile_columns": []
            if data.profiles is None
            else [c for c in data.profiles.columns if c != "customer_id"],
            "cleaning": cleaning.to_dict(),
            "segment_rules": segment_rules.to_dict(),
        },
    )
    return forecaster


def _run_backtest(
    data: CustomerData, cutoff: pd.Timestamp, horizon: Horizon, models: list[str]
) -> BacktestResult:
    console.print(
        f"Backtest: train up to {cutoff:%Y-%m-%d}, score ({cutoff:%Y-%m-%d}, "
        f"{horizon.end(cutoff):%Y-%m-%d}] ({horizon.describe()})"
    )
    with step(f"Backtesting {', '.join(models)}"):
        result = backtest_models(data, cutoff, horizon, models)
    print_metrics(result)
    return result


def print_metrics(result: BacktestResult) -> None:
    """Print a backtest's metrics: one row per metric, one column per model, best in bold."""
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


def _skipped(row: pd.Series) -> bool:
    return isinstance(row.get("error"), str) and bool(row["error"])


def _write_backtest(result: BacktestResult, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    metrics = write_table(result.table().reset_index(names="model"), out / "metrics.csv")
    meta = out / "backtest.json"
    meta.write_text(
        json.dumps(
            {
                "cutoff": result.cutoff.isoformat(),
                "horizon": str(result.horizon),
                "customers": result.n_customers,
            },
            indent=2,
        )
    )
    return [metrics, meta]


def _write_backtest_report(
    data: CustomerData, cleaning: CleaningReport, result: BacktestResult, out: Path
) -> Path:
    best = result.best()
    forecaster = fit_forecaster(best, data, result.cutoff, result.horizon, on_fallback=_warn)
    predictions = forecaster.predict(data, result.cutoff)
    return _write_report(
        data, cleaning, result, forecaster, predictions, result.cutoff, out / "report.html"
    )


def _write_report(
    data: CustomerData,
    cleaning: CleaningReport,
    result: BacktestResult,
    forecaster: Forecaster,
    predictions: pd.DataFrame,
    as_of: pd.Timestamp,
    path: Path,
) -> Path:
    from ltvcast.report import build_report

    with step("Writing the report"):
        html = build_report(data, cleaning, result, forecaster, predictions, as_of)
        path.write_text(html, encoding="utf-8")
    return path


def _print_truth_check(predictions: pd.DataFrame, truth: pd.DataFrame) -> None:
    from ltvcast.evaluation.metrics import normalized_gini

    joined = predictions.merge(truth, on="customer_id", how="inner")
    if joined.empty:
        return
    gini = normalized_gini(joined["true_value"].to_numpy(), joined["predicted_value"].to_numpy())
    total_pred = joined["predicted_value"].sum()
    total_true = joined["true_value"].sum()
    console.print(
        f"Against the simulator's true expected values: normalized Gini {gini:.3f}, "
        f"total predicted {total_pred:,.0f} vs true {total_true:,.0f} "
        f"({(total_pred / total_true - 1) * 100:+.1f}%)"
    )
