"""Reading input tables (CSV, CSV.gz, TSV, whitespace text, Parquet) and mapping column names.

Delimited text is read with pandas' C parser; columns named in ``text_columns`` (ids, times) are
kept as strings exactly as written (so ``"00042"`` stays ``"00042"``), the others get pandas'
usual type inference. Before pandas sees a text file, its first bytes are sniffed: encoding
(byte-order marks, NUL bytes), delimiter (from the header line) and header size and names, so
a file pandas would misread, or take minutes over, is refused in one line that says what was
found. Parsing and checking values is :mod:`ltvcast.data.validate`'s job.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import re
import warnings
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from ltvcast.data.schemas import (
    AMOUNT,
    CUSTOMER_ID,
    EVENT_TYPE,
    ITEM_ID,
    ORDER_ID,
    QUANTITY,
    TIMESTAMP,
    VALUE,
)
from ltvcast.exceptions import ConfigError, SchemaError

#: ColumnMap field -> canonical column it names (``price`` has no canonical column).
CANONICAL_OF = {
    "customer": CUSTOMER_ID,
    "time": TIMESTAMP,
    "amount": AMOUNT,
    "event": EVENT_TYPE,
    "order": ORDER_ID,
    "quantity": QUANTITY,
    "price": "price",
    "item": ITEM_ID,
    "value": VALUE,
}

#: Widest header :func:`read_table` reads: columns, and characters of the header line. Wider
#: inputs are refused before pandas parses them (pandas renames repeated names in quadratic time).
MAX_COLUMNS = 4096
MAX_HEADER_CHARS = 262_144
#: Byte-order marks and their codecs (UTF-32 before UTF-16: it starts with the same bytes).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (codecs.BOM_UTF8, "utf-8-sig"),
)
#: Delimiters a ``.csv`` / ``.tsv`` header is sniffed for, and their names in messages.
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

#: File suffixes :func:`read_table` understands, and how it reads them.
SUPPORTED_SUFFIXES = {
    ".csv": ",",
    ".csv.gz": ",",
    ".tsv": "\t",
    ".tsv.gz": "\t",
    ".txt": r"\s+",
    ".txt.gz": r"\s+",
    ".parquet": None,
    ".pq": None,
}


@dataclass(frozen=True)
class ColumnMap:
    """User column names for the canonical columns; ``None`` means the canonical name itself.

    ``price`` names a unit-price column: when it is set and the table has no amount column,
    the amount is ``quantity * price``.
    """

    customer: str | None = None
    time: str | None = None
    amount: str | None = None
    event: str | None = None
    order: str | None = None
    quantity: str | None = None
    price: str | None = None
    item: str | None = None
    value: str | None = None

    def source(self, field: str) -> str:
        """The input column name for ``field`` (a field name of this class)."""
        name: str | None = getattr(self, field)
        return CANONICAL_OF[field] if name is None else name

    def flag(self, field: str) -> str:
        """The CLI flag that sets ``field``, e.g. ``--customer-col``."""
        return f"--{field}-col"

    def id_columns(self) -> tuple[str, ...]:
        """Input names of the columns best read as text (ids and times)."""
        return tuple(self.source(f) for f in ("customer", "time", "order", "item"))

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not str(value).strip():
                raise ConfigError(f"column mapping '{f.name}' must not be empty")


def table_suffix(path: Path) -> str:
    """The recognised suffix of ``path`` (``.csv.gz`` counts as one), lower-cased, or ``""``."""
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return ""


def read_table(path: str | Path, *, text_columns: Collection[str] = ()) -> pd.DataFrame:
    """Read one input table.

    Delimited text is checked before pandas reads it: a UTF-16/UTF-32 byte-order mark selects
    that encoding (NUL bytes without one are refused); the header line may hold at most
    :data:`MAX_COLUMNS` columns and :data:`MAX_HEADER_CHARS` characters; a ``.csv`` whose header
    has no comma but one other delimiter (``;``, tab, ``|``) is read with that one (likewise a
    ``.tsv`` without tabs); column names must be unique.

    Parameters
    ----------
    path
        A ``.csv``, ``.csv.gz``, ``.tsv``, ``.txt`` (whitespace separated, header line) or
        ``.parquet`` file.
    text_columns
        Columns of delimited text files to keep as strings exactly as written (ids, times);
        names the file lacks are ignored. Parquet keeps its own types.

    Returns
    -------
    pandas.DataFrame
        The rows in file order (row ``i`` of the frame is data row ``i + 1`` of the file).

    Raises
    ------
    SchemaError
        The file is missing, empty, of an unknown kind, unreadable, in an unsupported encoding,
        with an ambiguous delimiter, an oversized header or repeated column names; the message
        names it and what was detected.
    """
    path = Path(path)
    sep = SUPPORTED_SUFFIXES[check_table_file(path)]
    layout = None
    try:
        if sep is None:
            frame = pd.read_parquet(path)
        else:
            layout = sniff_text(path, sep)
            frame = _read_text(path, layout, text_columns)
    except SchemaError:
        raise
    except pd.errors.EmptyDataError as err:
        raise SchemaError(f"{path}: file is empty") from err
    except (ValueError, OSError, EOFError, ImportError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        how = "" if layout is None else f" as {layout.describe()}"
        raise SchemaError(f"{path}: cannot read the file{how} ({first})") from err
    if frame.shape[1] == 0 or len(frame) == 0:
        raise SchemaError(f"{path}: file has no data rows")
    names = [str(c).strip() for c in frame.columns]
    _check_names(path, names)
    frame.columns = names
    return frame


def check_table_file(path: Path) -> str:
    """The suffix of an input table file (see :data:`SUPPORTED_SUFFIXES`), once it is known
    to be a non-empty file of a kind :func:`read_table` reads.

    Raises
    ------
    SchemaError
        The file is missing, not a file, of an unknown kind or empty.
    """
    if not path.exists():
        raise SchemaError(f"{path}: file not found")
    if not path.is_file():
        raise SchemaError(f"{path}: not a file")
    suffix = table_suffix(path)
    if not suffix:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise SchemaError(f"{path}: unknown file type; expected one of {kinds}")
    if path.stat().st_size == 0:
        raise SchemaError(f"{path}: file is empty")
    return suffix


@dataclass(frozen=True)
class TextLayout:
    """How a delimited text file is read: separator and encoding (``None``: UTF-8, or Latin-1
    when the file is not UTF-8)."""

    sep: str
    encoding: str | None

    def describe(self) -> str:
        name = _DELIMITERS.get(self.sep, "whitespace")
        return f"{name}-separated {self.encoding or 'UTF-8'} text"


def sniff_text(path: Path, sep: str) -> TextLayout:
    """Encoding and delimiter of a delimited text file (``sep`` its suffix's, see
    :data:`SUPPORTED_SUFFIXES`) from its first bytes; refuses what :func:`read_table` refuses
    before reading (see there)."""
    limit = 4 * MAX_HEADER_CHARS + 8  # UTF-32 takes 4 bytes a character
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(limit)
    encoding = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    if encoding is None and b"\x00" in head:
        raise SchemaError(
            f"{path}: wrong encoding: NUL bytes in the first {len(head):,} bytes and no "
            "byte-order mark (UTF-16 or UTF-32 without a BOM, or not a text file); "
            "save it as UTF-8 text"
        )
    try:  # not final: the read may end inside a character
        text = codecs.getincrementaldecoder(encoding or "utf-8")().decode(head)
    except UnicodeDecodeError:
        if encoding is not None:
            raise
        text = head.decode("latin-1")  # as pandas will read it
    text = text.lstrip("\ufeff").lstrip("\r\n")
    end = min((i for i in (text.find("\n"), text.find("\r")) if i >= 0), default=-1)
    line = text if end < 0 else text[:end]
    if len(line) > MAX_HEADER_CHARS or (end < 0 and len(head) == limit):
        raise SchemaError(
            f"{path}: header line is longer than {MAX_HEADER_CHARS:,} characters (the limit "
            "for column names); is this a table with one header line?"
        )
    if sep != r"\s+":
        sep = _delimiter(path, line, sep)
    names = _fields(line, sep)
    if names is None:
        raise SchemaError(
            f"{path}: a column name is longer than {csv.field_size_limit():,} characters"
        )
    _check_names(path, [n.strip() for n in names])
    rest = "" if end < 0 else text[end:].lstrip("\r\n")
    row = rest[: min((i for i in (rest.find("\n"), rest.find("\r")) if i >= 0), default=None)]
    values = (_fields(row, sep) if row.strip() else None) or []  # unknown: pandas checks
    if len(values) > len(names) and values[len(names) :] != [""]:  # one trailing "," is fine
        raise SchemaError(
            f"{path}: data row 1 has {len(values):,} fields but the header names "
            f"{len(names):,} columns (a delimiter inside an unquoted value, or a header name "
            "missing?)"
        )
    return TextLayout(sep, encoding)


def _fields(line: str, sep: str) -> list[str] | None:
    """The fields of one line (quotes honoured for delimited text); ``None`` when a field is
    longer than the csv module reads."""
    if sep == r"\s+":
        return line.split()
    try:
        return next(csv.reader([line], delimiter=sep), [])
    except csv.Error:
        return None


def _delimiter(path: Path, header: str, expected: str) -> str:
    """``expected`` when the header holds it, else the one other delimiter it holds."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    if expected in unquoted:
        return expected
    found = {d: unquoted.count(d) for d in _DELIMITERS if d != expected and d in unquoted}
    if len(found) > 1:
        counts = " and ".join(f"{n} {_DELIMITERS[d]}s" for d, n in found.items())
        raise SchemaError(
            f"{path}: wrong delimiter: the header line has no {_DELIMITERS[expected]} but "
            f"{counts}; cannot tell which one separates the columns"
        )
    return next(iter(found), expected)


def _check_names(path: Path, names: list[str]) -> None:
    """Refuse repeated column names (blank ones, which pandas numbers, excepted)."""
    if len(names) > MAX_COLUMNS:
        raise SchemaError(
            f"{path}: header has {len(names):,} columns; at most {MAX_COLUMNS:,} are read"
        )
    counts = Counter(n for n in names if n)
    repeated = [n for n, k in counts.items() if k > 1]
    if not repeated:
        return
    name = repeated[0]
    where = ", ".join(str(i + 1) for i, n in enumerate(names) if n == name)
    others = f"; {len(repeated) - 1} more names repeat" if len(repeated) > 1 else ""
    raise SchemaError(
        f"{path}: column names must be unique; '{name}' appears {counts[name]} times "
        f"(columns {where}){others}"
    )


def _read_text(path: Path, layout: TextLayout, text_columns: Collection[str]) -> pd.DataFrame:
    # index_col=False: a first row with one field more than the header must not become the
    # index (which shifts every column left); pandas' warning about such rows is an error.
    def read(encoding: str | None = None) -> pd.DataFrame:
        dtype = dict.fromkeys(text_columns, str)
        return pd.read_csv(
            path, sep=layout.sep, dtype=dtype, low_memory=False, index_col=False, encoding=encoding
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            if layout.encoding is not None:
                return read(encoding=layout.encoding)
            try:
                return read()
            except UnicodeDecodeError:
                # Legacy exports (Excel, Windows tools) are often Latin-1; every byte decodes.
                return read(encoding="latin-1")
        except pd.errors.ParserWarning as warning:
            raise SchemaError(
                f"{path}: data rows have more fields than the header names ({warning})"
            ) from warning


def write_table(
    frame: pd.DataFrame | Iterable[pd.DataFrame],
    path: str | Path,
    *,
    float_format: str | None = "%.6g",
) -> Path:
    """Write a table as CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``), by suffix.

    Parameters
    ----------
    frame
        The table, or its chunks (frames with the same columns, e.g. a generator), written
        one at a time so that memory holds one chunk: CSV appended under one header,
        Parquet one row group per chunk (schema of the first chunk).
    float_format
        Format of CSV floats; ``None`` writes each float in full (shortest round trip).
    """
    target = Path(path)
    if target.suffix not in (".parquet", ".csv", ".gz"):
        raise ConfigError(f"{target}: output must end in .csv, .csv.gz or .parquet")
    target.parent.mkdir(parents=True, exist_ok=True)
    chunks = [frame] if isinstance(frame, pd.DataFrame) else frame
    columns: list[object] = []
    written = 0
    writer: pq.ParquetWriter | None = None
    if target.suffix == ".parquet":
        import pyarrow as pa  # only here: a CSV run never loads pyarrow.parquet
        import pyarrow.parquet as pq
    try:
        for chunk in chunks:
            if written and list(chunk.columns) != columns:
                raise ConfigError(
                    f"{target}: chunk {written} has columns {list(chunk.columns)}; "
                    f"chunk 0 has {columns}"
                )
            columns = list(chunk.columns)
            if target.suffix == ".parquet":
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema)
                writer.write_table(table)
                del table
            else:
                first = not written
                _formatted(chunk, float_format).to_csv(
                    target, mode="w" if first else "a", header=first, index=False
                )
            written += 1
            del chunk  # hold no chunk while the next one is made
    finally:
        if writer is not None:
            writer.close()
    if not written:
        raise ConfigError(f"{target}: no table to write (no chunks)")
    return target


def _formatted(frame: pd.DataFrame, float_format: str | None) -> pd.DataFrame:
    """``frame`` with its float columns as text in ``float_format`` (missing values empty),
    as ``to_csv(float_format=...)`` writes them: one list per column is 3 to 4 times faster
    than pandas' formatter, which tests every value for missingness on its own."""
    floats = [i for i, kind in enumerate(frame.dtypes) if kind.kind == "f"]
    if float_format is None or not floats:
        return frame
    out = frame.copy(deep=False)
    for i in floats:
        values = frame.iloc[:, i].to_numpy(dtype=np.float64, na_value=np.nan)
        text = np.array([float_format % v for v in values.tolist()], dtype=object)
        text[np.isnan(values)] = ""
        out.isetitem(i, text)
    return out
