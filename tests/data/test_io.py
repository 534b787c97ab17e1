"""read_table: every supported format, text columns, and the errors for unusable files."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.io import MAX_COLUMNS, MAX_HEADER_CHARS, ColumnMap, read_table, table_suffix
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


@pytest.mark.parametrize(
    ("suffix", "sep"),
    [(".csv", ";"), (".csv", "\t"), (".csv", "|"), (".csv.gz", ";"), (".tsv", ",")],
)
def test_delimiter_is_sniffed_from_the_header(tmp_path: Path, suffix: str, sep: str) -> None:
    path = tmp_path / f"tx{suffix}"
    text = ROWS.replace(",", sep)
    if suffix.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    got = read_table(path, text_columns=["customer_id", "timestamp"])
    pd.testing.assert_frame_equal(got, _expected(), check_dtype=False)


def test_quoted_commas_do_not_count_as_the_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text('"id;x";"when, exactly"\n1;2024-01-01\n')
    assert list(read_table(path).columns) == ["id;x", "when, exactly"]


def test_two_candidate_delimiters_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id;timestamp|amount\n1;2024-01-01|3\n")
    with pytest.raises(SchemaError) as err:
        read_table(path)
    assert str(err.value) == (
        f"{path}: wrong delimiter: the header line has no comma but 1 semicolons and 1 pipes; "
        "cannot tell which one separates the columns"
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_byte_order_marks_select_the_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "tx.csv"
    text = ROWS.replace("amount\n", "amount,city\n").replace("10.5\n", "10.5,Düsseldorf\n")
    text = text.replace(",3\n", ",3,Zürich\n")
    data = text.encode(encoding)
    if encoding == "utf-16-be":  # the plain codec writes no BOM for an explicit byte order
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    got = read_table(path, text_columns=["customer_id", "timestamp"])
    assert list(got.columns) == ["customer_id", "timestamp", "amount", "city"]
    assert got["city"].tolist() == ["Düsseldorf", "Zürich"]
    assert got["customer_id"].tolist() == ["00042", "7"]


def test_nul_bytes_without_a_bom_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_bytes(ROWS.encode("utf-16-le"))
    with pytest.raises(SchemaError, match=r"tx\.csv: wrong encoding: NUL bytes .* no byte-order"):
        read_table(path)


def test_a_tokenizer_error_says_how_the_file_was_read(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\n1,2024-01-01,3\n2,2024-01-02,4,5,6\n")
    with pytest.raises(SchemaError, match=r"cannot read the file as comma-separated UTF-8 text"):
        read_table(path)


@pytest.mark.parametrize("unit", ["amount,", "x,", "c{},"])
def test_a_megabyte_header_is_refused_at_once(tmp_path: Path, unit: str) -> None:
    """A 1 MB single-line file made pandas rename repeated names for minutes; now refused."""
    path = tmp_path / "wide.csv"
    header = "".join(unit.format(i) for i in range(1_000_000 // len(unit)))
    path.write_text(header[:1_000_000] + "\n1\n")
    start = time.perf_counter()
    with pytest.raises(SchemaError, match=r"wide\.csv: header line is longer than 262,144"):
        read_table(path)
    assert time.perf_counter() - start < 2.0


def test_too_many_columns_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)) + "\n" + "1," * 10 + "\n")
    with pytest.raises(SchemaError, match=rf"header has {MAX_COLUMNS + 1:,} columns; at most"):
        read_table(path)


def test_header_without_newline_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "one.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("a" * (MAX_HEADER_CHARS * 5))
    with pytest.raises(SchemaError, match="header line is longer"):
        read_table(path)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("customer_id,timestamp,amount,amount", "'amount' appears 2 times (columns 3, 4)"),
        ("customer_id,amount,timestamp, amount ", "'amount' appears 2 times (columns 2, 4)"),
        ("a,b,a,b,c", "'a' appears 2 times (columns 1, 3); 1 more names repeat"),
    ],
)
def test_repeated_column_names_are_refused(tmp_path: Path, header: str, detail: str) -> None:
    """pandas silently renames a second 'amount' to 'amount.1' and the first one is used."""
    path = tmp_path / "tx.csv"
    path.write_text(header + "\n" + ",".join(["1"] * len(header.split(","))) + "\n")
    with pytest.raises(SchemaError) as err:
        read_table(path)
    assert str(err.value) == f"{path}: column names must be unique; {detail}"


def test_repeated_names_in_whitespace_text_and_parquet(tmp_path: Path) -> None:
    txt = tmp_path / "tx.txt"
    txt.write_text("id  amount amount\n1 2 3\n")
    with pytest.raises(SchemaError, match="'amount' appears 2 times"):
        read_table(txt)
    pq = tmp_path / "tx.parquet"
    pd.DataFrame({"amount": [1.0], " amount": [2.0]}).to_parquet(pq)
    with pytest.raises(SchemaError, match="'amount' appears 2 times"):
        read_table(pq)


def test_blank_header_names_are_numbered_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,amount,,\n1,2,,\n")
    assert read_table(path).columns[:2].tolist() == ["customer_id", "amount"]


def test_trailing_delimiters_do_not_shift_the_columns(tmp_path: Path) -> None:
    """pandas used to take the first column as the index and shift the others left."""
    path = tmp_path / "tx.csv"
    path.write_text(ROWS.replace("\n", ",\n").replace("amount,", "amount"))
    got = read_table(path, text_columns=["customer_id", "timestamp"])
    pd.testing.assert_frame_equal(got, _expected(), check_dtype=False)


def test_a_first_row_wider_than_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\n7,2024-01-01,3,4\n8,2024-01-02,5\n")
    with pytest.raises(SchemaError) as err:
        read_table(path)
    assert str(err.value) == (
        f"{path}: data row 1 has 4 fields but the header names 3 columns (a delimiter inside "
        "an unquoted value, or a header name missing?)"
    )


def test_a_megabyte_data_line_is_refused_at_once(tmp_path: Path) -> None:
    """500,000 fields under a 3-name header took pandas minutes (an implicit 500k-level index)."""
    path = tmp_path / "tx.csv"
    for first in ("", "7,2024-01-01,3\n"):
        path.write_text("customer_id,timestamp,amount\n" + first + "1," * 500_000 + "\n")
        start = time.perf_counter()
        with pytest.raises(SchemaError, match=r"(500,001 fields|Expected 3 fields in line 3)"):
            read_table(path)
        assert time.perf_counter() - start < 2.0


def test_a_first_row_beyond_the_sniffed_bytes_is_still_checked(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("a,b,c\n" + "x" * (4 * MAX_HEADER_CHARS + 100) + ",1,2,3\n")
    with pytest.raises(SchemaError, match="data rows have more fields than the header names"):
        read_table(path)


def test_an_overlong_column_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("a," + "b" * 200_000 + "\n1,2\n")
    with pytest.raises(SchemaError, match="a column name is longer than 131,072 characters"):
        read_table(path)
