"""Online scoring: per-customer history updated per event, forecasts recomputed per customer.

River-style: :meth:`OnlineScorer.learn_one` appends one event to its customer's history
(:class:`~ltvcast.scoring.history.CustomerHistory`) in O(1) amortised time;
:meth:`OnlineScorer.predict_one` scores that customer alone. Every forecaster's population
parameters (BG/NBD and Gamma-Gamma priors, GBDT trees, network weights) are fixed at fit
time, so a customer's forecast depends only on that customer's own history and profile:
scoring the one customer is exactly what batch ``predict`` gives for them (tested to 1e-6
relative for every model). The default as-of time is the *stream clock*: the latest
timestamp seen, as batch scoring defaults to the last timestamp in the data.

A forecaster with an :attr:`~ltvcast.models.base.Forecaster.rfm_scorer` (BTYD models, or an
``auto`` model that picked one) is rescored at the stream clock from the history's running
RFM summaries (:mod:`ltvcast.features.running`), a vectorised formula over the touched
customers instead of gathering their rows and calling ``predict`` (``bench/bench_service.py``
measures both); other models and earlier as-of times go through ``predict``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, PREDICTION_COLUMNS, TIMESTAMP, CustomerData
from ltvcast.exceptions import InsufficientDataError
from ltvcast.features.rfm import customer_history
from ltvcast.features.running import RunningSummary, VersionSnapshot
from ltvcast.models.base import Forecaster, RFMScorer
from ltvcast.scoring.history import CustomerHistory, split_events

__all__ = ["CustomerHistory", "CustomerSource", "OnlineScorer", "Rescored"]

log = logging.getLogger(__name__)


class CustomerSource(Protocol):
    """Anything that reads canonical data, such as :class:`ltvcast.data.store.Store`."""

    def read(self) -> CustomerData:
        """All stored data."""
        ...


@dataclass(frozen=True)
class Rescored:
    """Forecasts of some customers with their segment inputs and history versions.

    ``frame`` has the columns of :meth:`Forecaster.predict` (sorted by ``customer_id``);
    ``stats`` has ``customer_id``, ``tenure_days``, ``purchases`` (as
    :func:`ltvcast.features.rfm.customer_history`) in the same rows; ``versions[i]`` is
    the history version row ``i`` reflects.
    """

    frame: pd.DataFrame
    stats: pd.DataFrame
    versions: list[tuple[int, int]]
    as_of: pd.Timestamp


class OnlineScorer:
    """Score customers one at a time as their events arrive.

    Parameters
    ----------
    forecaster
        A fitted :class:`~ltvcast.models.base.Forecaster`.
    store
        Optional source of the starting history (anything with ``read() -> CustomerData``,
        e.g. :class:`ltvcast.data.store.Store`); read once here.
    history
        An existing :class:`CustomerHistory` to share (used to swap models without reloading
        data); exclusive with ``store``.

    Notes
    -----
    Forecasts are cached per customer and reused while the customer's history and the as-of
    time are unchanged; a new event for the customer makes the next ``predict_one`` recompute.
    """

    def __init__(
        self,
        forecaster: Forecaster,
        store: CustomerSource | None = None,
        *,
        history: CustomerHistory | None = None,
    ) -> None:
        forecaster.check_fitted()
        self.forecaster = forecaster
        self.history = CustomerHistory() if history is None else history
        self._cache: dict[str, tuple[pd.Timestamp, tuple[int, int], dict[str, Any]]] = {}
        self._batch: _BatchForecast | None = None
        #: rescoring from the running RFM summaries (the forecaster has an ``rfm_scorer``),
        #: until a check against ``predict`` fails
        self.fast_path = forecaster.rfm_scorer is not None
        if store is not None:
            self.history.learn_data(store.read())

    def __len__(self) -> int:
        return len(self.history)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self.history

    @property
    def clock(self) -> pd.Timestamp | None:
        """The stream clock: the latest timestamp learned (the default as-of)."""
        return self.history.clock

    def learn_one(self, event: Mapping[str, Any]) -> None:
        """Add one event: O(1) amortised.

        Parameters
        ----------
        event
            ``customer_id``, ``timestamp`` (tz-naive UTC), ``event_type`` and, for
            ``event_type == "purchase"``, ``amount`` (negative for a return); optional
            canonical columns (``order_id``, ``quantity``, ``item_id``, ``value``) are kept.
            Every event is a behaviour event; a purchase is a transaction as well (as the
            simulator and clickstream sources record them).
        """
        self.history.learn_one(event)

    def learn_many(self, events: pd.DataFrame | Iterable[Mapping[str, Any]]) -> None:
        """Add many events shaped as in :meth:`learn_one` (a frame or an iterable of dicts)."""
        frame = events if isinstance(events, pd.DataFrame) else pd.DataFrame(list(events))
        if not len(frame):
            return
        frame = frame.assign(**{TIMESTAMP: pd.to_datetime(frame[TIMESTAMP])})
        if len(frame) >= self.history.merge_min_rows:
            self.history.learn_data(CustomerData(*split_events(frame)))
        else:
            self.history.learn_frame(frame)

    def predict_one(self, customer_id: str, as_of: pd.Timestamp | None = None) -> dict[str, Any]:
        """Forecast one customer at ``as_of`` (default: the stream clock).

        Returns
        -------
        dict
            The forecaster's prediction columns (``customer_id``, ``predicted_value``,
            ``predicted_purchases``, ``p_active`` and, where given, ``value_p10``,
            ``value_p90``) as Python scalars, plus ``as_of``.

        Raises
        ------
        InsufficientDataError
            When the customer has no transaction or event up to ``as_of``.
        """
        when = self._as_of(as_of)
        version = self.history.version(customer_id)
        cached = self._cache.get(customer_id)
        if cached is not None and cached[0] == when and cached[1] == version:
            return dict(cached[2])
        batch = self._batch
        if batch is not None and batch.as_of == when:
            record = batch.get(customer_id, version)
            if record is not None:
                return record
        scored = self.rescore([customer_id], when)
        if not len(scored.frame):
            raise InsufficientDataError(
                f"customer {customer_id!r} has no transaction or event up to {when.isoformat()}"
            )
        result = {**_record(scored.frame.iloc[0]), "as_of": when}
        self._cache[customer_id] = (when, scored.versions[0], result)
        return dict(result)

    def rescore(self, customer_ids: Iterable[str], as_of: pd.Timestamp | None = None) -> Rescored:
        """Forecast these customers now (no cache; unknown ones and those without a row up to
        ``as_of`` are left out), vectorised over them.

        A forecaster with an ``rfm_scorer`` at the stream clock or later (or at any time on
        or after these customers' latest rows) is fed from the running RFM summaries (a few
        array operations per customer, no group-by over their history); other models and
        earlier as-of times rebuild the customers' bundle and call ``predict``. Both give the
        same numbers (tested to 1e-6 relative).
        """
        when = self._as_of(as_of)
        scorer = self.forecaster.rfm_scorer
        customer_ids = list(customer_ids)
        if self.fast_path and scorer is not None and self._summarised(customer_ids, when):
            summary, reflected = self.history.summaries(customer_ids, when)
            return Rescored(_rfm_forecast(scorer, summary), summary.history, reflected, when)
        data, versions = self.history.customers_data(customer_ids)
        frame = self.forecaster.predict(data, when)
        ids = frame[CUSTOMER_ID]
        stats = customer_history(data, when).set_index(CUSTOMER_ID)
        stats = stats.reindex(ids)[["tenure_days", "purchases"]].reset_index()
        return Rescored(frame, stats, [versions[c] for c in ids.tolist()], when)

    def predict_many(self, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
        """Batch-forecast every customer (vectorised); ``predict_one`` then reuses the results
        of customers whose history has not changed since."""
        when = self._as_of(as_of)
        data, epoch, versions = self.history.snapshot()
        frame = self.forecaster.predict(data, when)
        self._batch = _BatchForecast(frame, when, epoch, versions)
        if self.fast_path and when >= self._as_of(None):
            self.fast_path = self._fast_path_agrees(frame, when)
        return frame

    def check_fast_path(
        self, customer_ids: Iterable[str], as_of: pd.Timestamp | None = None
    ) -> bool:
        """Check the running-summaries path against ``predict`` on these customers (their
        rows, at ``as_of``, default the stream clock) and turn it off when they disagree, as
        :meth:`predict_many` does on everyone; returns whether it stays on."""
        when = self._as_of(as_of)
        if self.fast_path and when >= self._as_of(None):
            data, _ = self.history.customers_data(customer_ids)
            self.fast_path = self._fast_path_agrees(self.forecaster.predict(data, when), when)
        return self.fast_path

    def _fast_path_agrees(self, frame: pd.DataFrame, when: pd.Timestamp, n: int = 256) -> bool:
        """Whether the RFM summaries path reproduces ``frame`` (``predict``) on ``n``
        customers."""
        sample = frame.iloc[:: max(1, len(frame) // n)]
        fast = self.rescore(sample[CUSTOMER_ID], when).frame
        columns = list(PREDICTION_COLUMNS[1:])
        agrees = fast[CUSTOMER_ID].tolist() == sample[CUSTOMER_ID].tolist() and np.allclose(
            fast[columns].to_numpy(), sample[columns].to_numpy(), rtol=1e-6, atol=1e-9
        )
        if not agrees:
            log.warning("online RFM summaries disagree with %s.predict: rescoring through predict",
                        type(self.forecaster).__name__)  # fmt: skip
        return bool(agrees)

    def _summarised(self, customer_ids: list[str], when: pd.Timestamp) -> bool:
        """Whether the running summaries hold these customers' history at ``when`` (no row
        of theirs after it)."""
        if when >= self._as_of(None):
            return True
        latest = self.history.latest(customer_ids)
        return latest is None or when >= latest

    def _as_of(self, as_of: pd.Timestamp | None) -> pd.Timestamp:
        if as_of is not None:
            return pd.Timestamp(as_of)
        if self.history.clock is None:
            raise InsufficientDataError("no event learned yet, so there is no default as_of")
        return self.history.clock


class _BatchForecast:
    """A batch ``predict`` result and the history versions it was computed from."""

    def __init__(
        self, frame: pd.DataFrame, as_of: pd.Timestamp, epoch: int, versions: VersionSnapshot
    ) -> None:
        self.as_of = as_of
        self._epoch = epoch
        self._versions = versions
        ids = frame[CUSTOMER_ID].tolist()
        self._rows = dict(zip(ids, range(len(ids)), strict=True))
        self._columns = {c: frame[c].to_numpy() for c in frame.columns if c != CUSTOMER_ID}

    def get(self, customer_id: str, version: tuple[int, int]) -> dict[str, Any] | None:
        """The customer's forecast, or ``None`` when absent or their history has changed."""
        row = self._rows.get(customer_id)
        if row is None or version != (self._epoch, self._versions.get(customer_id)):
            return None
        values = {c: column[row].item() for c, column in self._columns.items()}
        return {CUSTOMER_ID: customer_id, **values, "as_of": self.as_of}


def _rfm_forecast(scorer: RFMScorer, summary: RunningSummary) -> pd.DataFrame:
    """``predict`` of the summarised customers from their RFM summary
    (:meth:`~ltvcast.models.base.RFMScorer.predict_rfm`); customers without a purchase day
    get 0, as in ``predict``."""
    outputs = scorer.predict_rfm(summary.rfm)
    buyer = summary.history["purchases"].to_numpy() > 0
    out: dict[str, np.ndarray] = {CUSTOMER_ID: summary.ids}
    for name in PREDICTION_COLUMNS[1:]:
        full = np.zeros(len(summary.ids))
        full[buyer] = outputs[name].to_numpy()
        out[name] = full
    return pd.DataFrame(out)


def _record(row: pd.Series) -> dict[str, Any]:
    return {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
