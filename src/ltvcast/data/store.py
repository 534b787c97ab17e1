"""An embedded DuckDB store for the canonical tables.

Frames go in and out through DuckDB's pandas scans (Arrow), never row by row. Reads filter in
SQL (``timestamp <= as_of``, a customer list joined as a table), so a model can be scored on a
slice of a large store without loading all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import duckdb
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, TIMESTAMP, CustomerData
from ltvcast.exceptions import SchemaError, StoreError

TABLES = ("transactions", "events", "profiles")
_TIMED = ("transactions", "events")


class Store:
    """Canonical transactions, events and profiles in one DuckDB database.

    Parameters
    ----------
    path
        Database file (created when absent) or ``":memory:"``.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        on_disk = self.path != ":memory:"
        if on_disk:
            _check_database_file(Path(self.path))
        try:
            self._con = duckdb.connect(self.path)
        except duckdb.Error as err:
            reason = str(err).splitlines()[0].split(" See also ")[0]
            raise StoreError(f"{self.path}: cannot open the store ({reason})") from None
        self._identity = _identity(Path(self.path)) if on_disk else None

    def verify(self) -> None:
        """Check that the database file is still the one opened.

        Raises
        ------
        StoreError
            When the file was removed or replaced (rows written now would be lost).
        """
        if self._identity is None:
            return
        if _identity(Path(self.path)) != self._identity:
            raise StoreError(
                f"{self.path}: the store file was removed or replaced while in use; "
                "nothing more can be stored durably (restart the server)"
            )

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The open DuckDB connection (for SQL the store does not wrap)."""
        return self._con

    def reader(self) -> Store:
        """The same store over a second connection (DuckDB cursor), for reads from another
        thread while this one writes."""
        other = Store.__new__(Store)
        other.path, other._identity, other._con = self.path, self._identity, self._con.cursor()
        return other

    def index_customers(self) -> None:
        """Index every stored table on ``customer_id`` (an ART index, kept in the file and
        by later writes; a no-op when there), so that :meth:`read` of one customer is a
        lookup rather than a scan of the table."""
        for name in sorted(self._tables() & set(TABLES)):
            self._con.execute(
                f"CREATE INDEX IF NOT EXISTS {name}_{CUSTOMER_ID} ON {name} ({CUSTOMER_ID})"
            )

    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def replace(self, data: CustomerData) -> None:
        """Write all three tables, replacing what was stored (an absent table is dropped)."""
        frames = {"transactions": data.transactions, "events": data.events}
        frames["profiles"] = data.profiles
        with self._transaction():
            for name, frame in frames.items():
                if frame is None:
                    self._con.execute(f"DROP TABLE IF EXISTS {name}")
                else:
                    self._write(name, frame, "CREATE OR REPLACE TABLE {name} AS SELECT * FROM {df}")

    def append(
        self, transactions: pd.DataFrame | None = None, events: pd.DataFrame | None = None
    ) -> None:
        """Add canonical rows (matched by column name; absent optional columns become null)."""
        with self._transaction():
            for name, frame in (("transactions", transactions), ("events", events)):
                if frame is None or not len(frame):
                    continue
                if name not in self._tables():
                    self._write(name, frame, "CREATE TABLE {name} AS SELECT * FROM {df}")
                    continue
                extra = set(frame.columns) - set(self._columns(name))
                if extra:
                    raise SchemaError(
                        f"{name}: cannot append columns {sorted(extra)} that the stored table "
                        f"lacks (stored: {self._columns(name)})"
                    )
                self._write(name, frame, "INSERT INTO {name} BY NAME SELECT * FROM {df}")

    def read(
        self, as_of: pd.Timestamp | None = None, customers: Sequence[str] | None = None
    ) -> CustomerData:
        """The stored bundle, cut at ``as_of`` (rows with ``timestamp <= as_of``) and optionally
        restricted to ``customers`` (one customer: an index lookup after
        :meth:`index_customers`); rows keep the order they were written in."""
        tables = self._tables()
        if "transactions" not in tables:
            raise SchemaError(f"{self.path}: the store holds no transactions")
        wanted = None
        one = None
        if customers is not None:
            customers = list(customers)
            if len(customers) == 1:
                one = str(customers[0])
            else:
                wanted = pd.DataFrame({CUSTOMER_ID: pd.Series(customers, dtype="str")})
        frames: dict[str, pd.DataFrame | None] = {}
        for name in TABLES:
            if name not in tables:
                frames[name] = None
                continue
            where: list[str] = []
            params: list[object] = []
            if as_of is not None and name in _TIMED:
                where.append(f"{TIMESTAMP} <= ?")
                params.append(pd.Timestamp(as_of).to_pydatetime())
            if one is not None:
                where.append(f"{CUSTOMER_ID} = ?")
                params.append(one)
            if wanted is not None:
                where.append(f"{CUSTOMER_ID} IN (SELECT {CUSTOMER_ID} FROM _wanted)")
            sql = f"SELECT * FROM {name}" + (" WHERE " + " AND ".join(where) if where else "")
            frames[name] = self._query(sql, params, wanted)
        transactions = frames["transactions"]
        assert transactions is not None
        return CustomerData(transactions, frames["events"], frames["profiles"])

    def counts(self) -> dict[str, int]:
        """Rows per table (0 for a table never written)."""
        tables = self._tables()
        out = {}
        for name in TABLES:
            row = (
                self._con.execute(f"SELECT count(*) FROM {name}").fetchone()
                if name in tables
                else None
            )
            out[name] = int(row[0]) if row else 0
        return out

    def _tables(self) -> set[str]:
        rows = self._con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
        return {r[0] for r in rows}

    def _columns(self, name: str) -> list[str]:
        return [r[0] for r in self._con.execute(f"DESCRIBE {name}").fetchall()]

    def _write(self, name: str, frame: pd.DataFrame, template: str) -> None:
        self._con.register("_frame", frame)
        try:
            self._con.execute(template.format(name=name, df="_frame"))
        except duckdb.Error as err:
            raise SchemaError(f"{name}: cannot store the table ({err})") from err
        finally:
            self._con.unregister("_frame")

    def _query(self, sql: str, params: list[object], wanted: pd.DataFrame | None) -> pd.DataFrame:
        if wanted is not None:
            self._con.register("_wanted", wanted)
        try:
            return _canonical(self._con.execute(sql, params).df())
        finally:
            if wanted is not None:
                self._con.unregister("_wanted")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._con)


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``; ``None`` when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


#: A DuckDB database file carries this at bytes 8-11 of its header.
_MAGIC = b"DUCK"


def _check_database_file(path: Path) -> None:
    """Refuse an existing file that is not a DuckDB database, before DuckDB writes to it."""
    if not path.exists():
        return
    if not path.is_file():
        raise StoreError(f"{path}: not a file")
    try:
        with path.open("rb") as handle:
            header = handle.read(12)
    except OSError as err:
        raise StoreError(f"{path}: cannot read the store ({err.strerror})") from None
    if len(header) < 12 or header[8:12] != _MAGIC:
        kind = "empty" if not header else "not a DuckDB database (corrupt or another format)"
        raise StoreError(
            f"{path}: the file is {kind}; left untouched (move it away to start a new store)"
        )


class _Transaction:
    """Commit on success, roll back on error."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __enter__(self) -> None:
        self._con.begin()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._con.commit()
        else:
            self._con.rollback()


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as ``str`` and times as ``datetime64[us]``, as validation writes them."""
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_object_dtype(dtype):
            frame[name] = frame[name].astype("str")
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            frame[name] = frame[name].astype("datetime64[us]")
    return frame
