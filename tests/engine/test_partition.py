"""Splitting an input by customer: rows as pandas reads them, each customer in one bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ltvcast.data.io import read_table
from ltvcast.engine.jobs import NUMERIC_DATE
from ltvcast.engine.partition import (
    Source,
    distinct_values,
    read_bucket,
    read_source,
    split_table,
)
from ltvcast.engine.plan import count_rows
from ltvcast.exceptions import SchemaError


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(config={"threads": 2}) as connection:
        yield connection


def _buckets(con: duckdb.DuckDBPyConnection, path: Path, tmp: Path, n: int) -> list[pd.DataFrame]:
    split = split_table(con, Source.of(con, path), "customer_id", n, tmp / "buckets")
    return [read_bucket(files) for files in split.files]


IDS = ["C1", " C1", "C1 ", "42", "42.0", "42.00", "7", "x y", "NA", "", "C2"]


def test_a_customer_written_several_ways_lands_in_one_bucket(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "tx.csv"
    rows = [f'"{c}",2024-01-{i % 28 + 1:02d},{i}' for i, c in enumerate(IDS * 20)]
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    buckets = _buckets(con, path, tmp_path, 7)
    where = {}
    for number, bucket in enumerate(buckets):
        for raw in bucket["customer_id"].dropna():
            key = raw.strip().removesuffix(".00").removesuffix(".0")
            assert where.setdefault(key, number) == number
    assert {"C1", "42", "7", "x y", "C2"} == set(where)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tx.csv", 'customer_id,timestamp,amount,note\n a ,2024-01-01,1.50,"x, y"\nb,NA,,null\n'),
        ("tx.tsv", "customer_id\ttimestamp\tamount\na\t2024-01-01\t1.5\nb\tN/A\t2\n"),
        ("tx.txt", " customer_id  timestamp amount\n\n  a 20240101   1.5\n b  nan 2 \n"),
    ],
)
def test_buckets_hold_the_rows_as_pandas_reads_text(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, name: str, text: str
) -> None:
    """Every column as text, pandas' missing-value words missing, rows numbered as in the
    file (index = data row - 1)."""
    path = tmp_path / name
    path.write_text(text)
    rows = pd.concat(_buckets(con, path, tmp_path, 3)).sort_index()
    expected = read_table(path, text_columns=list(rows.columns))
    assert list(rows.columns) == list(expected.columns)
    assert rows.index.tolist() == expected.index.tolist()
    for column in rows.columns:
        assert rows[column].isna().tolist() == expected[column].isna().tolist()
        got, want = rows[column].dropna(), expected[column].dropna()
        assert got.tolist() == want.astype(str).tolist()


def test_parquet_keeps_its_types_and_row_numbers(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "tx.parquet"
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i % 13}" for i in range(100)],
            "timestamp": pd.date_range("2024-01-01", periods=100, freq="h"),
            "amount": [float(i) for i in range(100)],
        }
    )
    frame.to_parquet(path)
    rows = pd.concat(_buckets(con, path, tmp_path, 4)).sort_index()
    pd.testing.assert_frame_equal(rows, frame, check_dtype=False, check_index_type=False)
    assert rows["amount"].dtype == "float64"
    assert count_rows(path) == 100


def test_wide_whitespace_rows_are_refused(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "tx.txt"
    path.write_text("customer_id timestamp amount\na 20240101 1\nb 20240102 2 extra\n")
    with pytest.raises(SchemaError, match="more fields than the header names \\(row 2\\)"):
        Source.of(con, path)


def test_text_rows_are_estimated(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\n" + "a,2024-01-01,1.5\n" * 5000)
    assert 4000 < count_rows(path) < 6000


def test_text_that_is_not_utf8_is_read_as_latin1(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """As pandas reads a legacy export (the first read, as UTF-8, fails on the bytes)."""
    path = tmp_path / "tx.csv"
    path.write_bytes(b"customer_id,timestamp,amount\nab\xe9,2024-01-01,1\nb,2024-01-02,2\n")

    def split(source: Source) -> list[pd.DataFrame]:
        into = tmp_path / ("utf8" if source.utf8 else "latin1")
        return [read_bucket(f) for f in split_table(con, source, "customer_id", 2, into).files]

    rows = pd.concat(read_source(con, path, split)).sort_index()
    assert rows["customer_id"].tolist() == read_table(path)["customer_id"].tolist() == ["abé", "b"]


def test_numeric_dates_are_found_after_leading_spaces(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "tx.csv"
    rows = ["2024-01-13", "  13/01/2024", "13/01/2024", "1.2.2024", "\t3/4/2024", "x 1/2/2024"]
    path.write_text(
        "customer_id,timestamp,amount\n" + "".join(f'c{i},"{t}",1\n' for i, t in enumerate(rows))
    )
    split = split_table(con, Source.of(con, path), "customer_id", 2, tmp_path / "buckets")
    found = set(distinct_values(con, split, "timestamp", NUMERIC_DATE))
    # as the trimmed values match: spaces (only) before the date are ignored, values kept
    assert found == {"  13/01/2024", "13/01/2024", "1.2.2024"}
