"""Real-data loaders against the verified counts in each dataset's README."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.datasets import (
    DATASETS,
    RETAIL_NON_PURCHASE_CODES,
    load_cdnow,
    load_completejourney,
    load_dataset_dir,
    load_grocery,
    load_online_retail,
    load_rees46_head,
    load_shapees,
    load_taobao_head,
)
from ltvcast.data.io import ColumnMap
from ltvcast.data.schemas import CustomerData
from ltvcast.data.validate import load_customer_data
from ltvcast.exceptions import SchemaError

pytestmark = pytest.mark.realdata


def test_cdnow_master(data_dir: Path) -> None:
    data, report = load_cdnow(data_dir)
    tx = data.transactions
    assert len(tx) == 69_659
    assert tx["customer_id"].nunique() == 23_570
    assert tx["amount"].sum() == pytest.approx(2_500_315.63, abs=0.01)
    assert tx["quantity"].sum() == 167_881
    assert tx["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert tx["timestamp"].max() == pd.Timestamp("1998-06-30")
    assert tx["customer_id"].iloc[0] == "00001"
    assert report.count("transactions", "zero_amounts") == 80
    assert report.count("transactions", "duplicates") == 255  # counted, kept as shipped


def test_cdnow_sample_from_its_own_folder(data_dir: Path) -> None:
    data, _ = load_cdnow(data_dir / "cdnow", "sample")
    assert len(data.transactions) == 6_919
    assert data.transactions["customer_id"].nunique() == 2_357
    assert data.transactions["amount"].sum() == pytest.approx(244_091.94, abs=0.01)


@pytest.fixture(scope="module")
def online_retail(data_dir: Path) -> tuple[CustomerData, CleaningReport, float]:
    t0 = time.perf_counter()
    data, report = load_online_retail(data_dir)
    return data, report, time.perf_counter() - t0


def test_online_retail(online_retail: tuple[CustomerData, CleaningReport, float]) -> None:
    data, report, seconds = online_retail
    assert seconds < 12.0  # 541,909 lines in a few seconds (about 2.5 s on an idle 2-core box)
    assert report.count("transactions", "source") == 541_909
    source = report.to_frame().set_index("step").loc["source", "detail"]
    assert "4,372 customer ids, 135,080 rows without one" in source
    assert report.count("transactions", "invalid_customer_id") == 135_080
    tx = data.transactions
    assert tx["customer_id"].nunique() == 4_372
    assert tx["timestamp"].min() == pd.Timestamp("2010-12-01 08:26")  # winter: London = UTC
    assert tx["timestamp"].max() == pd.Timestamp("2011-12-09 12:50")
    assert not tx["item_id"].isin(RETAIL_NON_PURCHASE_CODES).any()
    cancelled = tx["order_id"].str.startswith("C")
    assert (tx.loc[cancelled, "amount"] < 0).all()
    assert report.count("transactions", "returns") >= cancelled.sum()
    assert data.profiles is not None and len(data.profiles) == 4_372
    assert data.profiles.set_index("customer_id").loc["17850", "Country"] == "United Kingdom"


def test_online_retail_total_matches_readme(
    data_dir: Path, online_retail: tuple[CustomerData, CleaningReport, float]
) -> None:
    """The net total is the README's £8,300,065.81 over rows with a CustomerID, less the
    fee/commission lines and the exact duplicate lines (equal in all 8 columns) the loader drops
    (computed here from the raw file), and summer times are shifted from London time to UTC."""
    data, report, _ = online_retail
    raw = pd.read_csv(data_dir / "online_retail" / "online_retail.csv.gz", dtype={"StockCode": str})
    assert raw.duplicated().sum() == 5_268  # the README's count, over all rows
    raw = raw[raw["CustomerID"].notna()]
    twins_all = raw.duplicated()
    raw["line"] = raw["Quantity"] * raw["UnitPrice"]
    fees = raw["StockCode"].isin(RETAIL_NON_PURCHASE_CODES)
    kept = raw[~fees]
    twins = twins_all[~fees]
    # 2 line pairs of one invoice agree in every column but Description: not duplicates
    assert twins.sum() == report.count("transactions", "duplicates") == 5_225
    expected = 8_300_065.81 - raw.loc[fees, "line"].sum() - kept.loc[twins, "line"].sum()
    assert data.transactions["amount"].sum() == pytest.approx(expected, abs=0.05)
    first = raw[raw["InvoiceNo"] == "558638"]["InvoiceDate"].iloc[0]  # 2011-07-01, BST
    got = data.transactions.loc[data.transactions["order_id"] == "558638", "timestamp"].iloc[0]
    assert got == pd.Timestamp(first) - pd.Timedelta(hours=1)


@pytest.mark.parametrize("item", [None, "StockCode"])
def test_online_retail_cli_mapping_keeps_the_loaders_rows(
    data_dir: Path, online_retail: tuple[CustomerData, CleaningReport, float], item: str | None
) -> None:
    """The CLI mapping (--customer-col CustomerID --time-col InvoiceDate --quantity-col Quantity
    --price-col UnitPrice --order-col InvoiceNo [--item-col StockCode] --timezone Europe/London),
    read from the file, gives the loader's rows plus the fee/commission lines the loader drops
    as not customer spend: duplicates are exact duplicates of the source line, so different
    products of one invoice are never merged, with or without an item column."""
    loaded, _, _ = online_retail
    path = data_dir / "online_retail" / "online_retail.csv.gz"
    columns = ColumnMap(
        customer="CustomerID",
        time="InvoiceDate",
        quantity="Quantity",
        price="UnitPrice",
        order="InvoiceNo",
        item=item,
    )
    data, report = load_customer_data(
        path, columns=columns, options=CleaningOptions(source_timezone="Europe/London")
    )
    tx = data.transactions
    assert (item is None) == ("item_id" not in tx.columns)
    # README: £8,300,065.81 over the 406,829 lines with a CustomerID; the 5,225 of them that
    # repeat an earlier line in every column hold £21,546.39 (was 151,429 lines, £2.2 M, when
    # duplicates were judged on the mapped columns alone)
    raw = pd.read_csv(path, dtype={"StockCode": str, "InvoiceNo": str, "CustomerID": str})
    with_id = raw[raw["CustomerID"].notna()]
    lines = with_id["Quantity"] * with_id["UnitPrice"]
    twins = with_id.duplicated().to_numpy()
    assert len(with_id) == 406_829 and lines.sum() == pytest.approx(8_300_065.81, abs=0.05)
    assert report.count("transactions", "duplicates") == int(twins.sum()) == 5_225
    assert len(tx) == 406_829 - 5_225 == 401_604
    assert tx["amount"].sum() == pytest.approx(lines[~twins].sum(), abs=0.05)
    assert tx["amount"].sum() == pytest.approx(8_278_519.42, abs=0.05)
    expected = loaded.transactions
    fee_lines = raw[raw["StockCode"].isin(RETAIL_NON_PURCHASE_CODES) & raw["CustomerID"].notna()]
    fees = float((fee_lines["Quantity"] * fee_lines["UnitPrice"]).sum())
    assert len(tx) == len(expected) + len(fee_lines)
    assert tx["amount"].sum() == pytest.approx(expected["amount"].sum() + fees, abs=0.05)
    if item is not None:  # same rows, in the same order, once the fee lines are set aside
        fee = tx["item_id"].isin(RETAIL_NON_PURCHASE_CODES).to_numpy()
        assert int(fee.sum()) == len(fee_lines)
        pd.testing.assert_frame_equal(
            tx[~fee].reset_index(drop=True), expected, check_exact=False, check_dtype=False
        )


def test_shapees(data_dir: Path) -> None:
    data, report = load_shapees(data_dir)
    assert report.count("events", "source") == 16_008
    assert report.count("events", "excluded_users") == 9_116
    assert data.events is not None
    assert (data.events["event_type"] == "purchase").sum() == 98
    assert data.events.loc[data.events["event_type"] == "purchase", "customer_id"].nunique() == 36
    assert {"view", "cart", "checkout", "purchase", "page"} <= set(data.events["event_type"])
    tx = data.transactions
    assert len(tx) == 43 and tx["customer_id"].nunique() == 30
    assert tx["amount"].sum() == pytest.approx(2_967.70, abs=0.01)
    assert report.count("transactions", "orders_without_value") == 55


def test_completejourney(data_dir: Path) -> None:
    data, report = load_completejourney(data_dir)
    tx = data.transactions
    assert len(tx) == 1_469_307
    assert tx["customer_id"].nunique() == 2_469
    assert tx["amount"].sum() == pytest.approx(4_596_039.58, abs=0.05)
    assert tx["timestamp"].min() == pd.Timestamp("2017-01-01 11:53:26")
    assert report.count("transactions", "zero_amounts") == 11_226
    assert data.profiles is not None and len(data.profiles) == 801
    assert data.profiles["age"].dtype == "str"
    events = data.events
    assert events is not None
    assert events.loc[events["event_type"] == "campaign", "customer_id"].nunique() == 1_559
    redeemers = events.loc[events["event_type"] == "coupon_redemption", "customer_id"]
    assert redeemers.nunique() == 410


def test_rees46_head(data_dir: Path) -> None:
    data, report = load_rees46_head(data_dir)
    assert report.count("events", "read") == 17_434
    assert data.events is not None and data.events["customer_id"].nunique() == 4_504
    assert set(data.events["event_type"]) == {"view", "cart", "purchase"}
    tx = data.transactions
    assert len(tx) == 214 and tx["customer_id"].nunique() == 193
    assert tx["amount"].sum() == pytest.approx(59_442.63, abs=0.01)
    assert tx["timestamp"].max() <= pd.Timestamp("2019-10-01 02:50")


def test_taobao_head(data_dir: Path) -> None:
    data, report = load_taobao_head(data_dir)
    events = data.events
    assert events is not None and events["customer_id"].nunique() == 43
    counts = events["event_type"].value_counts()
    assert counts["view"] + counts["cart"] + counts["fav"] + counts["purchase"] == 4_320
    assert report.count("events", "outside_window") == 1
    assert report.count("events", "event_type_aliases") == 3_926 + 77
    assert data.transactions.empty
    assert list(data.transactions.columns) == ["customer_id", "timestamp", "amount"]


def test_grocery(data_dir: Path) -> None:
    """The README's counts; no amounts, so every purchase counts 1 (the dates-only step)."""
    data, report = load_grocery(data_dir)
    tx = data.transactions
    assert len(tx) == 10_483 and tx["customer_id"].nunique() == 1_525
    assert (tx["amount"] == 1.0).all()
    assert str(tx["timestamp"].min().date()) == "2006-01-01"
    assert str(tx["timestamp"].max().date()) == "2007-12-30"
    assert report.count("transactions", "dates_only") == 10_483
    assert load_dataset_dir(data_dir / "grocery_btydplus")[0] == "grocery"


def test_dataset_dir_recognises_shared_folders(data_dir: Path) -> None:
    name, data, _ = load_dataset_dir(data_dir / "cdnow")
    assert name == "cdnow" and len(data.transactions) == 69_659
    name, _, _ = load_dataset_dir(data_dir / "shapees_events")
    assert name == "shapees"
    assert set(DATASETS) == {
        "cdnow",
        "cdnow_sample",
        "online_retail",
        "shapees",
        "completejourney",
        "grocery",
        "rees46_head",
        "taobao_head",
    }


def test_dataset_dir_generic_folder(tmp_path: Path) -> None:
    pd.DataFrame(
        {"customer_id": [1, 2], "timestamp": ["2024-01-01", "2024-01-02"], "amount": [1.0, 2.0]}
    ).to_csv(tmp_path / "transactions.csv", index=False)
    pd.DataFrame(
        {"customer_id": ["1"], "timestamp": ["2024-01-01"], "event_type": ["view"]}
    ).to_parquet(tmp_path / "events.parquet")
    name, data, report = load_dataset_dir(tmp_path)
    assert name == tmp_path.name
    assert data.transactions["customer_id"].tolist() == ["1", "2"]
    assert data.events is not None and len(data.events) == 1 and data.profiles is None
    assert report.count("events", "result") == 1
    options = CleaningOptions(now=pd.Timestamp("2023-12-31"))  # the caller's clock
    _, data, report = load_dataset_dir(tmp_path, options)
    assert data.transactions["customer_id"].tolist() == ["1"]
    assert report.count("transactions", "future_timestamp") == 1


def test_dataset_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no transactions file"):
        load_dataset_dir(tmp_path)
    with pytest.raises(SchemaError, match="not a folder"):
        load_dataset_dir(tmp_path / "nope")
    with pytest.raises(SchemaError, match=r"CDNOW_master\.txt not found"):
        load_cdnow(tmp_path)
