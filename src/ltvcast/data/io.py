"""Reading input tables (CSV, CSV.gz, TSV, whitespace text, Parquet) and mapping column names.

Delimited text is read with pandas' C parser; columns named in ``text_columns`` (ids, times) are
kept as strings exactly as written (so ``"00042"`` stays ``"00042"``), the others get pandas'
usual type inference. Parsing and checking values is :mod:`ltvcast.data.validate`'s job.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

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
        The file is missing, empty, of an unknown kind or unreadable; the message names it.
    """
    path = Path(path)
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
    try:
        frame = _read(path, SUPPORTED_SUFFIXES[suffix], text_columns)
    except pd.errors.EmptyDataError as err:
        raise SchemaError(f"{path}: file is empty") from err
    except (ValueError, OSError, EOFError, ImportError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SchemaError(f"{path}: cannot read the file ({first})") from err
    if frame.shape[1] == 0 or len(frame) == 0:
        raise SchemaError(f"{path}: file has no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read(path: Path, sep: str | None, text_columns: Collection[str]) -> pd.DataFrame:
    if sep is None:
        return pd.read_parquet(path)
    dtype = dict.fromkeys(text_columns, str)
    try:
        return pd.read_csv(path, sep=sep, dtype=dtype, low_memory=False)
    except UnicodeDecodeError:
        # Legacy exports (Excel, Windows tools) are often Latin-1; every byte decodes in it.
        return pd.read_csv(path, sep=sep, dtype=dtype, low_memory=False, encoding="latin-1")


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
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(path)
    if target.suffix not in (".parquet", ".csv", ".gz"):
        raise ConfigError(f"{target}: output must end in .csv, .csv.gz or .parquet")
    target.parent.mkdir(parents=True, exist_ok=True)
    chunks = [frame] if isinstance(frame, pd.DataFrame) else frame
    columns: list[object] = []
    written = 0
    writer: pq.ParquetWriter | None = None
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
                chunk.to_csv(
                    target,
                    mode="w" if first else "a",
                    header=first,
                    index=False,
                    float_format=float_format,
                )
            written += 1
            del chunk  # hold no chunk while the next one is made
    finally:
        if writer is not None:
            writer.close()
    if not written:
        raise ConfigError(f"{target}: no table to write (no chunks)")
    return target
