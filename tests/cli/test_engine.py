"""--partitions on train, predict and forecast: the same files as in memory, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.cli import run_app

CDNOW = ["--time-col", "date", "--amount-col", "dollar_value", "--quantity-col", "number_of_cds"]
SPLIT_39W = ["--as-of", "1997-09-30", "--horizon", "39w"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dirty store written by ``ltvcast simulate`` in chunks, transactions only."""
    folder = tmp_path_factory.mktemp("store")
    args = ["simulate", "--out", str(folder), "--customers", "800", "--chunk", "300"]
    assert run_app([*args, "--days", "400", "--dirty-rate", "0.03", "--no-events"]) == 0
    assert len(pd.read_csv(folder / "events.csv")) == 0
    return folder / "transactions.csv"


@pytest.mark.realdata
def test_cdnow_train_predict_and_forecast_partitioned(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The raw CDNOW file at the 39-week split: byte-identical predictions either way."""
    source = str(data_dir / "cdnow" / "CDNOW_master.txt")
    files = {}
    for parts in ("0", "3"):
        model = tmp_path / f"model-{parts}"
        train = ["train", source, *CDNOW, *SPLIT_39W, "--model", "btyd", "--out", str(model)]
        assert run_app([*train, "--partitions", parts]) == 0
        out = tmp_path / f"predict-{parts}.csv"
        predict = ["predict", str(model), source, *CDNOW, "--as-of", "1997-09-30"]
        assert run_app([*predict, "--out", str(out), "--partitions", parts]) == 0
        forecast = tmp_path / f"forecast-{parts}.csv"
        one = ["forecast", source, *CDNOW, *SPLIT_39W, "--model", "btyd", "--out", str(forecast)]
        assert run_app([*one, "--partitions", parts, "--workers", "2"]) == 0
        files[parts] = (out.read_bytes(), forecast.read_bytes())
        printed = capsys.readouterr().out
        assert ("Engine: in memory" if parts == "0" else "Engine: partitioned: 3") in printed
    assert files["0"] == files["3"]
    assert files["0"][0] == files["0"][1]


def test_a_dirty_store_partitioned(store: Path, tmp_path: Path) -> None:
    outs = []
    for parts in ("0", "4"):
        out = tmp_path / f"p-{parts}.parquet"
        args = ["forecast", str(store), "--horizon", "90d", "--model", "pnbd", "--out", str(out)]
        assert run_app([*args, "--horizons", "30d,180d", "--partitions", parts]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_small_inputs_run_in_memory_by_default(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", str(store), "--horizon", "90d", "--model", "btyd"]
    assert run_app([*args, "--out", str(tmp_path / "m")]) == 0
    assert "Engine: in memory (~" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "auto"], "auto needs the whole table in memory: use --partitions 0"),
        (["--model", "btyd", "--events", "s3a://b/x.csv", "--engine", "spark"], "local paths"),
        (["--model", "seq", "--engine", "spark"], "use --engine local --partitions 0"),
        (["--model", "btyd", "--winsorize", "0.99", "--engine", "spark"], "--winsorize runs on"),
    ],
)
def test_what_cannot_run_partitioned_is_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    args = ["train", str(store), "--horizon", "90d", "--out", str(tmp_path / "m")]
    assert run_app([*args, *extra, "--partitions", "2"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_rows_in_a_bucket_are_the_in_memory_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tx.csv"
    source.write_text("customer_id,timestamp,amount\na,2024-01-01,x\nb,2024-01-02,y\n")
    errors = []
    for parts in ("0", "2"):
        args = ["train", str(source), "--horizon", "30d", "--model", "btyd"]
        assert run_app([*args, "--out", str(tmp_path / "m"), "--partitions", parts]) == 2
        errors.append(capsys.readouterr().err)
    assert errors[0] == errors[1]
    assert "column 'amount' must be numeric; 2 of 2 rows are not (rows 1, 2)" in errors[0]
    assert "Traceback" not in errors[0]


def test_a_partitioned_fit_keeps_what_intervals_need(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model trained partitioned gives the in-memory intervals; intervals themselves run in
    memory only, and a forced partitioned run says so in one line."""
    models = {}
    for parts in ("0", "3"):
        models[parts] = tmp_path / f"m-{parts}"
        args = ["train", str(store), "--horizon", "90d", "--model", "btyd"]
        assert run_app([*args, "--out", str(models[parts]), "--partitions", parts]) == 0
    outs = []
    for parts, model in models.items():
        out = tmp_path / f"bands-{parts}.csv"
        assert run_app(["predict", str(model), str(store), "--out", str(out), "--intervals"]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1] and "value_p10" in outs[0].splitlines()[0]
    capsys.readouterr()
    forced = ["predict", str(models["3"]), str(store), "--out", str(tmp_path / "x.csv")]
    assert run_app([*forced, "--intervals", "--partitions", "2"]) == 2
    err = capsys.readouterr().err
    assert "--intervals runs in memory only" in err and len(err.strip().splitlines()) == 1
