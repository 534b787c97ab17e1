"""read_table: every supported format, text columns, and the errors for unusable files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.io import ColumnMap, read_table, table_suffix
from ltvcast.exceptions import ConfigError, SchemaError

ROWS = "customer_id,timestamp,amount\n00042,2024-01-01,10.5\n7,2024-01-02,3\n"


def _expected() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["00042", "7"],
            "timestamp": ["2024-01-01", "2024-01-02"],
            "amount": [10.5, 3.0],
        }
    )


def test_csv_keeps_text_columns_as_written(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(ROWS)
    frame = read_table(path, text_columns=["customer_id", "timestamp", "not_there"])
    pd.testing.assert_frame_equal(frame, _expected(), check_dtype=False)
    assert frame["customer_id"].tolist() == ["00042", "7"]


def test_csv_without_text_columns_infers_numbers(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(ROWS)
    assert read_table(path)["customer_id"].tolist() == [42, 7]


@pytest.mark.parametrize("suffix", [".csv.gz", ".tsv", ".txt", ".parquet", ".CSV"])
def test_other_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"tx{suffix}"
    frame = _expected()
    if suffix == ".csv.gz":
        with gzip.open(path, "wt") as fh:
            fh.write(ROWS)
    elif suffix == ".tsv":
        path.write_text(ROWS.replace(",", "\t"))
    elif suffix == ".txt":
        path.write_text(ROWS.replace(",", "   "))
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text(ROWS)
    got = read_table(path, text_columns=["customer_id", "timestamp"])
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)


def test_latin1_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_bytes("customer_id,city\n1,Düsseldorf\n".encode("latin-1"))
    assert read_table(path)["city"].tolist() == ["Düsseldorf"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "file not found"),
        ("empty.csv", b"", "file is empty"),
        ("header.csv", b"customer_id,timestamp,amount\n", "no data rows"),
        ("blank.csv", b"\n\n", "file is empty"),
        ("data.xlsx", b"x", "unknown file type"),
        ("bad.parquet", b"not parquet at all", "cannot read"),
        ("bad.csv.gz", b"not gzip", "cannot read"),
    ],
)
def test_unusable_files_name_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SchemaError, match=message) as err:
        read_table(path)
    assert name in str(err.value)


def test_directory_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not a file"):
        read_table(tmp_path)


def test_table_suffix() -> None:
    assert table_suffix(Path("a/b.CSV.GZ")) == ".csv.gz"
    assert table_suffix(Path("x.tsv")) == ".tsv"
    assert table_suffix(Path("x.json")) == ""


def test_column_map_names_and_flags() -> None:
    columns = ColumnMap(customer="CustomerID", price="UnitPrice")
    assert columns.source("customer") == "CustomerID"
    assert columns.source("time") == "timestamp"
    assert columns.source("price") == "UnitPrice"
    assert columns.flag("customer") == "--customer-col"
    assert columns.id_columns() == ("CustomerID", "timestamp", "order_id", "item_id")
    with pytest.raises(ConfigError):
        ColumnMap(amount=" ")
