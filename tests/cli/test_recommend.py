"""``ltvcast recommend`` end to end, and its bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.cli import run_app
from ltvcast.data.synthetic import simulate_store, write_store
from ltvcast.pipeline.recommend import RECOMMENDATION_COLUMNS
from ltvcast.timeframe import parse_horizon


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rec")
    store = simulate_store(300, days=400, dirty_rate=0.0, random_state=8)
    files = write_store(store, root / "store", horizon=parse_horizon("60d"))
    model = root / "model"
    train = ["train", str(files["transactions"]), "--model", "btyd", "--horizon", "60d"]
    assert run_app([*train, "--out", str(model)]) == 0
    return model, files["transactions"]


def test_recommend_writes_the_long_table(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, transactions = trained
    out = tmp_path / "recs.csv"
    assert (
        run_app(["recommend", str(model), str(transactions), "--out", str(out), "--top", "3"]) == 0
    )
    table = pd.read_csv(out, dtype={"customer_id": str, "item_id": str}, keep_default_na=False)
    assert list(table.columns) == list(RECOMMENDATION_COLUMNS)
    assert table.groupby("customer_id")["rank"].max().le(3).all()
    printed = capsys.readouterr().out
    assert "Next best action" in printed and "wrote" in printed


def test_actions_file_and_no_items(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model, transactions = trained
    actions = tmp_path / "actions.csv"
    actions.write_text("action,uplift,cost\nsecond_purchase_incentive,0,0\n")
    out = tmp_path / "recs.parquet"
    args = ["recommend", str(model), str(transactions), "--out", str(out), "--no-items"]
    assert run_app([*args, "--actions", str(actions)]) == 0
    table = pd.read_parquet(out)
    assert table["customer_id"].is_unique and (table["item_id"] == "").all()
    assert not (table["action"] == "second_purchase_incentive").any()


def test_unknown_item_column_is_one_line(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, transactions = trained
    args = ["recommend", str(model), str(transactions), "--out", str(tmp_path / "r.csv")]
    assert run_app([*args, "--item-col", "sku"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sku" in err and len(err.splitlines()) == 1


def test_items_need_an_item_column(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, transactions = trained
    plain = tmp_path / "tx.csv"
    pd.read_csv(transactions).drop(columns="item_id").to_csv(plain, index=False)
    assert run_app(["recommend", str(model), str(plain), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "item" in err and "--item-col" in err and len(err.splitlines()) == 1


def test_partitioned_recommend_is_the_in_memory_one(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, transactions = trained
    tables, printed = [], []
    for partitions in ("0", "2"):
        out = tmp_path / f"recs-{partitions}.csv"
        args = ["recommend", str(model), str(transactions), "--out", str(out), "--top", "4"]
        assert run_app([*args, "--partitions", partitions, "--workers", "2"]) == 0
        text = capsys.readouterr().out
        assert ("partitioned: 2 customer buckets" in text) == (partitions == "2")
        printed.append(text[text.index("Next best action") : text.index("wrote")])
        dtypes = {"customer_id": str, "item_id": str}
        tables.append(pd.read_csv(out, dtype=dtypes, keep_default_na=False))
    memory, partitioned = tables
    pd.testing.assert_frame_equal(partitioned, memory, rtol=1e-9)
    assert printed[0] == printed[1]  # the action mix, from the parts' summaries
    assert (memory["item_id"] != "").any() and memory["action"].nunique() >= 2


def test_a_model_not_scored_in_buckets_runs_in_memory_or_is_refused(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, transactions = trained
    model = tmp_path / "baseline"
    train = ["train", str(transactions), "--model", "baseline", "--horizon", "60d"]
    assert run_app([*train, "--out", str(model)]) == 0
    capsys.readouterr()
    args = ["recommend", str(model), str(transactions), "--out", str(tmp_path / "r.csv")]
    assert run_app(args) == 0
    assert "Engine: in memory (the partitioned path scores BTYD models" in capsys.readouterr().out
    assert run_app([*args, "--partitions", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "baseline needs the whole table in memory" in err and len(err.splitlines()) == 1
