"""Customer history that stays in the store: running aggregates in memory, rows read on demand.

:class:`StoreHistory` is the :class:`~ltvcast.scoring.history.CustomerHistory` of a service
over a large store. Start-up reads only what the running RFM aggregates need (per customer
the first and last row time, and every transaction's time and amount), aggregated in
DuckDB, into a few numpy arrays per customer (about 100 bytes each, plus the id), and keeps
no row in memory. A customer's rows, for the models that need the whole history and for
explanations and curves, are read from the store by customer id when asked: an index
lookup (:meth:`~ltvcast.data.store.Store.index_customers`), cut at the stream clock.
Events learned later must be in the store already: the service writes them before it
learns them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, TIMESTAMP, CustomerData
from ltvcast.data.store import Store
from ltvcast.exceptions import ConfigError
from ltvcast.features.running import VersionSnapshot
from ltvcast.scoring.history import CustomerHistory

__all__ = ["StoreHistory"]

log = logging.getLogger(__name__)

_TIMED = ("transactions", "events")


class StoreHistory(CustomerHistory):
    """The customers of ``store`` up to ``limit``, their rows left in the store.

    Parameters
    ----------
    store
        The store the rows are read from (on a connection of its own,
        :meth:`~ltvcast.data.store.Store.reader`); its tables are indexed on
        ``customer_id`` here (once per file).
    limit
        Stored rows dated after it are not learned (the stream clock never runs ahead of
        it); rows are read at the stream clock, so they stay out of later reads too.
    """

    def __init__(self, store: Store, limit: pd.Timestamp) -> None:
        super().__init__()
        store.index_customers()
        self._reader = store.reader()
        self._load(pd.Timestamp(limit))

    def _load(self, limit: pd.Timestamp) -> None:
        """Customers get codes in id order in DuckDB; transactions come with their code."""
        con = self._reader.connection
        stored = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        tables = [t for t in _TIMED if t in stored]
        if not tables:
            return
        cut = {"cut": limit.to_pydatetime()}
        rows = " UNION ALL ".join(
            f"SELECT {CUSTOMER_ID}, {TIMESTAMP} FROM {t} WHERE {TIMESTAMP} <= $cut" for t in tables
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _seen AS SELECT *, "
            f"row_number() OVER (ORDER BY {CUSTOMER_ID}) - 1 AS code FROM ("
            f"SELECT {CUSTOMER_ID}, min({TIMESTAMP}) AS first, max({TIMESTAMP}) AS last "
            f"FROM ({rows}) GROUP BY {CUSTOMER_ID})",
            cut,
        )
        try:
            seen = con.execute(f"SELECT {CUSTOMER_ID}, first, last FROM _seen ORDER BY code")
            customers = seen.fetchnumpy()
            tx = con.execute(
                f"SELECT s.code, t.{TIMESTAMP}, t.{AMOUNT} FROM transactions t "
                f"JOIN _seen s USING ({CUSTOMER_ID}) WHERE t.{TIMESTAMP} <= $cut",
                cut,
            ).fetchnumpy()
        finally:
            con.execute("DROP TABLE IF EXISTS _seen")
        later = " + ".join(f"(SELECT count(*) FROM {t} WHERE {TIMESTAMP} > $cut)" for t in tables)
        dropped = con.execute(f"SELECT {later}", cut).fetchone()
        if dropped and dropped[0]:
            log.warning("%d stored rows are dated after %s and are not learned", dropped[0], limit)
        with self._lock:
            last = np.asarray(customers["last"], "datetime64[us]")
            self._running.load(
                np.asarray(customers[CUSTOMER_ID], dtype=object),
                np.asarray(customers["first"], "datetime64[us]"),
                last,
                np.asarray(tx["code"], np.int64),
                np.asarray(tx[TIMESTAMP], "datetime64[us]"),
                np.asarray(tx[AMOUNT], np.float64),
            )
            if len(last):
                self._advance(pd.Timestamp(last.max()))
            self._epoch += 1

    def close(self) -> None:
        """Close the history's connection to the store (once a read in progress is done)."""
        with self._lock:
            self._reader.close()

    def learn_data(self, data: CustomerData) -> None:
        """Refused: a store history's rows come from its store."""
        raise ConfigError("a StoreHistory learns events stored already (learn_frame), not data")

    def learn_one(self, event: Mapping[str, Any]) -> None:
        """Learn one event that is in the store already."""
        self.learn_frame(pd.DataFrame([{**event, TIMESTAMP: pd.Timestamp(event[TIMESTAMP])}]))

    def _buffer(self, frame: pd.DataFrame, ids: np.ndarray) -> None:
        """Nothing to keep: the rows are in the store."""

    def customers_data(
        self, customer_ids: Iterable[str]
    ) -> tuple[CustomerData, dict[str, tuple[int, int]]]:
        """The stored bundle of the given (known) customers at the stream clock, and the
        history versions it reflects."""
        with self._lock:
            ids = [c for c in dict.fromkeys(customer_ids) if c in self._running]
            data = self._reader.read(as_of=self.clock, customers=ids)
            return data, {c: self.version(c) for c in ids}

    def snapshot(self) -> tuple[CustomerData, int, VersionSnapshot]:
        """Everything stored up to the stream clock (a read of the whole store), with the
        epoch and per-customer versions."""
        with self._lock:
            data = self._reader.read(as_of=self.clock)
            return data, self._epoch, self._running.versions()
