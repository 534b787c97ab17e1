"""The core commands end to end on a small simulated store, and bad input at the edge."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.cli import run_app
from ltvcast.data.synthetic import simulate_store, write_store
from ltvcast.timeframe import parse_horizon


@pytest.fixture(scope="module")
def store_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    store = simulate_store(600, days=540, dirty_rate=0.01, random_state=3)
    return write_store(store, tmp_path_factory.mktemp("store"), horizon=parse_horizon("90d"))


def test_train_predict_round_trip(store_files: dict[str, Path], tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    args = [
        str(store_files["transactions"]),
        "--events",
        str(store_files["events"]),
        "--profiles",
        str(store_files["profiles"]),
    ]
    assert (
        run_app(["train", *args, "--horizon", "90d", "--model", "btyd", "--out", str(model_dir)])
        == 0
    )
    assert (model_dir / "manifest.json").is_file()
    out = tmp_path / "pred.parquet"
    assert run_app(["predict", str(model_dir), *args, "--out", str(out)]) == 0
    predictions = pd.read_parquet(out)
    assert list(predictions.columns[:4]) == [
        "customer_id",
        "predicted_value",
        "predicted_purchases",
        "p_active",
    ]
    assert predictions["customer_id"].is_unique
    assert (predictions["p_active"].between(0, 1)).all()
    assert (predictions["predicted_value"] >= 0).all()


def test_as_of_ignores_later_rows(store_files: dict[str, Path], tmp_path: Path) -> None:
    """Rows after --as-of (for known and new customers) change no prediction."""
    tx = pd.read_csv(store_files["transactions"], dtype=str)
    model_dir = tmp_path / "m"
    common = ["--horizon", "30d", "--model", "btyd", "--as-of", "2024-03-31"]
    source = str(store_files["transactions"])
    assert run_app(["train", source, *common, "--out", str(model_dir)]) == 0
    later = tx.dropna(subset=["customer_id"]).head(50).copy()
    later["timestamp"] = "2024-04-01 00:00:01"
    later["amount"] = "999.0"
    later.loc[later.index[:5], "customer_id"] = "brand-new"
    extended = tmp_path / "extended.csv"
    pd.concat([tx, later]).to_csv(extended, index=False)
    outputs = []
    for path in (source, str(extended)):
        out = tmp_path / f"pred-{len(outputs)}.csv"
        args = ["predict", str(model_dir), path, "--as-of", "2024-03-31", "--out", str(out)]
        assert run_app(args) == 0
        outputs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    assert "brand-new" not in set(outputs[1]["customer_id"])


def test_backtest_writes_metrics(store_files: dict[str, Path], tmp_path: Path) -> None:
    code = run_app(
        [
            "backtest",
            str(store_files["transactions"]),
            "--horizon",
            "90d",
            "--models",
            "baseline,btyd",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert set(metrics["model"]) == {"baseline", "btyd"}
    assert metrics["normalized_gini"].notna().all()


def test_backtest_partitioned_writes_the_in_memory_metrics(
    store_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With events and profiles, btyd and gbdt (its sample: every customer here) score the
    same partitioned as in memory; baseline, which needs the whole table, is skipped."""
    tables = [str(store_files["transactions"]), "--events", str(store_files["events"])]
    tables += ["--profiles", str(store_files["profiles"])]
    tables += ["--horizon", "90d", "--models", "baseline,btyd,gbdt"]
    metrics = {}
    for parts in ("0", "3"):
        out = tmp_path / parts
        assert run_app(["backtest", *tables, "--partitions", parts, "--out", str(out)]) == 0
        metrics[parts] = pd.read_csv(out / "metrics.csv").set_index("model")
    printed = capsys.readouterr().out
    assert "Engine: partitioned: 3" in printed
    assert "baseline needs the whole table in memory" in " ".join(printed.split())
    ran = ["btyd", "gbdt"]
    columns = [c for c in metrics["0"].columns if c not in ("fit_s", "predict_s", "error")]
    pd.testing.assert_frame_equal(
        metrics["3"].loc[ran, columns], metrics["0"].loc[ran, columns], rtol=1e-9
    )
    assert pd.isna(metrics["3"].loc["baseline", "normalized_gini"])


def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "orders.csv"
    bad.write_text("client,when,total\n1,2024-01-01,3.0\n")
    code = run_app(["train", str(bad), "--horizon", "30d", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "orders.csv" in err and "customer_id" in err
    assert "Traceback" not in err
    missing = run_app(["train", str(tmp_path / "nope.csv"), "--horizon", "30d", "--out", "x"])
    assert missing == 2
    assert run_app(["train", str(bad), "--horizon", "soon", "--out", "x"]) == 2
    assert "horizon" in capsys.readouterr().err


def test_forecast_is_train_then_predict(store_files: dict[str, Path], tmp_path: Path) -> None:
    source = str(store_files["transactions"])
    common = ["--horizon", "60d", "--model", "btyd"]
    one = tmp_path / "one.csv"
    saved = tmp_path / "saved"
    assert (
        run_app(["forecast", source, *common, "--out", str(one), "--save-model", str(saved)]) == 0
    )
    assert run_app(["train", source, *common, "--out", str(tmp_path / "m")]) == 0
    two = tmp_path / "two.csv"
    assert run_app(["predict", str(tmp_path / "m"), source, "--out", str(two)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(one), pd.read_csv(two))
    assert (saved / "manifest.json").is_file()


@pytest.mark.realdata
def test_a_dates_only_log_through_the_cli(data_dir: Path, tmp_path: Path) -> None:
    """BTYDplus' online grocery log (dates only): auto weighs the regular-timing models and
    beats Pareto/NBD's published holdout MAE (1.508 in the vignette; target 1.46)."""
    source = data_dir / "grocery_btydplus" / "groceryElog.csv"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    common = ["--customer-col", "cust", "--time-col", "date", "--as-of", "2006-12-31",
              "--horizon", "52w"]  # fmt: skip
    out = tmp_path / "auto.csv"
    assert run_app(["forecast", str(source), *common, "--out", str(out)]) == 0
    assert run_app(["forecast", str(source), *common, "--model", "btyd",
                    "--out", str(tmp_path / "btyd.csv")]) == 0  # fmt: skip
    raw = pd.read_csv(source, dtype={"cust": str}, parse_dates=["date"])
    holdout = raw[(raw["date"] > "2006-12-31") & (raw["date"] <= "2007-12-30")]
    actual = holdout.drop_duplicates(["cust", "date"]).groupby("cust").size()
    predicted = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    error = (predicted["predicted_purchases"] - actual.reindex(predicted.index).fillna(0)).abs()
    assert error.mean() <= 1.46
    # value counts purchases: every transaction is worth 1
    assert (predicted["predicted_value"] - predicted["predicted_purchases"]).abs().max() < 1e-9


def test_predict_adds_horizon_curves_and_the_new_customer_forecast(
    store_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(store_files["transactions"])
    model_dir = tmp_path / "m"
    assert (
        run_app(["train", source, "--horizon", "90d", "--model", "pnbd", "--out", str(model_dir)])
        == 0
    )
    out = tmp_path / "curves.csv"
    extra = ["--horizons", "1y,30d,90d", "--discount-rate", "0.08", "--intervals"]
    assert run_app(["predict", str(model_dir), source, "--out", str(out), *extra]) == 0
    table = pd.read_csv(out)
    for family in ("purchases", "value", "p_alive", "discounted_value"):
        assert [c for c in table.columns[6:] if c.startswith(f"{family}_")] == [
            f"{family}_{h}" for h in ("30d", "90d", "1y")
        ]
    assert (table["value_90d"] - table["predicted_value"]).abs().max() < 1e-9
    assert (table["value_1y"] >= table["value_90d"] - 1e-12).all()
    assert (table["p_alive_1y"] <= table["p_alive_30d"] + 1e-12).all()
    assert list(table.columns[4:6]) == ["value_p10", "value_p90"]
    inside = table["value_p10"].le(table["predicted_value"] + 1e-9) & table["value_p90"].ge(
        table["predicted_value"] - 1e-9
    )
    assert inside.mean() > 0.95
    assert "A new customer" in capsys.readouterr().out


def test_curves_need_a_btyd_model(
    store_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(store_files["transactions"])
    args = ["forecast", source, "--horizon", "30d", "--out", str(tmp_path / "p.csv")]
    assert run_app([*args, "--model", "baseline", "--horizons", "30d,60d"]) == 2
    captured = capsys.readouterr()
    assert "need a BTYD model" in captured.err and "Traceback" not in captured.err
    assert "Training" not in captured.out  # refused before any work
    assert not (tmp_path / "p.csv").exists()
    assert run_app([*args, "--model", "gbdt", "--intervals"]) == 2
    assert "--intervals needs" in capsys.readouterr().err
    assert run_app([*args, "--model", "btyd", "--discount-rate", "-1"]) == 2
    assert "discount rate" in capsys.readouterr().err
    assert run_app([*args, "--model", "btyd", "--horizons", "30d,4w,30d"]) == 2
    assert "twice" in capsys.readouterr().err


def test_covariates_through_train_predict_and_backtest(
    store_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(store_files["transactions"])
    profiles = ["--profiles", str(store_files["profiles"])]
    model_dir = tmp_path / "m"
    train = ["train", source, *profiles, "--horizon", "90d", "--model", "pnbd"]
    assert run_app([*train, "--covariates", "channel,age", "--out", str(model_dir)]) == 0
    printed = capsys.readouterr().out
    assert "purchase:channel=referral" in printed and "spend:age" in printed
    out = tmp_path / "p.csv"
    assert run_app(["predict", str(model_dir), source, *profiles, "--out", str(out)]) == 0
    assert pd.read_csv(out)["predicted_value"].notna().all()
    # The profiles are needed at predict time too, and said so before any work.
    assert run_app(["predict", str(model_dir), source, "--out", str(out)]) == 2
    assert "give --profiles" in capsys.readouterr().err
    metrics = tmp_path / "bt"
    backtest = ["backtest", source, *profiles, "--horizon", "90d", "--models", "btyd,pnbd"]
    assert run_app([*backtest, "--covariates", "channel", "--out", str(metrics)]) == 0
    assert len(pd.read_csv(metrics / "metrics.csv")) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "auto"], "--model auto chooses among models without them"),
        (["--model", "gbdt"], "gbdt has none"),
        (["--model", "btyd_cal"], "btyd_cal has none"),
        (["--model", "btyd", "--no-profiles"], "give --profiles"),
        (["--model", "btyd", "--intervals"], "--intervals are not available with --covariates"),
    ],
)
def test_covariates_need_a_model_that_has_them(
    store_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    source = str(store_files["transactions"])
    profiles = [] if "--no-profiles" in args else ["--profiles", str(store_files["profiles"])]
    flags = [a for a in args if a != "--no-profiles"]
    for command in ("forecast",) if "--intervals" in flags else ("train", "forecast"):
        out = ["--out", str(tmp_path / ("m" if command == "train" else "p.csv"))]
        code = run_app([command, source, *profiles, "--horizon", "30d", *flags,
                        "--covariates", "channel", *out])  # fmt: skip
        captured = capsys.readouterr()
        assert code == 2 and message in captured.err and "Training" not in captured.out
        assert len(captured.err.strip().splitlines()) == 1
    if "--intervals" not in flags:
        code = run_app(["backtest", source, *profiles, "--horizon", "30d", "--models",
                        flags[1], "--covariates", "channel"])  # fmt: skip
        assert code == 2 and message in capsys.readouterr().err


def test_every_registered_model_with_covariates_is_named_in_the_help() -> None:
    import inspect

    from ltvcast.cli._options import COVARIATE_MODELS
    from ltvcast.models.registry import forecaster_class, model_names

    names = [n for n in model_names() if n != "seq"]  # seq (torch to import) has none
    having = [n for n in names if "covariates" in inspect.signature(forecaster_class(n)).parameters]
    assert tuple(having) == COVARIATE_MODELS
