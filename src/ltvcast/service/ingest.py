"""The durable side of ``POST /v1/events``: idempotent writes to the DuckDB store.

Every accepted event is a row of ``events_ingested`` (``event_id`` is its primary key) and of
the store's ``events`` table; purchases are also rows of ``transactions``. The three inserts
run in one DuckDB transaction that commits before the service answers, so an acknowledged
event survives a crash (DuckDB's write-ahead log) and a retried one is stored once.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, EVENT_TYPE, PURCHASE, TIMESTAMP
from ltvcast.data.store import Store

EVENT_ID = "event_id"
LOG_TABLE = "events_ingested"
_COLUMNS = (EVENT_ID, CUSTOMER_ID, TIMESTAMP, EVENT_TYPE, AMOUNT)

_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} ({EVENT_ID} VARCHAR PRIMARY KEY, "
    f"{CUSTOMER_ID} VARCHAR NOT NULL, {TIMESTAMP} TIMESTAMP NOT NULL, "
    f"{EVENT_TYPE} VARCHAR NOT NULL, {AMOUNT} DOUBLE)",
    f"CREATE TABLE IF NOT EXISTS transactions ({CUSTOMER_ID} VARCHAR, {TIMESTAMP} TIMESTAMP, "
    f"{AMOUNT} DOUBLE)",
    f"CREATE TABLE IF NOT EXISTS events ({CUSTOMER_ID} VARCHAR, {TIMESTAMP} TIMESTAMP, "
    f"{EVENT_TYPE} VARCHAR)",
)


class EventLog:
    """Idempotent, transactional event writes into a :class:`~ltvcast.data.store.Store`.

    Not thread-safe: the service serialises writes with a lock.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        con = store.connection
        for statement in _DDL:
            con.execute(statement)

    def count(self) -> int:
        """Events stored so far."""
        row = self.store.connection.execute(f"SELECT count(*) FROM {LOG_TABLE}").fetchone()
        return int(row[0]) if row else 0

    def write(self, events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Store the events whose ``event_id`` is new; return those rows (committed) and the
        rows whose id is stored already with other content (refused, not stored).

        The batch is inserted as it is first (the primary key refuses it when an id is
        already stored, which a retry makes rare); only then are stored ids looked up: a
        stored id with the same customer, time, type and amount is a retry (neither new nor
        refused), one with other content a conflict.

        Parameters
        ----------
        events
            ``event_id``, ``customer_id``, ``timestamp`` (naive UTC), ``event_type``,
            ``amount`` (NaN except for purchases); ``event_id`` unique within the frame.
        """
        if not len(events):
            return events, events
        con = self.store.connection
        batch = events[list(_COLUMNS)]
        con.register("_batch", pa.Table.from_pandas(batch, preserve_index=False, nthreads=1))
        try:
            try:
                self._insert("_batch")
                return events, events.iloc[:0]
            except duckdb.ConstraintException:
                pass  # some ids are stored already (rolled back): insert only the new ones
            seen = con.execute(
                f"SELECT b.{EVENT_ID}, (s.{CUSTOMER_ID} = b.{CUSTOMER_ID} "
                f"AND s.{TIMESTAMP} = b.{TIMESTAMP} AND s.{EVENT_TYPE} = b.{EVENT_TYPE} "
                f"AND s.{AMOUNT} IS NOT DISTINCT FROM b.{AMOUNT}) AS same "
                f"FROM _batch b JOIN {LOG_TABLE} s USING ({EVENT_ID})"
            ).fetchall()
        finally:
            con.unregister("_batch")
        stored = {row[0] for row in seen}
        other = {row[0] for row in seen if not row[1]}
        new = events[~events[EVENT_ID].isin(stored)].reset_index(drop=True)
        conflicts = events[events[EVENT_ID].isin(other)].reset_index(drop=True)
        if len(new):
            con.register("_new", new[list(_COLUMNS)])
            try:
                self._insert("_new")
            finally:
                con.unregister("_new")
        return new, conflicts

    def _insert(self, view: str) -> None:
        """Insert the rows of a registered frame into the three tables, in one transaction."""
        con = self.store.connection
        con.begin()
        try:
            con.execute(
                f"INSERT INTO {LOG_TABLE} SELECT {EVENT_ID}, {CUSTOMER_ID}, {TIMESTAMP}, "
                f"{EVENT_TYPE}, {AMOUNT} FROM {view}"
            )
            con.execute(
                f"INSERT INTO transactions BY NAME SELECT {CUSTOMER_ID}, {TIMESTAMP}, "
                f"{AMOUNT} FROM {view} WHERE {EVENT_TYPE} = '{PURCHASE}'"
            )
            con.execute(
                f"INSERT INTO events BY NAME SELECT {CUSTOMER_ID}, {TIMESTAMP}, "
                f"{EVENT_TYPE} FROM {view}"
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
