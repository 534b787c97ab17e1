"""The history store of online scoring: every customer's rows, appendable per event.

:class:`CustomerHistory` keeps two columnar tables (transactions, behaviour events) sorted by
customer, so a customer's rows are one slice, plus small per-customer append buffers for
events that arrive one at a time; buffers are merged into the tables once they hold a fixed
fraction of them. Next to the rows, running per-customer aggregates
(:class:`~ltvcast.features.running.RunningAggregates`: first and last row time, purchase-day
aggregates, versions) are updated per event with array operations, so the RFM summary and
segment inputs of any set of customers are read without a group-by over their rows
(:meth:`CustomerHistory.summaries`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltvcast.data.schemas import (
    AMOUNT,
    CUSTOMER_ID,
    EVENT_OPTIONAL,
    EVENT_REQUIRED,
    EVENT_TYPE,
    PURCHASE,
    TIMESTAMP,
    TRANSACTION_OPTIONAL,
    TRANSACTION_REQUIRED,
    CustomerData,
)
from ltvcast.exceptions import SchemaError
from ltvcast.features.running import RunningAggregates, RunningSummary, VersionSnapshot


@dataclass
class _Table:
    """One canonical table sorted by customer, with each customer's row range."""

    frame: pd.DataFrame
    bounds: dict[str, tuple[int, int]]

    @classmethod
    def build(cls, frame: pd.DataFrame) -> _Table:
        frame = frame.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
        ids = frame[CUSTOMER_ID].to_numpy()
        if not len(ids):
            return cls(frame, {})
        starts = np.concatenate([[0], np.flatnonzero(ids[1:] != ids[:-1]) + 1])
        stops = np.append(starts[1:], len(ids))
        return cls(
            frame,
            dict(
                zip(
                    ids[starts].tolist(),
                    zip(starts.tolist(), stops.tolist(), strict=True),
                    strict=True,
                )
            ),
        )

    def take(self, customer_ids: list[str]) -> pd.DataFrame:
        """The rows of these customers (one slice when there is one customer)."""
        spans = [self.bounds[c] for c in customer_ids if c in self.bounds]
        if len(spans) == 1:
            return self.frame.iloc[spans[0][0] : spans[0][1]]
        if not spans:
            return self.frame.iloc[:0]
        return self.frame.take(np.concatenate([np.arange(a, b) for a, b in spans]))


class CustomerHistory:
    """Every customer's transactions, behaviour events and profile, appendable per event.

    Thread-safe; shared by successive :class:`~ltvcast.scoring.online.OnlineScorer` objects
    when a model is swapped. Each customer carries a version number that changes whenever
    their history does (a bulk load changes every customer's), which is how scorers know a
    cached forecast is stale.
    """

    #: Buffers are merged into the sorted tables once they hold this fraction of them.
    merge_fraction = 0.25
    #: ... or at least this many rows.
    merge_min_rows = 50_000
    #: Merge inside ``learn_frame`` when due (``False``: the owner calls
    #: :meth:`merge_pending` when :meth:`merge_due`, e.g. on a worker thread, as the service
    #: does so that a merge never holds up a read).
    auto_merge = True

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tx = _Table.build(_empty(TRANSACTION_REQUIRED))
        self._ev = _Table.build(_empty(EVENT_REQUIRED))
        self._profiles: pd.DataFrame | None = None
        # events not yet merged into the sorted tables: per customer, rows learned one by one
        # (dicts) or positions in a frame learned at once; and the same, in arrival order
        self._pending: dict[str, list[dict[str, Any] | tuple[pd.DataFrame, np.ndarray]]] = {}
        self._pending_dicts: list[dict[str, Any]] = []
        self._pending_frames: list[pd.DataFrame] = []
        self._pending_rows = 0
        self._running = RunningAggregates()
        self._epoch = 0
        self.clock: pd.Timestamp | None = None

    def __len__(self) -> int:
        return len(self._running)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._running

    @property
    def lock(self) -> threading.RLock:
        """The history's lock: hold it to read several things in one consistent state."""
        return self._lock

    def version(self, customer_id: str) -> tuple[int, int]:
        """A value that changes whenever ``customer_id``'s history changes."""
        return self._epoch, self._running.version(customer_id)

    def last_event_at(self, customer_id: str) -> pd.Timestamp | None:
        """Time of the customer's latest transaction or event (``None`` if unknown)."""
        return self._running.last_seen(customer_id)

    def learn_data(self, data: CustomerData) -> None:
        """Add a whole bundle at once (vectorised; for start-up and large loads).

        Profiles given here replace the stored profile of the same customers.
        """
        with self._lock:
            self._merge_pending()  # aggregates are rebuilt from the tables: all rows in them
            self._merge(data.transactions, data.events, learned=False)
            if data.profiles is not None:
                profiles = data.profiles.set_index(CUSTOMER_ID)
                if self._profiles is not None:
                    kept = self._profiles[~self._profiles.index.isin(profiles.index)]
                    profiles = pd.concat([kept, profiles])
                self._profiles = profiles
            self._epoch += 1

    def learn_one(self, event: Mapping[str, Any]) -> None:
        """Append one event (shaped as in
        :meth:`~ltvcast.scoring.online.OnlineScorer.learn_one`) to its customer's history."""
        customer_id = event[CUSTOMER_ID]
        kind = str(event[EVENT_TYPE])
        stamp = pd.Timestamp(event[TIMESTAMP])
        amount = event.get(AMOUNT)
        if kind == PURCHASE and amount is None:
            raise SchemaError(f"event for customer {customer_id!r}: a purchase needs an amount")
        row = {**event, TIMESTAMP: stamp}
        with self._lock:
            self._pending.setdefault(customer_id, []).append(row)
            self._pending_dicts.append(row)
            self._pending_rows += 1
            self._running.update(
                np.array([customer_id], dtype=object),
                np.array([stamp.to_datetime64()]),
                np.array([np.nan if amount is None else amount], dtype=np.float64),
                np.array([kind == PURCHASE]),
            )
            self._advance(stamp)
            self._maybe_merge()

    def learn_frame(self, events: pd.DataFrame) -> None:
        """Append a frame of events (shaped as in
        :meth:`~ltvcast.scoring.online.OnlineScorer.learn_one`, timestamps as datetimes) in
        O(rows + customers): rows are grouped by customer, not copied."""
        frame = events.reset_index(drop=True)
        if AMOUNT not in frame.columns:
            frame[AMOUNT] = np.float64("nan")
        bad = (frame[EVENT_TYPE] == PURCHASE) & frame[AMOUNT].isna()
        if bad.any():
            example = frame.loc[bad, CUSTOMER_ID].iloc[0]
            raise SchemaError(
                f"events: {int(bad.sum())} purchases lack an amount (e.g. customer {example!r})"
            )
        ids = frame[CUSTOMER_ID].to_numpy(dtype=object)
        stamps = frame[TIMESTAMP].to_numpy()
        is_purchase = (frame[EVENT_TYPE] == PURCHASE).to_numpy()
        with self._lock:
            self._buffer(frame, ids)
            self._running.update(ids, stamps, frame[AMOUNT].to_numpy(np.float64), is_purchase)
            self._advance(pd.Timestamp(stamps.max()))
            self._maybe_merge()

    def _buffer(self, frame: pd.DataFrame, ids: np.ndarray) -> None:
        """Keep a learned frame's rows until they are merged into the tables."""
        self._pending_frames.append(frame)
        self._index(frame, _rows_by_customer(ids))
        self._pending_rows += len(frame)

    def customer_data(self, customer_id: str) -> CustomerData | None:
        """The one-customer bundle (``None`` for an unknown customer)."""
        if customer_id not in self._running:
            return None
        return self.customers_data([customer_id])[0]

    def customers_data(
        self, customer_ids: Iterable[str]
    ) -> tuple[CustomerData, dict[str, tuple[int, int]]]:
        """The bundle of the given (known) customers and the history versions it reflects."""
        with self._lock:
            ids = [c for c in dict.fromkeys(customer_ids) if c in self._running]
            tx = self._tx.take(ids)
            ev = self._ev.take(ids)
            pending = [p for c in ids for p in self._pending.get(c, ())]
            if pending:
                singles = [p for p in pending if isinstance(p, dict)]
                by_frame: dict[int, tuple[pd.DataFrame, list[np.ndarray]]] = {}
                for p in pending:
                    if isinstance(p, tuple):
                        by_frame.setdefault(id(p[0]), (p[0], []))[1].append(p[1])
                parts = [f.take(np.concatenate(rows)) for f, rows in by_frame.values()]
                if singles:
                    parts.append(pd.DataFrame(singles))
                new_tx, new_ev = split_events(pd.concat(parts, ignore_index=True))
                tx = _concat(tx, new_tx)
                ev = _concat(ev, new_ev)
            profiles = None
            if self._profiles is not None:
                profiles = self._profiles.loc[self._profiles.index.intersection(ids)].reset_index()
            versions = {c: self.version(c) for c in ids}
            return CustomerData(transactions=tx, events=ev, profiles=profiles), versions

    def versions(self) -> tuple[int, VersionSnapshot]:
        """The epoch and every customer's version now (see :meth:`version`)."""
        with self._lock:
            return self._epoch, self._running.versions()

    def latest(self, customer_ids: Iterable[str]) -> pd.Timestamp | None:
        """Time of the latest row of the known customers among ``customer_ids``."""
        with self._lock:
            known = [c for c in customer_ids if c in self._running]
            return self._running.latest(np.array(known, dtype=object))

    def ids(self) -> np.ndarray:
        """Every known customer, in the order of their codes (see :meth:`versions`)."""
        with self._lock:
            return self._running.ids()

    def changed(self, base: tuple[int, VersionSnapshot], start: int, stop: int) -> np.ndarray:
        """Whether each customer of codes ``start:stop`` of ``base`` (from :meth:`versions`)
        has a new history since."""
        with self._lock:
            if base[0] != self._epoch:
                return np.ones(max(0, min(stop, len(base[1])) - start), dtype=bool)
            return self._running.changed(base[1], start, stop)

    def sample(self, n: int) -> list[str]:
        """About ``n`` known customers, spread evenly over them (all when fewer)."""
        with self._lock:
            return self._running.sample(n)

    def to_data(self) -> CustomerData:
        """Everything learned so far as one bundle."""
        return self.snapshot()[0]

    def snapshot(self) -> tuple[CustomerData, int, VersionSnapshot]:
        """Everything learned so far, with the epoch and per-customer versions it reflects."""
        with self._lock:
            self._merge_pending()
            profiles = None if self._profiles is None else self._profiles.reset_index()
            data = CustomerData(self._tx.frame, self._ev.frame, profiles)
            return data, self._epoch, self._running.versions()

    def summaries(
        self, customer_ids: Iterable[str], as_of: pd.Timestamp
    ) -> tuple[RunningSummary, list[tuple[int, int]]]:
        """RFM summary and segment inputs (:meth:`RunningAggregates.get
        <ltvcast.features.running.RunningAggregates.get>`) of the known customers among
        ``customer_ids`` (sorted by id) at ``as_of`` (on or after :attr:`clock`), and the
        history versions they reflect."""
        with self._lock:
            ids = np.array(sorted(c for c in set(customer_ids) if c in self._running), object)
            stale = self._running.stale(ids)
            if len(stale):  # a transaction arrived out of time order: rebuild from history
                tx = self.customers_data(stale.tolist())[0].transactions
                self._running.rebuild(
                    tx[CUSTOMER_ID].to_numpy(dtype=object),
                    tx[TIMESTAMP].to_numpy(),
                    tx[AMOUNT].to_numpy(np.float64),
                )
            summary = self._running.get(ids, as_of)
            return summary, [(self._epoch, v) for v in summary.versions.tolist()]

    def _advance(self, stamp: pd.Timestamp) -> None:
        if self.clock is None or stamp > self.clock:
            self.clock = stamp

    def _index(self, frame: pd.DataFrame, groups: list[tuple[str, np.ndarray]]) -> None:
        """Add a buffered frame's rows to the per-customer index of :attr:`_pending`."""
        pending = self._pending
        for customer_id, rows in groups:
            pending.setdefault(customer_id, []).append((frame, rows))

    def merge_due(self) -> bool:
        """Whether the append buffers have grown enough to be merged into the tables."""
        size = len(self._tx.frame) + len(self._ev.frame)
        return self._pending_rows >= max(self.merge_min_rows, self.merge_fraction * size)

    def merge_pending(self) -> None:
        """Merge the buffered rows into the sorted tables without holding the history for
        the build: the buffers are taken under the lock, the tables built outside it, and
        swapped in under it again; rows learned meanwhile stay buffered."""
        with self._lock:
            frames, dicts = list(self._pending_frames), list(self._pending_dicts)
            tx, ev = self._tx.frame, self._ev.frame
        if not frames and not dicts:
            return
        parts = frames + ([pd.DataFrame(dicts)] if dicts else [])
        new_tx, new_ev = split_events(pd.concat(parts, ignore_index=True))
        built_tx = _Table.build(_concat(tx, new_tx))
        built_ev = _Table.build(_concat(ev, new_ev)) if len(new_ev) else None
        with self._lock:
            if self._tx.frame is not tx or self._ev.frame is not ev:
                return  # a bulk load changed the tables meanwhile: merge another time
            self._tx = built_tx
            if built_ev is not None:
                self._ev = built_ev
            self._pending_frames = self._pending_frames[len(frames) :]
            self._pending_dicts = self._pending_dicts[len(dicts) :]
            self._pending_rows -= sum(len(f) for f in frames) + len(dicts)
            # index what arrived during the build again (a few batches), not every customer
            self._pending = {}
            for frame in self._pending_frames:
                self._index(frame, _rows_by_customer(frame[CUSTOMER_ID].to_numpy(dtype=object)))
            for row in self._pending_dicts:
                self._pending.setdefault(row[CUSTOMER_ID], []).append(row)

    def _maybe_merge(self) -> None:
        if self.auto_merge and self.merge_due():
            self._merge_pending()

    def _merge_pending(self) -> None:
        if not self._pending_rows:
            return
        parts = list(self._pending_frames)
        if self._pending_dicts:
            parts.append(pd.DataFrame(self._pending_dicts))
        frame = pd.concat(parts, ignore_index=True)
        self._pending = {}
        self._pending_dicts = []
        self._pending_frames = []
        self._pending_rows = 0
        self._merge(*split_events(frame.reset_index(drop=True)))

    def _merge(
        self, transactions: pd.DataFrame, events: pd.DataFrame | None, *, learned: bool = True
    ) -> None:
        """Merge rows into the sorted tables; unless they were ``learned`` one by one already,
        update the running aggregates too (the purchase days of customers with new transactions are
        rebuilt from all of their transactions: bulk rows may come in any order)."""
        self._tx = _Table.build(_concat(self._tx.frame, transactions))
        if events is not None and len(events):
            self._ev = _Table.build(_concat(self._ev.frame, events))
        if learned:
            return
        parts = [transactions] if events is None else [transactions, events]
        for part in parts:
            if len(part):
                self._running.update(
                    part[CUSTOMER_ID].to_numpy(dtype=object),
                    part[TIMESTAMP].to_numpy(),
                    np.zeros(len(part)),
                    np.zeros(len(part), dtype=bool),
                )
                self._advance(pd.Timestamp(part[TIMESTAMP].max()))
        if len(transactions):
            tx = self._tx.frame
            tx = tx[tx[CUSTOMER_ID].isin(transactions[CUSTOMER_ID].unique())]
            self._running.rebuild(
                tx[CUSTOMER_ID].to_numpy(dtype=object),
                tx[TIMESTAMP].to_numpy(),
                tx[AMOUNT].to_numpy(np.float64),
            )


def _empty(columns: Iterable[str]) -> pd.DataFrame:
    dtypes = {CUSTOMER_ID: "str", TIMESTAMP: "datetime64[us]", AMOUNT: "float64", EVENT_TYPE: "str"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "float64")) for c in columns})


def split_events(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Event-shaped rows -> (transactions, behaviour events) with canonical columns.

    Every row is a behaviour event; purchases are transactions as well.
    """
    tx_cols = [*TRANSACTION_REQUIRED, *TRANSACTION_OPTIONAL]
    ev_cols = [*EVENT_REQUIRED, *EVENT_OPTIONAL]
    purchases = frame[(frame[EVENT_TYPE] == PURCHASE).to_numpy()]
    tx = purchases.reindex(columns=[c for c in tx_cols if c in frame.columns or c == AMOUNT])
    ev = frame[[c for c in ev_cols if c in frame.columns]]
    return tx.reset_index(drop=True), ev.reset_index(drop=True)


def _concat(base: pd.DataFrame, new: pd.DataFrame | None) -> pd.DataFrame:
    """Append ``new`` to ``base``, casting ``new`` to ``base``'s dtypes (an empty base takes
    ``new``'s)."""
    if new is None or not len(new):
        return base
    if not len(base):
        return new.reset_index(drop=True)
    dtypes = {c: t for c, t in base.dtypes.items() if c in new.columns}
    return pd.concat([base, new.astype(dtypes)], ignore_index=True)


def _rows_by_customer(ids: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Each customer of ``ids`` with the positions of their rows (in order of first
    appearance)."""
    codes, customers = pd.factorize(ids)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(customers) + 1)).tolist()
    return [(c, order[bounds[k] : bounds[k + 1]]) for k, c in enumerate(customers.tolist())]
