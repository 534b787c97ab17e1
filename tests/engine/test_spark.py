"""The Spark engine gives the local engine's report, features, model and predictions."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ltvcast.cli import run_app
from ltvcast.data.clean import CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.schemas import CustomerData
from ltvcast.data.synthetic import write_simulated_store
from ltvcast.data.validate import DEFAULT_COLUMNS, load_customer_data
from ltvcast.exceptions import LTVError, SchemaError
from ltvcast.features.rfm import rfm_summary
from ltvcast.features.tabular import tabular_features
from ltvcast.models.btyd import WEEK_DAYS
from ltvcast.pipeline import ScoringModel
from ltvcast.timeframe import parse_as_of, parse_horizon, parse_horizons

from .conftest import CDNOW_COLUMNS, NOW, Run, assert_same, in_memory, saved_state

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None, reason="pyspark is not installed"
    ),
    pytest.mark.skipif(shutil.which("java") is None, reason="no Java on PATH (Spark needs it)"),
]
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One small local Spark session for the module."""
    from ltvcast.engine.spark import spark_session

    session = spark_session(
        "local[2]",
        **{
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _spark_run(
    spark: Any,
    path: Path,
    horizon: str,
    out: Path,
    *,
    as_of: str | None = None,
    columns: ColumnMap = DEFAULT_COLUMNS,
    curves: str | None = None,
) -> tuple[Run, pd.DataFrame]:
    """(model, report lines, predictions sorted by customer) of a Spark job, and its RFM
    summary."""
    from ltvcast.engine import SparkJob

    spans = None if curves is None else parse_horizons(curves)
    with SparkJob(path, spark=spark, as_of=as_of, columns=columns, options=NOW, buckets=3) as job:
        job.split()
        report = job.clean()
        scoring = job.train("btyd", parse_horizon(horizon))
        done = job.predict(scoring, out, horizons=spans, discount_rate=0.1 if curves else None)
        summary = job.summary
    predictions = pd.read_parquet(out).sort_values("customer_id", ignore_index=True)
    assert done.customers == len(predictions)
    assert done.total_value == pytest.approx(predictions["predicted_value"].sum(), rel=1e-12)
    return (scoring, report.lines(), predictions), summary


def _same_features(
    summary: pd.DataFrame, path: Path, as_of: str | None, columns: ColumnMap
) -> None:
    """The RFM summary is the in-memory one (to 1e-9)."""
    data, _ = load_customer_data(path, columns=columns, options=NOW)
    when = parse_as_of(as_of, data.last_timestamp())
    expected = rfm_summary(data.until(when).transactions, when, time_unit_days=WEEK_DAYS)
    pd.testing.assert_frame_equal(summary, expected, rtol=1e-9, atol=0.0)


@pytest.fixture(scope="module")
def cdnow_sample(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CDNOW's 1/10 sample (2,357 customers, all their lines) as whitespace-separated text
    with a header line, as the master file is written."""
    lines = (data_dir / "cdnow" / "CDNOW_sample.txt").read_text()
    path = tmp_path_factory.mktemp("cdnow") / "cdnow_sample.txt"
    path.write_text("customer_id sample_id date number_of_cds dollar_value\n" + lines)
    return path


@pytest.mark.realdata
def test_cdnow_as_local(spark: Any, cdnow_sample: Path, tmp_path: Path) -> None:
    """CDNOW's raw log (whitespace-separated text) at the 39-week split, with curves."""
    as_of, curves, columns = "1997-09-30", "30d,1y", CDNOW_COLUMNS
    out = tmp_path / "p"
    run, summary = _spark_run(
        spark, cdnow_sample, "39w", out, as_of=as_of, columns=columns, curves=curves
    )
    local = in_memory(cdnow_sample, "btyd", "39w", as_of=as_of, columns=columns, curves=curves)
    assert_same(run, local, rtol=1e-9)
    assert len(local[2]) == 2357
    _same_features(summary, cdnow_sample, as_of, columns)


@pytest.mark.parametrize("store", ["parquet"], indirect=True)
def test_simulated_store_as_local(spark: Any, store: Path, tmp_path: Path) -> None:
    """A dirty simulated store in Parquet (missing ids, bad times and amounts, duplicates,
    returns): same report lines and row numbers, features, model and predictions."""
    run, summary = _spark_run(spark, store, "90d", tmp_path / "p.parquet")
    assert_same(run, in_memory(store, "btyd", "90d"), rtol=1e-9)
    _same_features(summary, store, None, DEFAULT_COLUMNS)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dirty simulated store with events and profiles (300 customers, CSV in chunks)."""
    folder = tmp_path_factory.mktemp("shop")
    return write_simulated_store(
        folder, 300, chunk_size=120, days=400, dirty_rate=0.03, random_state=11
    )


#: Customers the gbdt of the shop trains on.
SAMPLE = 150
#: A job's cleaning report, gbdt sample, model and predictions sorted by customer.
GbdtRun = tuple[CleaningReport, CustomerData, ScoringModel, pd.DataFrame]


def _gbdt_run(job: Any, out: Path) -> GbdtRun:
    with job:
        job.split()
        report = job.clean()
        sample = job.sample(SAMPLE)
        scoring = job.train("gbdt", parse_horizon("90d"), sample_customers=SAMPLE)
        job.predict(scoring, out)
    predictions = pd.read_parquet(out).sort_values("customer_id", ignore_index=True)
    return report, sample, scoring, predictions


@pytest.fixture(scope="module")
def shop_local(shop: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> GbdtRun:
    """The shop's gbdt run on the local partitioned engine."""
    from ltvcast.engine import LocalJob

    tables = {"events": shop["events"], "profiles": shop["profiles"]}
    job = LocalJob(shop["transactions"], **tables, options=NOW, buckets=4, workers=1)
    return _gbdt_run(job, tmp_path_factory.mktemp("local") / "p.parquet")


def test_events_profiles_and_gbdt_as_local(
    spark: Any, shop: dict[str, Path], shop_local: GbdtRun, tmp_path: Path
) -> None:
    """Events and profiles bucketed with the transactions on Spark: the local partitioned
    engine's cleaning report (events' counts: the in-memory ones), gbdt sample (rows and
    features), model and predictions (to 1e-9)."""
    from ltvcast.engine import SparkJob

    tables = {"events": shop["events"], "profiles": shop["profiles"]}
    job = SparkJob(shop["transactions"], spark=spark, **tables, options=NOW, buckets=3)
    report, sample, scoring, predictions = _gbdt_run(job, tmp_path / "p")
    report_l, sample_l, scoring_l, predictions_l = shop_local
    assert report.to_dict() == report_l.to_dict()
    _, cleaning = load_customer_data(shop["transactions"], **tables, options=NOW)
    events = [(s.step, s.rows) for s in report.steps if s.table == "events"]
    assert events == [(s.step, s.rows) for s in cleaning.steps if s.table == "events"]
    assert {"read", "invalid_customer_id", "duplicates", "result"} <= dict(events).keys()
    for table in ("transactions", "events", "profiles"):
        pd.testing.assert_frame_equal(getattr(sample, table), getattr(sample_l, table))
    assert sample.customers().size == SAMPLE
    encoder = scoring.forecaster.profile_encoder_  # type: ignore[attr-defined]
    when = scoring.training.end  # type: ignore[union-attr]
    features = [tabular_features(s, when, encoder) for s in (sample, sample_l)]
    pd.testing.assert_frame_equal(*features, check_exact=True)
    assert features[0].filter(like="view").abs().sum().sum() > 0  # events made features
    assert saved_state(scoring.forecaster) == saved_state(scoring_l.forecaster)
    assert scoring.manifest == scoring_l.manifest
    assert len(predictions) == 300
    pd.testing.assert_frame_equal(predictions, predictions_l, rtol=1e-9, atol=0.0)


def test_backtest_as_local(spark: Any, shop: dict[str, Path]) -> None:
    """A backtest of gbdt (its sample) and btyd on Spark: the local partitioned engine's
    customers, labels and metrics (to 1e-9); a model that needs the whole table skipped."""
    from ltvcast.engine import LocalJob, SparkJob
    from ltvcast.engine.backtest import backtest_job

    tables = {"events": shop["events"], "profiles": shop["profiles"]}
    results = []
    for job in (
        LocalJob(shop["transactions"], **tables, options=NOW, buckets=4, workers=1),
        SparkJob(shop["transactions"], spark=spark, **tables, options=NOW, buckets=3),
    ):
        with job:
            job.split()
            job.clean(summarise=False)
            models = ["gbdt", "btyd", "baseline"]
            results.append(backtest_job(job, parse_horizon("60d"), models, sample_customers=SAMPLE))
    local, on_spark = results
    assert on_spark.cutoff == local.cutoff and on_spark.n_customers == local.n_customers
    pd.testing.assert_frame_equal(on_spark.actuals, local.actuals)
    for mine, theirs in zip(on_spark.results[:2], local.results[:2], strict=True):
        assert mine.metrics and mine.metrics.keys() == theirs.metrics.keys()
        for metric, value in theirs.metrics.items():
            assert mine.metrics[metric] == pytest.approx(value, rel=1e-9, nan_ok=True), metric
    assert on_spark.results[2].error is not None and "whole table" in on_spark.results[2].error


def test_tables_of_numeric_and_text_ids_meet_in_one_bucket(spark: Any, tmp_path: Path) -> None:
    """Integer ids in Parquet transactions and text ids (blanks, a ``.0``) in CSV events: each
    customer's rows share a bucket, so Spark scores every customer once, as locally."""
    from ltvcast.engine import LocalJob, SparkJob

    ids = list(range(1, 41))
    tx = tmp_path / "tx.parquet"
    pd.DataFrame(
        {
            "customer_id": [i for i in ids for _ in range(2)],
            "timestamp": [f"2024-0{1 + k * 3}-{1 + i % 20:02d}" for i in ids for k in range(2)],
            "amount": [float(5 + i % 7) for i in ids for _ in range(2)],
        }
    ).to_parquet(tx)
    events = tmp_path / "events.csv"
    texts = [f" {i}" if i % 3 == 0 else f"{i}.0" if i % 3 == 1 else str(i) for i in [*ids, 99]]
    events.write_text(
        "customer_id,timestamp,event_type\n"
        + "".join(f"{t},2024-05-{1 + n % 20:02d},view\n" for n, t in enumerate(texts))
    )
    runs = []
    for job, out in [
        (SparkJob(tx, spark=spark, events=events, options=NOW, buckets=3), tmp_path / "s"),
        (LocalJob(tx, events=events, options=NOW, buckets=7, workers=1), tmp_path / "l.parquet"),
    ]:
        with job:
            job.split()
            report = job.clean()
            job.predict(job.train("btyd", parse_horizon("30d")), out)
        runs.append((report.lines(), pd.read_parquet(out).sort_values("customer_id")))
    assert runs[0][0] == runs[1][0]
    assert len(runs[0][1]) == 41  # the 40 buyers and the one with events only
    pd.testing.assert_frame_equal(
        runs[0][1].reset_index(drop=True), runs[1][1].reset_index(drop=True), rtol=1e-9, atol=0.0
    )


def test_bad_paths_are_one_line(spark: Any, tmp_path: Path) -> None:
    from ltvcast.engine import SparkJob

    for path, match in [
        (str(tmp_path / "none.csv"), "file not found"),
        (f"file://{tmp_path}/none/", "Spark cannot read or write it"),
    ]:
        with pytest.raises(SchemaError, match=match) as caught:
            with SparkJob(path, spark=spark) as job:
                job.split()
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("who,timestamp,amount\na,2024-01-01,1\n", "required column 'customer_id'"),
        ("customer_id,timestamp,amount\na,13/01/2024,1\nb,02/01/2024,2\n", "--date-format"),
    ],
)
def test_bad_tables_give_the_local_one_line(
    spark: Any, tmp_path: Path, text: str, match: str
) -> None:
    from ltvcast.engine import LocalJob, SparkJob

    path = tmp_path / "tx.csv"
    path.write_text(text)
    messages = []
    for job in (SparkJob(path, spark=spark), LocalJob(path, buckets=2, workers=1)):
        with pytest.raises(LTVError, match=match) as caught:
            with job:
                job.split()
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "\n" not in messages[0]


def test_cli_engine_spark_forecast(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``forecast --engine spark`` on a small CSV store: the in-memory forecasts, as a folder
    of Parquet parts (in this process, on the module's session: a second JVM would double
    the module's time)."""
    folder = tmp_path / "store"
    simulate = ["simulate", "--out", str(folder), "--customers", "300", "--days", "300"]
    assert run_app([*simulate, "--dirty-rate", "0.03", "--no-events"]) == 0
    source = str(folder / "transactions.csv")
    args = ["forecast", source, "--horizon", "90d", "--model", "btyd", "--horizons", "30d"]
    assert run_app([*args, "--out", str(tmp_path / "memory.parquet"), "--partitions", "0"]) == 0
    out = tmp_path / "spark"
    capsys.readouterr()
    spark_args = ["--out", str(out), "--engine", "spark", "--spark-master", "local[2]"]
    assert run_app([*args, *spark_args]) == 0
    assert "Engine: spark on local[2]: buckets by size (--engine spark)" in capsys.readouterr().out
    by_spark = pd.read_parquet(out).sort_values("customer_id", ignore_index=True)
    memory = pd.read_parquet(tmp_path / "memory.parquet")
    pd.testing.assert_frame_equal(by_spark, memory, rtol=1e-9, atol=0.0)


def test_cli_backtest_on_spark(
    spark: Any, shop: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``backtest --engine spark`` writes the in-memory metrics of btyd; ``--report`` (every
    row in memory) is refused in one line."""
    args = ["backtest", str(shop["transactions"]), "--horizon", "60d", "--models", "btyd"]
    assert run_app([*args, "--out", str(tmp_path / "memory"), "--partitions", "0"]) == 0
    on_spark = [*args, "--engine", "spark", "--spark-master", "local[2]"]
    assert run_app([*on_spark, "--out", str(tmp_path / "spark")]) == 0
    assert "Engine: spark on local[2]" in capsys.readouterr().out
    metrics = [pd.read_csv(tmp_path / d / "metrics.csv") for d in ("spark", "memory")]
    kept = [c for c in metrics[0].columns if c not in ("fit_s", "predict_s")]
    pd.testing.assert_frame_equal(metrics[0][kept], metrics[1][kept], rtol=1e-9)
    assert run_app([*on_spark, "--report", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--report" in err and len(err.strip().splitlines()) == 1


def test_cli_engine_spark_gbdt_with_events(
    spark: Any,
    shop: dict[str, Path],
    shop_local: GbdtRun,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``forecast --engine spark --events --profiles --model gbdt``: the local partitioned
    forecasts (the same customer sample); a bad events path is one line and exit code 2
    (in this process, on the module's session, as above)."""
    args = ["forecast", str(shop["transactions"]), "--horizon", "90d", "--model", "gbdt"]
    args += ["--profiles", str(shop["profiles"]), "--sample-customers", str(SAMPLE)]
    args += ["--engine", "spark", "--spark-master", "local[2]"]
    out = tmp_path / "spark"
    capsys.readouterr()
    assert run_app([*args, "--events", str(shop["events"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Reading the transactions, events, profiles on Spark" in printed
    assert f"trained on a sample of {SAMPLE} of 300 customers" in printed
    by_spark = pd.read_parquet(out).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(by_spark, shop_local[3], rtol=1e-9, atol=0.0)

    bad = ["--events", str(tmp_path / "none.csv"), "--out", str(tmp_path / "bad")]
    assert run_app([*args, *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert "none.csv" in err and "file not found" in err and "\n" not in err


def test_missing_pyspark_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "tx.csv"
    source.write_text("customer_id,timestamp,amount\na,2024-01-01,1\n")
    code = (
        "import sys; sys.modules['pyspark'] = None; from ltvcast.cli import main; "
        f"sys.argv = ['ltvcast', 'forecast', {str(source)!r}, '--horizon', '30d', "
        f"'--model', 'btyd', '--out', {str(tmp_path / 'p.parquet')!r}, '--engine', 'spark']; "
        "main()"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "pip install 'ltvcast[spark]'" in done.stderr
