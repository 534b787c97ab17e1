"""The partitioned path gives the in-memory path's report, model and predictions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.clean import CleaningOptions
from ltvcast.data.io import ColumnMap
from ltvcast.data.validate import DEFAULT_COLUMNS, load_customer_data
from ltvcast.engine import LocalJob
from ltvcast.engine.fit import needs_litt
from ltvcast.exceptions import ConfigError, LTVError, SchemaError
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.models.registry import create
from ltvcast.pipeline import train_model
from ltvcast.timeframe import parse_horizon, parse_horizons

from .conftest import CDNOW_COLUMNS, NOW, Run, assert_same, in_memory, saved_state


def _both(
    path: Path,
    model: str,
    horizon: str,
    tmp_path: Path,
    *,
    as_of: str | None = None,
    columns: ColumnMap = DEFAULT_COLUMNS,
    buckets: int = 4,
    workers: int = 2,
    curves: str | None = None,
) -> tuple[Run, Run]:
    """(model, report lines, predictions) of the partitioned and the in-memory path."""
    span = parse_horizon(horizon)
    spans = None if curves is None else parse_horizons(curves)
    out = tmp_path / "predictions.parquet"
    forecaster = create(model)
    litt = isinstance(forecaster, BTYDForecaster) and needs_litt(forecaster)
    with LocalJob(
        path, as_of=as_of, columns=columns, options=NOW, buckets=buckets, workers=workers
    ) as job:
        job.split()
        report = job.clean(with_litt=litt)
        scoring = job.train(model, span)
        job.predict(scoring, out, horizons=spans, discount_rate=0.1 if curves else None)
    memory = in_memory(path, model, horizon, as_of=as_of, columns=columns, curves=curves)
    return (scoring, report.lines(), pd.read_parquet(out)), memory


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("model", "as_of", "curves"),
    [("btyd", "1997-09-30", "30d,1y"), ("pnbd", None, None), ("mbgcnbd", "1997-09-30", None)],
)
def test_cdnow_as_in_memory(
    cdnow_master: Path, tmp_path: Path, model: str, as_of: str | None, curves: str | None
) -> None:
    """The raw file, the 39-week split; predictions, parameters, cuts and report alike."""
    assert_same(
        *_both(
            cdnow_master, model, "39w", tmp_path, as_of=as_of, columns=CDNOW_COLUMNS, curves=curves
        )
    )


@pytest.mark.parametrize(("buckets", "workers"), [(5, 2), (3, 1)])
def test_simulated_store_as_in_memory(
    store: Path, tmp_path: Path, buckets: int, workers: int
) -> None:
    """A dirty store (missing ids, bad times and amounts, duplicates, returns, time zones)
    in CSV and Parquet, in parallel and in this process."""
    assert_same(*_both(store, "btyd", "90d", tmp_path, buckets=buckets, workers=workers))


def _error(path: Path, **job: object) -> str:
    with pytest.raises(LTVError) as caught:
        with LocalJob(path, buckets=3, workers=2, **job) as run:  # type: ignore[arg-type]
            run.split()
            run.clean()
    return str(caught.value)


def _memory_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(LTVError) as caught:
        load_customer_data(path, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("who,timestamp,amount\na,2024-01-01,1\n", ColumnMap()),  # no customer column
        ("customer_id,when,amount\na,2024-01-01,1\n", ColumnMap()),  # no time column
        ("customer_id,timestamp,amount\na,2024-01-01,x\nb,2024-01-02,y\n", ColumnMap()),
        ("customer_id,timestamp,amount\n,2024-01-01,1\n,2024-01-02,2\n", ColumnMap()),
        ("customer_id,timestamp,amount\na,nope,1\nb,2024-01-02,y\n", ColumnMap()),
        ("customer_id,timestamp,amount\n", ColumnMap()),
        ("", ColumnMap()),
    ],
)
def test_bad_input_gives_the_in_memory_one_line(
    tmp_path: Path, text: str, columns: ColumnMap
) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(text)
    message = _memory_error(path, columns=columns)
    assert _error(path, columns=columns) == message
    assert "\n" not in message


def test_whole_column_rules_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\na,13/01/2024,1\nb,02/01/2024,2\n")
    message = _error(path)
    assert "day-first" in message and "--date-format" in message
    options = CleaningOptions(date_format="%d/%m/%Y")
    with LocalJob(path, options=options, buckets=2, workers=1) as job:
        job.split()
        assert job.clean().count("transactions", "result") == 2


@pytest.mark.parametrize("q", [0.5, 0.9, 0.999])
def test_winsorize_caps_at_the_whole_tables_quantile(store: Path, q: float) -> None:
    """The cap is the in-memory one to the last bit (the quantile of the cleaned buckets'
    amounts, out of core), each bucket capped in a second pass: same report and model."""
    options = CleaningOptions(now=NOW.now, winsorize_quantile=q)
    data, cleaning = load_customer_data(store, options=options)
    assert cleaning.count("transactions", "winsorized") > 0
    horizon = parse_horizon("90d")
    memory = train_model(data, horizon=horizon, model="btyd", cleaning=cleaning)
    with LocalJob(store, options=options, buckets=3, workers=2, keep=False) as job:
        job.split()
        report = job.clean()
        scoring = job.train("btyd", horizon)
    assert report.lines() == cleaning.lines()
    assert saved_state(scoring.forecaster) == saved_state(memory.forecaster)


def test_models_the_path_does_not_run_are_refused(store: Path, tmp_path: Path) -> None:
    with LocalJob(store, buckets=2, workers=1) as job:
        job.split()
        job.clean()
        with pytest.raises(ConfigError, match="btyd_cal needs the whole table"):
            job.train("btyd_cal", parse_horizon("30d"))
        data, cleaning = load_customer_data(store)
        baseline = train_model(data, horizon="30d", model="baseline", cleaning=cleaning)
        with pytest.raises(ConfigError, match="baseline needs the whole table"):
            job.predict(baseline, tmp_path / "p.csv")


def test_an_as_of_before_every_row_is_refused_as_in_memory(store: Path) -> None:
    with LocalJob(store, as_of="2000-01-01", buckets=2, workers=1) as job:
        job.split()
        job.clean()
        with pytest.raises(LTVError, match="btyd: no transaction up to 2000-01-01"):
            job.train("btyd", parse_horizon("30d"))


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="file not found"):
        with LocalJob(tmp_path / "none.csv", buckets=2, workers=2) as job:
            job.split()


def test_train_needs_the_summaries_it_fits_on(store: Path) -> None:
    with LocalJob(store, buckets=2, workers=1, keep=False) as job:
        job.split()
        job.clean(summarise=False)
        with pytest.raises(ConfigError, match="summarise=True"):
            job.train("btyd", parse_horizon("30d"))
        job.clean()
        with pytest.raises(ConfigError, match="with_litt=True"):
            job.train("bgcnbd", parse_horizon("30d"))
        assert job.train("btyd", parse_horizon("30d")).name == "btyd"
