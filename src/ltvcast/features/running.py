"""Running per-customer aggregates: RFM summaries and segment inputs kept up to date per event.

River-style: :meth:`RunningAggregates.update` learns rows (vectorised over the customers they
touch), :meth:`RunningAggregates.get` reads, for any set of customers, what the batch
feature functions would compute from all their rows: the
:func:`~ltvcast.features.rfm.rfm_summary` rows and the ``tenure_days`` / ``purchases`` of
:func:`~ltvcast.features.rfm.customer_history`, at an ``as_of`` on or after every row
learned. Reading costs a few array gathers instead of a group-by over the customers' rows.

State is columnar: per customer (dense integer codes into numpy arrays) the first and last
row time, a history version, and the *purchase-day* aggregates (purchase days as in
:func:`ltvcast.data.purchases.purchase_days`: customer-days with a row of ``amount >= 0``; a
day's spend is its net amount, returns included):

- the *open day*: the customer's latest transaction day, its net amount and whether it is a
  purchase day (later rows of the same day still change it);
- the *closed* aggregates over the days before it: purchase days, first and last purchase
  day, net spend of the purchase days, of the first purchase day and of every day from the
  first purchase day on (returns-only days included).

Rows that arrive in time order (a transaction on or after its customer's open day) update
these in O(rows) vectorised steps; a transaction dated before its customer's open day makes
the customer *stale*: the owner of the rows passes that customer's transactions to
:meth:`RunningAggregates.rebuild` before reading (see :meth:`RunningAggregates.stale`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.exceptions import ConfigError
from ltvcast.features.rfm import rfm_rows

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: "No day / no time yet" sentinels (smallest and largest int64).
_LOW = np.iinfo(np.int64).min
_HIGH = np.iinfo(np.int64).max


@dataclass(frozen=True)
class RunningSummary:
    """What :meth:`RunningAggregates.get` returns for some customers.

    Attributes
    ----------
    ids
        The customers, in the order asked.
    rfm
        :func:`~ltvcast.features.rfm.rfm_summary` rows (:data:`~ltvcast.features.rfm.RFM_COLUMNS`,
        same units and dtypes; index ``customer_id`` of the ids as given, object dtype) of
        the customers with a purchase day (``history["purchases"] > 0``), in the order of
        ``ids``.
    history
        ``customer_id``, ``tenure_days`` and ``purchases`` as in
        :func:`~ltvcast.features.rfm.customer_history`, one row per id in order.
    versions
        Each customer's history version (see :meth:`RunningAggregates.version`).
    """

    ids: npt.NDArray[np.object_]
    rfm: pd.DataFrame
    history: pd.DataFrame
    versions: IntArray


@dataclass
class _Days:
    """Customer-days: one row per (code, day), sorted by code then day."""

    code: IntArray
    day: IntArray
    net: FloatArray
    buy: BoolArray

    def __len__(self) -> int:
        return len(self.code)

    def subset(self, rows: BoolArray | IntArray) -> _Days:
        return _Days(self.code[rows], self.day[rows], self.net[rows], self.buy[rows])

    @classmethod
    def collapse(cls, code: IntArray, day: IntArray, net: FloatArray, buy: BoolArray) -> _Days:
        """Rows (any order, repeats allowed) -> customer-days: net amounts summed in row
        order, a day is a purchase when any of its rows is."""
        if not len(code):
            return cls(code, day, net, buy)
        order = np.lexsort((day, code))  # stable: rows of a day keep their order
        code, day, net, buy = code[order], day[order], net[order], buy[order]
        starts = np.flatnonzero(np.r_[True, (code[1:] != code[:-1]) | (day[1:] != day[:-1])])
        return cls(
            code[starts],
            day[starts],
            np.add.reduceat(net, starts),
            np.logical_or.reduceat(buy, starts),
        )


@dataclass
class _Aggregates:
    """Purchase-day aggregates of some customers (one row each)."""

    n: IntArray
    first: IntArray
    last: IntArray
    spend: FloatArray
    first_spend: FloatArray
    total: FloatArray

    def fold(self, row: IntArray, days: _Days) -> _Aggregates:
        """These aggregates plus ``days`` (customer-days later than every day already
        counted; ``row`` gives each day's row in ``self``)."""
        m = len(self.n)
        buy = days.buy
        r, d, a = row[buy], days.day[buy], days.net[buy]
        first = np.full(m, _HIGH)
        last = np.full(m, _LOW)
        np.minimum.at(first, r, d)
        np.maximum.at(last, r, d)
        had = self.n > 0
        since_first = days.day >= first[row]
        return _Aggregates(
            n=self.n + np.bincount(r, minlength=m),
            first=np.where(had, self.first, first),
            last=np.maximum(self.last, last),
            spend=self.spend + np.bincount(r, weights=a, minlength=m),
            first_spend=np.where(
                had, self.first_spend, np.bincount(r, weights=a * (d == first[r]), minlength=m)
            ),
            total=np.where(
                had,
                self.total + np.bincount(row, weights=days.net, minlength=m),
                np.bincount(row, weights=days.net * since_first, minlength=m),
            ),
        )


class RunningAggregates:
    """Running per-customer aggregates (see the module docstring). Not thread-safe."""

    _INT = ("first_seen", "last_seen", "version", "n", "first", "last", "open_day")
    _FLOAT = ("spend", "first_spend", "total", "open_net")
    _BOOL = ("open_buy", "dirty")

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._size = 0
        self._int: dict[str, IntArray] = {k: np.empty(0, np.int64) for k in self._INT}
        self._float: dict[str, FloatArray] = {k: np.empty(0, np.float64) for k in self._FLOAT}
        self._bool: dict[str, BoolArray] = {k: np.empty(0, np.bool_) for k in self._BOOL}

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._codes

    def update(
        self,
        customer_ids: npt.NDArray[np.object_],
        stamps: npt.NDArray[np.datetime64],
        amounts: FloatArray,
        is_transaction: BoolArray,
    ) -> None:
        """Learn rows: transactions where ``is_transaction`` (``amounts`` are read there
        only), behaviour events elsewhere. Every customer touched gets a new version."""
        inverse, uniques = pd.factorize(customer_ids)
        touched = self._encode(uniques)
        code = touched[inverse]
        us = stamps.astype("datetime64[us]").astype(np.int64)
        ints = self._int
        ints["version"][touched] += 1
        np.minimum.at(ints["first_seen"], code, us)
        np.maximum.at(ints["last_seen"], code, us)
        if is_transaction.any():
            tx_day = stamps[is_transaction].astype("datetime64[D]").astype(np.int64)
            amount = amounts[is_transaction]
            days = _Days.collapse(code[is_transaction], tx_day, amount, amount >= 0)
            late = days.day < ints["open_day"][days.code]
            self._bool["dirty"][days.code[late]] = True
            self._absorb(days.subset(~self._bool["dirty"][days.code]))

    def rebuild(
        self,
        customer_ids: npt.NDArray[np.object_],
        stamps: npt.NDArray[np.datetime64],
        amounts: FloatArray,
    ) -> None:
        """Recompute the purchase days of the customers of these transactions (all of their
        transactions, any order); they are no longer stale."""
        inverse, uniques = pd.factorize(customer_ids)
        touched = self._encode(uniques)
        self._rebuild(touched, touched[inverse], stamps, amounts)

    def load(
        self,
        customer_ids: npt.NDArray[np.object_],
        first_seen: npt.NDArray[np.datetime64],
        last_seen: npt.NDArray[np.datetime64],
        codes: IntArray,
        stamps: npt.NDArray[np.datetime64],
        amounts: FloatArray,
    ) -> None:
        """Start empty aggregates in bulk: distinct customers with the time of their first
        and last row (transaction or event), and every transaction, its customer given by
        position in ``customer_ids`` (``codes``), in any order.

        Raises
        ------
        ConfigError
            When customers were learned already.
        """
        if len(self._codes):
            raise ConfigError("running aggregates: load() starts empty aggregates only")
        known = self._encode(customer_ids)
        self._int["first_seen"][known] = first_seen.astype("datetime64[us]").astype(np.int64)
        self._int["last_seen"][known] = last_seen.astype("datetime64[us]").astype(np.int64)
        self._int["version"][known] = 1
        buyers = np.flatnonzero(np.bincount(codes, minlength=len(customer_ids)))
        self._rebuild(buyers, codes, stamps, amounts)

    def _rebuild(
        self,
        touched: IntArray,
        code: IntArray,
        stamps: npt.NDArray[np.datetime64],
        amounts: FloatArray,
    ) -> None:
        for name in ("n", "spend", "first_spend", "total", "open_net"):
            (self._int if name == "n" else self._float)[name][touched] = 0
        self._int["first"][touched] = _HIGH
        self._int["last"][touched] = _LOW
        self._int["open_day"][touched] = _LOW
        self._bool["open_buy"][touched] = False
        self._bool["dirty"][touched] = False
        day = stamps.astype("datetime64[D]").astype(np.int64)
        self._absorb(_Days.collapse(code, day, amounts, amounts >= 0))

    def stale(self, customer_ids: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
        """Those of these (known) customers whose purchase days must be :meth:`rebuild` from
        their transactions before :meth:`get` (a transaction arrived out of time order)."""
        return customer_ids[self._bool["dirty"][self._known(customer_ids)]]

    def get(
        self,
        customer_ids: npt.NDArray[np.object_],
        as_of: pd.Timestamp,
        *,
        time_unit_days: float = 7.0,
    ) -> RunningSummary:
        """RFM summary and segment inputs of these known, not stale customers at ``as_of``.

        Parameters
        ----------
        customer_ids
            Known customers, none :meth:`stale`.
        as_of
            On or after every row learned for them (the aggregates hold all their rows).
        time_unit_days
            Unit of ``recency`` and ``T``, as in :func:`~ltvcast.features.rfm.rfm_summary`.

        Raises
        ------
        ConfigError
            For an unknown or stale customer, an ``as_of`` before one of their rows, or a
            non-positive ``time_unit_days``.
        """
        if time_unit_days <= 0:
            raise ConfigError(f"time_unit_days must be positive; got {time_unit_days!r}")
        codes = self._known(customer_ids)
        stale = self._bool["dirty"][codes]
        if stale.any():
            raise ConfigError(
                f"running aggregates: {int(stale.sum())} customers are stale "
                f"(e.g. {customer_ids[stale][0]!r}); rebuild them first"
            )
        as_of = pd.Timestamp(as_of)
        as_of_us = as_of.to_datetime64().astype("datetime64[us]").astype(np.int64)
        ints = self._int
        later = ints["last_seen"][codes] > as_of_us
        if later.any():
            raise ConfigError(
                f"as_of {as_of.isoformat()} is before the latest row of {int(later.sum())} "
                f"customers (e.g. {customer_ids[later][0]!r})"
            )
        agg = self._read(codes)
        buyer = agg.n > 0
        return RunningSummary(
            ids=customer_ids,
            rfm=_rfm_rows(customer_ids[buyer], agg, buyer, as_of, time_unit_days),
            history=pd.DataFrame(
                {
                    CUSTOMER_ID: customer_ids,
                    "tenure_days": (as_of_us - ints["first_seen"][codes]) / 1e6 / 86400.0,
                    "purchases": agg.n,
                }
            ),
            versions=ints["version"][codes],
        )

    def version(self, customer_id: str) -> int:
        """How many times the customer's history changed (0 when unknown)."""
        code = self._codes.get(customer_id, -1)
        return 0 if code < 0 else int(self._int["version"][code])

    def latest(self, customer_ids: npt.NDArray[np.object_]) -> pd.Timestamp | None:
        """Time of the latest row of these known customers (``None`` for none)."""
        codes = self._known(customer_ids)
        if not len(codes):
            return None
        return pd.Timestamp(int(self._int["last_seen"][codes].max()), unit="us")

    def ids(self) -> npt.NDArray[np.object_]:
        """Every known customer, in the order of their codes (see :class:`VersionSnapshot`)."""
        return np.array(list(self._codes), dtype=object)

    def sample(self, n: int) -> list[str]:
        """About ``n`` customers spread evenly over the known ones (all when fewer)."""
        step = max(1, len(self._codes) // max(n, 1))
        return list(self._codes)[::step]

    def changed(self, base: VersionSnapshot, start: int, stop: int) -> BoolArray:
        """Whether each customer of codes ``start:stop`` (in ``base``) has a new version
        since ``base``."""
        return self._int["version"][start:stop] != base.versions_of(start, stop)

    def versions(self) -> VersionSnapshot:
        """A frozen copy of every customer's version."""
        return VersionSnapshot(self._codes, self._int["version"][: len(self._codes)].copy())

    def last_seen(self, customer_id: str) -> pd.Timestamp | None:
        """Time of the customer's latest row (``None`` when unknown)."""
        code = self._codes.get(customer_id, -1)
        if code < 0:
            return None
        return pd.Timestamp(int(self._int["last_seen"][code]), unit="us")

    def _known(self, customer_ids: npt.NDArray[np.object_]) -> IntArray:
        """Codes of these customers; :class:`ConfigError` when one is unknown."""
        get = self._codes.get
        codes = np.fromiter((get(c, -1) for c in customer_ids), dtype=np.int64)
        if (codes < 0).any():
            unknown = [c for c, k in zip(customer_ids, codes.tolist(), strict=True) if k < 0]
            raise ConfigError(
                f"running aggregates: {len(unknown)} customers are unknown (e.g. {unknown[0]!r})"
            )
        return codes

    def _read(self, codes: IntArray) -> _Aggregates:
        """Purchase-day aggregates of these customers, closed and open days together."""
        ints = self._int
        has_open = ints["open_day"][codes] != _LOW
        open_codes = codes[has_open]
        days = _Days(
            open_codes,
            ints["open_day"][open_codes],
            self._float["open_net"][open_codes],
            self._bool["open_buy"][open_codes],
        )
        return self._aggregates(codes).fold(np.flatnonzero(has_open), days)

    def _aggregates(self, codes: IntArray) -> _Aggregates:
        ints, floats = self._int, self._float
        return _Aggregates(
            ints["n"][codes],
            ints["first"][codes],
            ints["last"][codes],
            floats["spend"][codes],
            floats["first_spend"][codes],
            floats["total"][codes],
        )

    def _absorb(self, days: _Days) -> None:
        """Add customer-days, none before its customer's open day: the open day and these
        merge, each customer's latest day becomes the open day, the others are closed."""
        if not len(days):
            return
        ints, floats, bools = self._int, self._float, self._bool
        customers = np.unique(days.code)
        has_open = ints["open_day"][customers] != _LOW
        held = customers[has_open]
        merged = _Days.collapse(
            np.concatenate([held, days.code]),
            np.concatenate([ints["open_day"][held], days.day]),
            np.concatenate([floats["open_net"][held], days.net]),
            np.concatenate([bools["open_buy"][held], days.buy]),
        )
        latest = np.r_[merged.code[1:] != merged.code[:-1], True]
        closed = merged.subset(~latest)
        agg = self._aggregates(customers).fold(np.searchsorted(customers, closed.code), closed)
        ints["n"][customers] = agg.n
        ints["first"][customers] = agg.first
        ints["last"][customers] = agg.last
        floats["spend"][customers] = agg.spend
        floats["first_spend"][customers] = agg.first_spend
        floats["total"][customers] = agg.total
        newest = merged.subset(latest)  # one row per customer, in the order of `customers`
        ints["open_day"][customers] = newest.day
        floats["open_net"][customers] = newest.net
        bools["open_buy"][customers] = newest.buy

    def _encode(self, uniques: np.ndarray) -> IntArray:
        """Codes of distinct ids, new ids getting the next free codes (and empty state)."""
        codes = self._codes
        before = len(codes)
        if not before:  # a bulk load: every id is new
            codes.update(zip(uniques.tolist(), range(len(uniques)), strict=True))
            self._grow(len(codes))
            return np.arange(len(uniques), dtype=np.int64)
        out = np.fromiter((codes.setdefault(c, len(codes)) for c in uniques.tolist()), np.int64)
        if len(codes) > before:
            self._grow(len(codes))
        return out

    def _grow(self, size: int) -> None:
        if size <= self._size:
            return
        capacity = max(size, 2 * self._size, 1024)
        fill_int = {"first_seen": _HIGH, "last_seen": _LOW, "first": _HIGH, "last": _LOW,
                    "open_day": _LOW}  # fmt: skip
        for name, old in self._int.items():
            new = np.full(capacity, fill_int.get(name, 0), np.int64)
            new[: self._size] = old[: self._size]
            self._int[name] = new
        for name, old_f in self._float.items():
            new_f = np.zeros(capacity, np.float64)
            new_f[: self._size] = old_f[: self._size]
            self._float[name] = new_f
        for name, old_b in self._bool.items():
            new_b = np.zeros(capacity, np.bool_)
            new_b[: self._size] = old_b[: self._size]
            self._bool[name] = new_b
        self._size = capacity


class VersionSnapshot:
    """Every customer's history version at one moment (customers added later read -1)."""

    def __init__(self, codes: dict[str, int], versions: IntArray) -> None:
        self._codes = codes  # append-only: a customer's code never changes
        self._versions = versions

    def __len__(self) -> int:
        return len(self._versions)

    def get(self, customer_id: str) -> int:
        code = self.code(customer_id)
        return -1 if code < 0 else int(self._versions[code])

    def code(self, customer_id: str) -> int:
        """The customer's position in the snapshot (-1 when absent)."""
        code = self._codes.get(customer_id, -1)
        return code if code < len(self._versions) else -1

    def versions_of(self, start: int, stop: int) -> IntArray:
        """The versions of codes ``start:stop``."""
        return self._versions[start:stop]


def _rfm_rows(
    ids: npt.NDArray[np.object_],
    agg: _Aggregates,
    buyer: BoolArray,
    as_of: pd.Timestamp,
    time_unit_days: float,
) -> pd.DataFrame:
    """The :func:`~ltvcast.features.rfm.rfm_summary` frame of the ``buyer`` rows of
    ``agg`` (customers ``ids``)."""
    return rfm_rows(
        pd.Index(ids, dtype=object, name=CUSTOMER_ID),  # as given: no string copy
        agg.n[buyer],
        agg.first[buyer],
        agg.last[buyer],
        agg.spend[buyer] - agg.first_spend[buyer],
        agg.total[buyer],
        as_of,
        time_unit_days,
    )
