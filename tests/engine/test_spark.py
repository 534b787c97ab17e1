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
from ltvcast.data.io import ColumnMap
from ltvcast.data.validate import DEFAULT_COLUMNS, load_customer_data
from ltvcast.exceptions import LTVError, SchemaError
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.btyd import WEEK_DAYS
from ltvcast.timeframe import parse_as_of, parse_horizon, parse_horizons

from .conftest import CDNOW_COLUMNS, NOW, Run, assert_same, in_memory

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
