"""Canonical column vocabulary and the :class:`CustomerData` bundle every layer passes around.

Canonical tables (after :mod:`ltvcast.data.validate`):

- transactions: ``customer_id`` (str), ``timestamp`` (datetime64, tz-naive UTC), ``amount``
  (float64, net of returns) and optionally ``order_id`` (str), ``quantity`` (float64),
  ``item_id`` (str);
- events: ``customer_id``, ``timestamp``, ``event_type`` (str, lower case) and optionally
  ``item_id``, ``value`` (float64);
- profiles: ``customer_id`` plus any columns, one row per customer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from ltvcast.timeframe import MAX_HORIZON_DAYS

CUSTOMER_ID = "customer_id"
TIMESTAMP = "timestamp"
AMOUNT = "amount"
ORDER_ID = "order_id"
QUANTITY = "quantity"
ITEM_ID = "item_id"
EVENT_TYPE = "event_type"
VALUE = "value"

TRANSACTION_REQUIRED = (CUSTOMER_ID, TIMESTAMP, AMOUNT)
TRANSACTION_OPTIONAL = (ORDER_ID, QUANTITY, ITEM_ID)
EVENT_REQUIRED = (CUSTOMER_ID, TIMESTAMP, EVENT_TYPE)
EVENT_OPTIONAL = (ITEM_ID, VALUE)
PROFILE_REQUIRED = (CUSTOMER_ID,)

#: Times a table may hold: pandas' nanosecond range (1677-09-21 .. 2262-04-11), less the longest
#: horizon at the top so that as-of + horizon still fits. Rows outside are dropped and counted.
TIMESTAMP_RANGE = (
    pd.Timestamp("1678-01-01"),
    (pd.Timestamp.max - pd.Timedelta(days=MAX_HORIZON_DAYS)).floor("D"),
)
#: Largest plausible ``|amount|`` (a trillion in any currency): larger or infinite amounts
#: (unit errors, overflow sentinels such as 1e308, quantity x price overflowing) are dropped
#: and counted; in optional numeric columns (quantity, value) they become missing.
MAX_ABS_AMOUNT = 1e12
#: Event types the features know by name; any other string is kept as its own channel.
#: The event type that carries an ``amount`` and is also a transaction.
PURCHASE = "purchase"
KNOWN_EVENT_TYPES = ("view", "click", "cart", "checkout", PURCHASE)

#: Columns of every prediction table, in order; quantile columns follow where a model has them.
PREDICTION_COLUMNS = (CUSTOMER_ID, "predicted_value", "predicted_purchases", "p_active")
QUANTILE_COLUMNS = ("value_p10", "value_p90")


@dataclass(frozen=True)
class CustomerData:
    """Canonical transactions, optional behaviour events and optional profiles.

    Frames must already be validated (canonical names and dtypes). ``CustomerData`` is
    immutable; :meth:`until` returns a new bundle cut at an as-of time.
    """

    transactions: pd.DataFrame
    events: pd.DataFrame | None = None
    profiles: pd.DataFrame | None = None

    def until(self, as_of: pd.Timestamp) -> CustomerData:
        """Return the bundle restricted to rows with ``timestamp <= as_of``.

        Profiles have no time and are kept whole (they describe who a customer is, not what
        they did); callers that know a profile's date must cut it before building the bundle.
        """
        tx = self.transactions[self.transactions[TIMESTAMP] <= as_of]
        ev = None if self.events is None else self.events[self.events[TIMESTAMP] <= as_of]
        return replace(self, transactions=tx, events=ev)

    def customers(self) -> pd.Index:
        """Sorted ids of customers with at least one transaction or event."""
        ids = [self.transactions[CUSTOMER_ID]]
        if self.events is not None:
            ids.append(self.events[CUSTOMER_ID])
        return pd.Index(
            pd.unique(pd.concat(ids, ignore_index=True)), name=CUSTOMER_ID
        ).sort_values()

    def first_timestamp(self) -> pd.Timestamp:
        """Earliest transaction or event time."""
        times = [self.transactions[TIMESTAMP].min()]
        if self.events is not None and len(self.events):
            times.append(self.events[TIMESTAMP].min())
        return pd.Timestamp(pd.Series(times, dtype="datetime64[ns]").min())  # skips empty tables

    def last_timestamp(self) -> pd.Timestamp:
        """Latest transaction or event time (the default as-of)."""
        times = [self.transactions[TIMESTAMP].max()]
        if self.events is not None and len(self.events):
            times.append(self.events[TIMESTAMP].max())
        return pd.Timestamp(pd.Series(times, dtype="datetime64[ns]").max())  # skips empty tables

    @property
    def event_types(self) -> tuple[str, ...]:
        """Sorted distinct event types (empty without events)."""
        if self.events is None or not len(self.events):
            return ()
        return tuple(sorted(self.events[EVENT_TYPE].unique().tolist()))
