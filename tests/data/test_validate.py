"""Table validators and load_customer_data: canonical columns, mappings, events, profiles, files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data import ids, times, validate
from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.validate import (
    load_customer_data,
    validate_events,
    validate_profiles,
    validate_transactions,
)
from ltvcast.exceptions import SchemaError


def test_canonical_dtypes_and_order(raw_tx: Callable[..., pd.DataFrame]) -> None:
    frame = raw_tx(customer_id=[2.0, 10.0, 1.0, 2.0], amount=["1", "2.5", "3", "4"])
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", report=report)
    assert list(out.columns) == ["customer_id", "timestamp", "amount"]
    assert out["customer_id"].dtype == "str"
    assert out["timestamp"].dtype == "datetime64[us]"
    assert out["amount"].dtype == "float64"
    # numeric ids lose ".0"; rows sorted by customer then time
    assert out["customer_id"].tolist() == ["1", "10", "2", "2"]
    assert out["amount"].tolist() == [3.0, 2.5, 1.0, 4.0]
    assert report.count("transactions", "read") == 4
    assert report.count("transactions", "result") == 4


def test_column_mapping_and_optional_columns() -> None:
    frame = pd.DataFrame(
        {
            "Cust": [1, 2],
            "When": ["2024-01-01 10:00", "2024-01-02 11:00"],
            "Spend": [5, 6],
            "Invoice": [100, 101],
            "Qty": ["2", "x"],
            "Sku": ["A1", "B2"],
            "note": ["dropped", "dropped"],
        }
    )
    columns = ColumnMap(
        customer="Cust", time="When", amount="Spend", order="Invoice", quantity="Qty", item="Sku"
    )
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", columns, report=report)
    assert list(out.columns) == [
        "customer_id",
        "timestamp",
        "amount",
        "order_id",
        "quantity",
        "item_id",
    ]
    assert out["order_id"].tolist() == ["100", "101"]
    assert out["quantity"].iloc[0] == 2.0 and np.isnan(out["quantity"].iloc[1])
    assert report.count("transactions", "invalid_quantity") == 1


def test_events_types_values_and_rules() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b", "c", "c"],
            "timestamp": ["2024-01-01"] * 6,
            "event_type": [" View ", "PV", "Add-To-Cart", "wishlist", None, "purchase"],
            "value": ["1.5", "x", None, "2", "3", "4"],
        }
    )
    report = CleaningReport()
    out = validate_events(frame, "ev.csv", report=report)
    assert out["event_type"].tolist() == ["view", "view", "cart", "wishlist", "purchase"]
    assert out["value"].dtype == "float64"
    assert report.count("events", "invalid_event_type") == 1
    assert report.count("events", "invalid_value") == 1
    assert report.count("events", "event_type_aliases") == 2
    assert report.count("events", "unknown_event_types") == 1

    dropped = CleaningReport()
    options = CleaningOptions(unknown_event_types="drop")
    out = validate_events(frame, "ev.csv", options=options, report=dropped)
    assert "wishlist" not in out["event_type"].tolist()
    assert "dropped: wishlist (1)" in " ".join(dropped.lines())


def test_events_missing_event_column() -> None:
    frame = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "kind": ["view"]})
    with pytest.raises(SchemaError, match=r"'event_type' not found.*'kind'.*--event-col"):
        validate_events(frame, "ev.csv")
    out = validate_events(frame, "ev.csv", ColumnMap(event="kind"))
    assert out["event_type"].tolist() == ["view"]


def test_profiles_one_row_per_customer_types_kept() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 1, None],
            "age": ["30", "41", "31", "50"],
            "city": ["Paris", "Lyon", "Nice", "Rome"],
            "size": ["1", "5+", "2", "3"],
            "score": [0.5, None, 1, 2],
        }
    )
    report = CleaningReport()
    out = validate_profiles(frame, "profiles.csv", report=report)
    assert out["customer_id"].tolist() == ["1", "2"]
    assert out.loc[0, "age"] == 31.0 and out["age"].dtype == "float64"  # last row wins
    assert out["city"].tolist() == ["Nice", "Lyon"] and out["city"].dtype == "str"
    assert out["size"].tolist() == ["2", "5+"]
    assert out["score"].dtype == "float64"
    assert report.count("profiles", "duplicate_customers") == 1
    assert report.count("profiles", "invalid_customer_id") == 1


def test_load_customer_data_from_files(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(
        "cust,when,spend\n"
        "007,2024-01-01 10:00,10\n"
        ",2024-01-02 10:00,5\n"
        "008,2024-01-03 10:00,abc\n"
        "007,2024-02-01 10:00,-4\n"
    )
    (tmp_path / "ev.csv").write_text("cust,when,event_type\n007,2024-01-01 09:00,view\n")
    (tmp_path / "pr.csv").write_text("cust,channel\n007,web\n009,store\n")
    columns = ColumnMap(customer="cust", time="when", amount="spend")
    data, report = load_customer_data(
        tmp_path / "tx.csv", tmp_path / "ev.csv", tmp_path / "pr.csv", columns=columns
    )
    assert data.transactions["customer_id"].tolist() == ["007", "007"]
    assert data.transactions["amount"].tolist() == [10.0, -4.0]
    assert data.events is not None and data.events["customer_id"].tolist() == ["007"]
    assert data.profiles is not None and data.profiles["channel"].tolist() == ["web", "store"]
    text = "\n".join(report.lines())
    assert (
        f"{tmp_path / 'tx.csv'}: column 'cust' (customer_id) must hold an id; 1 of 4 rows" in text
    )
    assert "(rows 2)" in text and "(rows 3)" in text
    assert report.count("transactions", "returns") == 1


def test_load_customer_data_all_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\na,never,1\nb,later,2\n")
    with pytest.raises(SchemaError) as err:
        load_customer_data(path)
    assert str(err.value) == (
        f"{path}: column 'timestamp' must be a date/time; 2 of 2 rows are not (rows 1, 2)"
    )


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_csv_through_load_customer_data(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        f"cust{sep}when{sep}spend\n007{sep}31/01/2024{sep}10.5\n8{sep}02/01/2024{sep}3\n"
    )
    data, _ = load_customer_data(
        path, columns=ColumnMap(customer="cust", time="when", amount="spend")
    )
    tx = data.transactions
    assert tx["customer_id"].tolist() == ["007", "8"]
    assert tx["timestamp"].tolist() == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-01-02")]


def test_duplicate_amount_column_in_a_file_is_refused(tmp_path: Path) -> None:
    """pandas renamed the second 'amount' to 'amount.1' and the first one was used."""
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount,amount\na,2024-01-01,1,100\n")
    with pytest.raises(SchemaError, match=r"'amount' appears 2 times \(columns 3, 4\)"):
        load_customer_data(path)


def test_names_that_moved_stay_importable_from_validate() -> None:
    """``as_ids``, ``parse_timestamps`` and the time constants live in :mod:`ltvcast.data.ids`
    and :mod:`ltvcast.data.times`; this module keeps them in its API."""
    assert validate.__all__ == sorted(validate.__all__)
    assert all(hasattr(validate, name) for name in validate.__all__)
    assert validate.as_ids is ids.as_ids
    assert validate.parse_timestamps is times.parse_timestamps
    assert validate.EPOCH_FLOOR_SECONDS == times.EPOCH_FLOOR_SECONDS
    assert validate.TIMESTAMP_DTYPE == times.TIMESTAMP_DTYPE
