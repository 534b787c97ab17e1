"""Core commands: simulate, train, predict, backtest and demo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ltvcast.cli._app import app, console
from ltvcast.cli._engine import (
    EngineOpt,
    PartitionsOpt,
    SampleOpt,
    SparkMasterOpt,
    WorkersOpt,
    partitioned,
    plan,
)
from ltvcast.cli._options import (
    CovariatesOpt,
    Inputs,
    input_options,
    model_params,
    out_file,
    print_cleaning,
    step,
    writable_dir,
)
from ltvcast.models.registry import model_names

if TYPE_CHECKING:
    import pandas as pd

    from ltvcast.data.clean import CleaningReport
    from ltvcast.data.schemas import CustomerData
    from ltvcast.engine import LocalJob, SparkJob
    from ltvcast.evaluation.backtest import BacktestResult
    from ltvcast.pipeline import Forecasted, ScoringModel
    from ltvcast.timeframe import Horizon

ModelOpt = Annotated[
    str,
    typer.Option("--model", help=f"auto or one of {', '.join(model_names())}."),
]
OutDirOpt = Annotated[Path, typer.Option("--out", help="Output directory.", callback=writable_dir)]
HorizonOpt = Annotated[
    str, typer.Option("--horizon", help="Forecast horizon: 30d, 13w, 6m, 1y ...")
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Forecast origin: a date (through its end) or a timestamp. Default: last timestamp.",
    ),
]
ModelsOpt = Annotated[str, typer.Option("--models", help="Comma-separated models to compare.")]
ModelDirArg = Annotated[Path, typer.Argument(help="Directory written by `ltvcast train`.")]
HorizonsOpt = Annotated[
    str | None,
    typer.Option(
        "--horizons",
        help="Also forecast these horizons from the one model (BTYD models and seq), e.g. "
        "30d,90d,365d: purchases_H, value_H and p_alive_H (P(alive) at as-of + H; seq: "
        "p_active_H) columns.",
    ),
]
IntervalsOpt = Annotated[
    bool,
    typer.Option(
        "--intervals",
        help="Add value_p10 and value_p90: the model's own quantiles, or for BTYD models the "
        "expected value's 80% interval under parameter uncertainty (parametric bootstrap).",
    ),
]
DiscountOpt = Annotated[
    float | None,
    typer.Option(
        "--discount-rate",
        help="Annual discount rate, continuously compounded (0.1 = 10%): adds "
        "discounted_value_H per horizon (BTYD models).",
    ),
]

#: Models the backtest and demo compare by default (every other registered model, such as
#: the BTYD variants pnbd, bgcnbd and mbgcnbd, by --models).
DEFAULT_MODELS = "baseline,tenure_mean,btyd,btyd_cal,gbdt,seq"


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
    chunk: Annotated[
        int,
        typer.Option("--chunk", help="Customers simulated at a time (bounds memory).", min=1),
    ] = 100_000,
    events: Annotated[
        bool,
        typer.Option(
            "--events/--no-events",
            help="Simulate behaviour events (--no-events: an empty events table, much faster).",
        ),
    ] = True,
) -> None:
    """Simulate a store (profiles, events, purchases, returns, dirty rows) with true values.

    Any size is written in bounded memory, --chunk customers at a time; a store of at most
    --chunk customers is exactly the in-memory simulation of the same seed.
    """
    from ltvcast.data.synthetic import write_simulated_store
    from ltvcast.timeframe import parse_horizon

    if fmt not in ("csv", "parquet"):
        raise typer.BadParameter("--format must be csv or parquet")
    with step(f"Simulating {customers:,} customers over {days} days"):
        paths = write_simulated_store(
            out,
            customers,
            chunk_size=chunk,
            horizon=parse_horizon(horizon),
            fmt="csv" if fmt == "csv" else "parquet",
            start=start,
            days=days,
            dirty_rate=dirty_rate,
            events=events,
            random_state=seed,
        )
    for name, path in paths.items():
        console.print(f"  {name}: {path}")


@app.command()
@input_options
def train(
    inputs: Inputs,
    out: OutDirOpt,
    horizon: HorizonOpt,
    as_of: AsOfOpt = None,
    model: ModelOpt = "auto",
    covariates: CovariatesOpt = None,
    partitions: PartitionsOpt = None,
    workers: WorkersOpt = None,
    sample_customers: SampleOpt = None,
    engine: EngineOpt = "local",
    spark_master: SparkMasterOpt = None,
) -> None:
    """Train a model on data up to --as-of and save it to --out."""
    from ltvcast.timeframe import parse_horizon

    span = parse_horizon(horizon)
    params = model_params([model], covariates, inputs.profiles)
    run = plan(inputs, partitions, workers, engine=engine, spark_master=spark_master, model=model)
    if run.partitioned:
        with partitioned(inputs, run, as_of, model=model, keep=False) as job:
            scoring = _train_job(job, model, span, sample_customers)
    else:
        data, cleaning = inputs.load()
        scoring = _train(data, cleaning, model, span, as_of, params).scoring
    scoring.save(out)
    console.print(f"Model [bold]{scoring.name}[/] written to {out}")


@app.command()
@input_options
def predict(
    model_dir: ModelDirArg,
    inputs: Inputs,
    out: Annotated[Path, out_file("Predictions file (.csv or .parquet).")],
    as_of: AsOfOpt = None,
    horizons: HorizonsOpt = None,
    discount_rate: DiscountOpt = None,
    intervals: IntervalsOpt = False,
    partitions: PartitionsOpt = None,
    workers: WorkersOpt = None,
    engine: EngineOpt = "local",
    spark_master: SparkMasterOpt = None,
) -> None:
    """Score every customer seen up to --as-of over the model's horizon."""
    from ltvcast.pipeline import load_scoring_model

    extras = _extras_request(horizons, discount_rate, intervals=intervals)
    scoring = load_scoring_model(model_dir)
    if scoring.covariates and inputs.profiles is None:
        from ltvcast.exceptions import ConfigError

        raise ConfigError(
            f"the model uses the profile columns {', '.join(scoring.covariates)} as "
            "covariates: give --profiles"
        )
    run = plan(
        inputs,
        partitions,
        workers,
        engine=engine,
        spark_master=spark_master,
        scoring=scoring,
        intervals=intervals,
    )
    if run.partitioned:
        with partitioned(inputs, run, as_of) as job:
            _score_job(job, scoring, out, extras)
        return
    data, _ = inputs.load()
    cutoff = scoring.resolve_as_of(data, as_of)
    with step(f"Scoring with {scoring.name} ({scoring.horizon} horizon)"):
        predictions = scoring.predict(
            data,
            cutoff,
            horizons=extras.horizons,
            discount_rate=extras.discount_rate,
            intervals=extras.intervals,
        )
        _write_predictions(scoring, predictions, cutoff, out, extras)


@app.command()
@input_options
def forecast(
    inputs: Inputs,
    horizon: HorizonOpt,
    out: Annotated[Path, out_file("Predictions file (.csv or .parquet).")],
    as_of: AsOfOpt = None,
    model: ModelOpt = "auto",
    save_model: Annotated[
        Path | None,
        typer.Option("--save-model", help="Also save the model here.", callback=writable_dir),
    ] = None,
    horizons: HorizonsOpt = None,
    discount_rate: DiscountOpt = None,
    intervals: IntervalsOpt = False,
    covariates: CovariatesOpt = None,
    partitions: PartitionsOpt = None,
    workers: WorkersOpt = None,
    sample_customers: SampleOpt = None,
    engine: EngineOpt = "local",
    spark_master: SparkMasterOpt = None,
) -> None:
    """Train on data up to --as-of and score everyone at once (train + predict, one process)."""
    from ltvcast.timeframe import parse_horizon

    span = parse_horizon(horizon)
    extras = _extras_request(horizons, discount_rate, model, intervals=intervals)
    params = model_params([model], covariates, inputs.profiles, intervals=intervals)
    run = plan(
        inputs,
        partitions,
        workers,
        engine=engine,
        spark_master=spark_master,
        model=model,
        intervals=intervals,
    )
    if run.partitioned:
        with partitioned(inputs, run, as_of, model=model) as job:
            scoring = _train_job(job, model, span, sample_customers)
            if save_model is not None:
                scoring.save(save_model)
            _score_job(job, scoring, out, extras)
        return
    data, cleaning = inputs.load()
    done = _train(data, cleaning, model, span, as_of, params, extras)
    if save_model is not None:
        done.scoring.save(save_model)
    cutoff = done.scoring.resolve_as_of(data, as_of)
    _write_predictions(done.scoring, done.predictions, cutoff, out, extras)


@app.command(name="backtest")
@input_options
def backtest_command(
    inputs: Inputs,
    horizon: HorizonOpt,
    cutoff: Annotated[
        str | None,
        typer.Option("--cutoff", help="Train up to this time; score the horizon after it."),
    ] = None,
    models: ModelsOpt = DEFAULT_MODELS,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory for the results.", callback=writable_dir),
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Also write report.html into --out.")
    ] = False,
    covariates: CovariatesOpt = None,
    partitions: PartitionsOpt = None,
    workers: WorkersOpt = None,
    sample_customers: SampleOpt = None,
    engine: EngineOpt = "local",
    spark_master: SparkMasterOpt = None,
) -> None:
    """Train every model up to --cutoff, score the period after it and compare (in memory, or
    partitioned by customer, on this machine or on Spark, for the models that train
    partitioned)."""
    from ltvcast.evaluation.backtest import default_cutoff
    from ltvcast.timeframe import parse_as_of, parse_horizon

    span = parse_horizon(horizon)
    names = _names(models)
    params = model_params(names, covariates, inputs.profiles)
    why = "--report draws on every row in memory (use --partitions 0)" if report else None
    why = why or ("--covariates run in memory (use --partitions 0)" if params else None)
    run = plan(inputs, partitions, workers, engine=engine, spark_master=spark_master, in_memory=why)
    if run.partitioned:
        with partitioned(inputs, run, cutoff) as job:
            result = _run_backtest_job(job, span, names, cutoff, sample_customers)
        written = [] if out is None else _write_backtest(result, out)
    else:
        data, cleaning = inputs.load()
        last = data.last_timestamp()
        origin = default_cutoff(data, span) if cutoff is None else parse_as_of(cutoff, last)
        result = _run_backtest(data, origin, span, names, params)
        written = [] if out is None else _write_backtest(result, out)
        if out is not None and report:
            best = _train(
                data, cleaning, result.best(), result.horizon, result.cutoff, params
            ).scoring
            written.append(
                _write_report(best, data, cleaning, result, result.cutoff, out / "report.html")
            )
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
    models: ModelsOpt = DEFAULT_MODELS,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """The main job end to end: data, validation, backtest, training, predictions, report."""
    from ltvcast.cli._print import print_segments
    from ltvcast.data.datasets import load_dataset_dir
    from ltvcast.data.io import write_table
    from ltvcast.data.schemas import ITEM_ID, PREDICTION_COLUMNS, QUANTILE_COLUMNS
    from ltvcast.data.synthetic import simulate_store, write_store
    from ltvcast.data.validate import load_customer_data
    from ltvcast.evaluation.backtest import default_cutoff
    from ltvcast.evaluation.selection import pick
    from ltvcast.pipeline.recommend import Recommender
    from ltvcast.timeframe import parse_horizon

    out.mkdir(parents=True, exist_ok=True)
    span = parse_horizon(horizon)
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
    print_cleaning(cleaning)

    result = _run_backtest(data, default_cutoff(data, span), span, _names(models))
    written = _write_backtest(result, out / "backtest")
    choice, why = pick(result)
    console.print(f"Chose [bold]{choice}[/] by the backtest above ({why}).")
    as_of = data.last_timestamp()
    scoring = _train(data, cleaning, choice, span, as_of).scoring
    scoring.save(out / "model")
    table = scoring.score(data, as_of)
    predictions = table[[c for c in (*PREDICTION_COLUMNS, *QUANTILE_COLUMNS) if c in table]]
    written.append(write_table(predictions, out / "predictions.csv"))
    written.append(write_table(table, out / "segments.csv"))
    print_segments(table, f"Segments as of {as_of:%Y-%m-%d}, {len(table):,} customers")
    if ITEM_ID in data.transactions.columns:
        with step("Recommending each customer's next best action and items"):
            recs = Recommender(scoring).fit(data, as_of, table).recommend(data, as_of, table)
        written.append(write_table(recs, out / "recommendations.csv"))
    if data_dir is None:
        _print_truth_check(predictions, store.truth(as_of, span))
    written.append(_write_report(scoring, data, cleaning, result, as_of, out / "report.html"))
    console.print(f"\n[bold]Demo on {source}[/]: {len(predictions):,} customers scored.")
    for path in written:
        console.print(f"  wrote {path}")


@dataclass(frozen=True)
class _Extras:
    """What ``predict`` and ``forecast`` add to the prediction columns."""

    horizons: tuple[Horizon, ...] | None = None
    discount_rate: float | None = None
    intervals: bool = False

    @property
    def curves(self) -> bool:
        return self.horizons is not None or self.discount_rate is not None


def _extras_request(
    horizons: str | None,
    discount_rate: float | None,
    model: str | None = None,
    *,
    intervals: bool = False,
) -> _Extras:
    """``--horizons``, ``--discount-rate`` and ``--intervals`` checked before any work, with
    ``model`` (when named) checked to be one that gives them.

    Raises
    ------
    ConfigError
        For a bad list or rate, or a model that gives no curves or intervals.
    """
    if horizons is None and discount_rate is None and not intervals:
        return _Extras()
    from ltvcast.exceptions import ConfigError
    from ltvcast.models.btyd import BTYDForecaster
    from ltvcast.models.clv import check_discount_rate
    from ltvcast.models.registry import AUTO, forecaster_class
    from ltvcast.timeframe import parse_horizons

    extras = _Extras(
        None if horizons is None else parse_horizons(horizons),
        None if discount_rate is None else check_discount_rate(discount_rate),
        intervals,
    )
    if model is None or model == AUTO:
        return extras
    cls = forecaster_class(model)
    btyd = issubclass(cls, BTYDForecaster)
    if extras.curves and not hasattr(cls, "predict_curve"):
        raise ConfigError(
            f"--horizons and --discount-rate need a BTYD model (btyd, btyd_cal, pnbd, bgcnbd, "
            f"mbgcnbd) or seq, whose one fit gives every horizon; {model} learns one horizon only"
        )
    if intervals and not (btyd or cls.has_quantiles):
        raise ConfigError(
            f"--intervals needs a BTYD model or seq; {model} gives one expected value only"
        )
    return extras


def _write_predictions(
    scoring: ScoringModel,
    predictions: pd.DataFrame,
    cutoff: pd.Timestamp,
    out: Path,
    extras: _Extras,
) -> None:
    """Predictions to ``out``, a summary line, and the new-customer forecast when curves were
    asked for."""
    from ltvcast.data.io import write_table

    write_table(predictions, out)
    total = float(predictions["predicted_value"].sum())
    _print_predicted(scoring, len(predictions), total, cutoff, out, extras)


def _score_job(
    job: LocalJob | SparkJob,
    scoring: ScoringModel,
    out: Path,
    extras: _Extras,
) -> None:
    """:func:`_write_predictions` on a partitioned job."""
    with step(f"Scoring with {scoring.name} ({scoring.horizon} horizon)"):
        done = job.predict(
            scoring, out, horizons=extras.horizons, discount_rate=extras.discount_rate
        )
    _print_predicted(scoring, done.customers, done.total_value, done.as_of, out, extras)


def _print_predicted(
    scoring: ScoringModel,
    customers: int,
    total: float,
    cutoff: pd.Timestamp,
    out: Path,
    extras: _Extras,
) -> None:
    """The summary line of written predictions, and the new-customer forecast when curves
    were asked for."""
    from ltvcast.cli._print import print_new_customer

    console.print(
        f"{customers:,} customers as of {cutoff:%Y-%m-%d %H:%M}: predicted "
        f"{total:,.2f} over {scoring.horizon.describe()} -> {out}"
    )
    if extras.curves:
        print_new_customer(
            scoring.new_customer(extras.horizons, discount_rate=extras.discount_rate)
        )


def _names(models: str) -> list[str]:
    return [m.strip() for m in models.split(",") if m.strip()]


def _train(
    data: CustomerData,
    cleaning: CleaningReport,
    model: str,
    horizon: Horizon,
    as_of: str | pd.Timestamp | None,
    params: dict[str, Any] | None = None,
    extras: _Extras | None = None,
) -> Forecasted:
    """Train (printing the choice and coefficients) and score everyone at as-of with the
    columns ``extras`` asks for (the scores are the ones the segment cuts were fitted on)."""
    from ltvcast.cli._print import note
    from ltvcast.pipeline import forecast
    from ltvcast.timeframe import parse_as_of

    when = parse_as_of(as_of, data.last_timestamp())
    wanted = extras or _Extras()
    with step(f"Training {model} on data up to {when:%Y-%m-%d} for a {horizon.describe()} horizon"):
        done = forecast(
            data,
            model=model,
            horizon=horizon,
            as_of=when,
            cleaning=cleaning,
            on_note=note,
            model_params=params,
            horizons=wanted.horizons,
            discount_rate=wanted.discount_rate,
            intervals=wanted.intervals,
        )
    scoring = done.scoring
    if scoring.reason:
        console.print(f"  {scoring.reason}", highlight=False)
    if scoring.covariates:
        from ltvcast.cli._print import print_coefficients

        print_coefficients(scoring.coefficient_table())
    return done


def _train_job(
    job: LocalJob | SparkJob, model: str, horizon: Horizon, sample: int | None = None
) -> ScoringModel:
    """:func:`_train` on a partitioned job (a sampled model on ``sample`` customers,
    default :data:`~ltvcast.engine.plan.SAMPLE_CUSTOMERS`)."""
    from ltvcast.cli._print import note
    from ltvcast.engine.plan import SAMPLE_CUSTOMERS

    what = f"{model} on data up to {job.as_of:%Y-%m-%d} for a {horizon.describe()} horizon"
    with step(f"Training {what}"):
        return job.train(model, horizon, on_note=note, sample_customers=sample or SAMPLE_CUSTOMERS)


def _run_backtest(
    data: CustomerData,
    cutoff: pd.Timestamp,
    horizon: Horizon,
    models: list[str],
    params: dict[str, Any] | None = None,
) -> BacktestResult:
    from ltvcast.cli._print import print_metrics
    from ltvcast.pipeline import backtest_models

    _print_window(cutoff, horizon)
    with step(f"Backtesting {', '.join(models)}"):
        result = backtest_models(data, cutoff, horizon, models, model_params=params)
    print_metrics(result)
    return result


def _run_backtest_job(
    job: LocalJob | SparkJob,
    horizon: Horizon,
    models: list[str],
    cutoff: str | None,
    sample: int | None,
) -> BacktestResult:
    """:func:`_run_backtest` on a partitioned job."""
    from ltvcast.cli._print import print_metrics
    from ltvcast.engine.backtest import backtest_cutoff, backtest_job
    from ltvcast.engine.plan import SAMPLE_CUSTOMERS

    origin = backtest_cutoff(job, horizon, cutoff)
    _print_window(origin, horizon)
    with step(f"Backtesting {', '.join(models)} partitioned"):
        result = backtest_job(
            job, horizon, models, cutoff=origin, sample_customers=sample or SAMPLE_CUSTOMERS
        )
    print_metrics(result)
    return result


def _print_window(cutoff: pd.Timestamp, horizon: Horizon) -> None:
    """The backtest's training end and scored window, before it runs."""
    console.print(
        f"Backtest: train up to {cutoff:%Y-%m-%d}, score ({cutoff:%Y-%m-%d}, "
        f"{horizon.end(cutoff):%Y-%m-%d}] ({horizon.describe()})"
    )


def _write_backtest(result: BacktestResult, out: Path) -> list[Path]:
    from ltvcast.data.io import write_table

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


def _write_report(
    scoring: ScoringModel,
    data: CustomerData,
    cleaning: CleaningReport,
    result: BacktestResult | None,
    as_of: pd.Timestamp,
    path: Path,
) -> Path:
    from ltvcast.report import write_report

    with step("Writing the report"):
        return write_report(path, scoring, data, cleaning, result, as_of)


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
