"""train, predict and forecast with --events and --profiles, partitioned: gbdt on a sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from ltvcast.cli import run_app


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A dirty store with events and profiles written by ``ltvcast simulate``: the input
    arguments of a command."""
    folder = tmp_path_factory.mktemp("shop")
    args = ["simulate", "--out", str(folder), "--customers", "600", "--chunk", "250"]
    assert run_app([*args, "--days", "400", "--dirty-rate", "0.03", "--seed", "5"]) == 0
    files = {name: str(folder / f"{name}.csv") for name in ("transactions", "events", "profiles")}
    return [files["transactions"], "--events", files["events"], "--profiles", files["profiles"]]


def test_gbdt_forecast_partitioned_with_everyone_sampled_is_the_in_memory_one(
    shop: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = []
    for parts in ("0", "3"):
        out = tmp_path / f"p-{parts}.csv"
        args = ["forecast", *shop, "--horizon", "90d", "--model", "gbdt", "--out", str(out)]
        assert run_app([*args, "--partitions", parts, "--sample-customers", "100000"]) == 0
        outs.append(out.read_bytes())
    printed = capsys.readouterr().out
    assert "Engine: partitioned: 3 customer buckets" in printed
    assert "trained on a sample of 600 of 600 customers" in printed
    assert outs[0] == outs[1]


def test_gbdt_train_on_a_sample_then_predict_partitioned(
    shop: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model trained on 200 customers scores everyone, partitioned as in memory."""
    model = tmp_path / "m"
    args = ["train", *shop, "--horizon", "90d", "--model", "gbdt", "--out", str(model)]
    assert run_app([*args, "--partitions", "2", "--sample-customers", "200"]) == 0
    assert "trained on a sample of 200 of 600 customers" in capsys.readouterr().out
    outs = []
    for parts in ("0", "4"):
        out = tmp_path / f"p-{parts}.csv"
        assert (
            run_app(["predict", str(model), *shop, "--out", str(out), "--partitions", parts]) == 0
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert len(outs[0].decode().splitlines()) == 601


def test_bad_events_are_one_line_partitioned(
    shop: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.csv"
    events.write_text("customer_id,timestamp\na,2024-01-01\n")
    inputs = [shop[0], "--events", str(events)]
    errors = []
    for parts in ("0", "2"):
        args = ["train", *inputs, "--horizon", "90d", "--model", "btyd", "--out", str(tmp_path)]
        assert run_app([*args, "--partitions", parts]) == 2
        errors.append(capsys.readouterr().err)
    assert errors[0] == errors[1]
    assert "required column 'event_type' not found" in errors[0]
    assert "Traceback" not in errors[0] and len(errors[0].strip().splitlines()) == 1
