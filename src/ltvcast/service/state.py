"""The service's state: store, event log, customer history and the current model bundle.

The model in use is one immutable :class:`~ltvcast.service.bundle.Model` bundle (scoring
model, online scorer, segment cuts, version, answer cache) behind a single reference, so a
reload builds the new bundle completely and then swaps that reference: no request sees a
half-loaded model. Customer histories are shared across reloads (they do not depend on the
model). What an answer holds comes from :mod:`ltvcast.pipeline`; the service only caches and
versions it.

Nothing is scored before the service answers, at start-up or reload: the history holds
per-customer running aggregates (:class:`~ltvcast.scoring.stored.StoreHistory`; rows stay in
the store), the bundle is prepared without scoring everyone
(:func:`~ltvcast.service.bundle.prepare_bundle`), and the forecasts of everyone at its as-of
are filled in afterwards, :data:`FILL_SLICE` customers per step on a worker thread. A
customer read before their slice is filled, or with a new event since, is scored on the spot
and kept in the bundle's answer cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from starlette.concurrency import run_in_threadpool

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.data.store import Store
from ltvcast.exceptions import ConfigError, InsufficientDataError, LTVError
from ltvcast.pipeline import load_scoring_model
from ltvcast.scoring.online import OnlineScorer
from ltvcast.scoring.stored import StoreHistory
from ltvcast.service.bundle import ANSWER_FIELDS, model_version, prepare_bundle
from ltvcast.service.details import add_details
from ltvcast.service.events import (
    POSITION,
    batch_conflicts,
    id_reason,
    refuse,
    time_rule,
    validate_events,
)
from ltvcast.service.ingest import EVENT_ID, EventLog
from ltvcast.service.metrics import Metrics
from ltvcast.service.recommend import ItemRelations, recommend_one
from ltvcast.service.wire import (
    CurvePoint,
    CustomerOut,
    EventsOut,
    Forecast,
    HealthOut,
    NewCustomerOut,
    RecommendationsOut,
    Rejection,
    ReloadOut,
)
from ltvcast.timeframe import Horizon, to_naive_utc

log = logging.getLogger("ltvcast.service")

#: An ingest touching at least this many customers queues them for one batch rescoring.
BATCH_RESCORE_MIN = 32
#: Ingestion pauses this many times as long as each of its steps on the event loop took, so
#: it takes at most half of the loop and reads are served between its steps.
INGEST_YIELD = 1.0
#: Customers rescored in one step of the background rescoring.
RESCORE_SLICE = 256
#: Default tolerance for event times after the server's clock (client clocks drift).
MAX_FUTURE = pd.Timedelta(minutes=15)
#: Customers forecast in one step of the background fill (on a worker thread, the history
#: held: about 60 ms for a BTYD model; the fill then pauses as long).
FILL_SLICE = 16_384
#: Seconds between checks for a new model bundle to fill once the current one is full.
FILL_IDLE_S = 0.5


def utc_now() -> pd.Timestamp:
    """The wall clock in naive UTC (the service's only reading of it)."""
    return to_naive_utc(pd.Timestamp.now(tz="UTC"))


class HTTPProblem(Exception):
    """An expected failure answered as ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class Service:
    """The service state: store, event log, customer history and the current model."""

    def __init__(
        self,
        model_dir: Path,
        db_path: Path | str,
        *,
        max_future: pd.Timedelta = MAX_FUTURE,
        clock: Callable[[], pd.Timestamp] = utc_now,
    ) -> None:
        self.model_dir = model_dir
        self.max_future = max_future
        self.clock = clock
        scoring = load_scoring_model(model_dir)  # a bad model directory creates no store file
        self.store = Store(db_path)
        self.log = EventLog(self.store)
        self.metrics = Metrics()
        self.reload_lock = threading.Lock()
        self.history = StoreHistory(self.store, self._limit())
        self.relations = ItemRelations()
        scorer = OnlineScorer(scoring.forecaster, history=self.history)
        self.model = prepare_bundle(scoring, scorer, model_version(model_dir, scoring))
        self.metrics.counters["events_ingested"] = 0
        self._gauges()
        # customers with new events, rescored together in the background (one vectorised
        # predict per round instead of one per customer); reads that come first rescore alone
        self._stale: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._filler: asyncio.Task[None] | None = None
        self._write_lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        _freeze_heap()

    def start(self) -> None:
        """Start the background rescoring (call on the running event loop; the service's
        lifespan does)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._worker = asyncio.get_running_loop().create_task(self._rescore_loop())
        self._filler = asyncio.get_running_loop().create_task(self._fill_loop())

    async def ingest(self, items: list[Any]) -> EventsOut:
        """Validate, durably store and learn a batch of events.

        Refused per item, with the reason: invalid items, events dated after the server's
        clock plus ``max_future``, and an ``event_id`` seen before (in the store or earlier
        in the batch) with other content. The same id with the same content is a retry:
        accepted and counted as a duplicate, stored once.

        Runs on the event loop in short steps (validation slices, the rules, the learning)
        with the loop free between them; the DuckDB write runs on a worker thread. Reads are
        served between the steps, so a batch never holds them up for more than one step.

        Raises
        ------
        StoreError
            When the store file is gone or replaced: nothing is acknowledged (503).
        """
        if self._loop is not asyncio.get_running_loop():  # run without the lifespan (tests)
            self.start()
        assert self._write_lock is not None and self._wake is not None
        pace = _Pacer(INGEST_YIELD)
        frame, rejected = await validate_events(items, pace.pause)
        now = self.clock()
        frame, late = refuse(frame, *time_rule(frame, now + self.max_future, now))
        conflict, retry = batch_conflicts(frame)
        frame, clashes = refuse(
            frame, conflict, id_reason("appears earlier in this batch with other content")
        )
        await pace.pause()
        unique = frame.loc[~retry[~conflict]] if retry.any() else frame
        new = unique.iloc[:0]
        stored: list[Rejection] = []
        if len(unique):
            async with self._write_lock:  # one write at a time, in arrival order
                new, conflicts = await run_in_threadpool(self._write, unique)
                pace.restart()
                history = self.model.scorer.history
                if len(new):
                    history.learn_frame(new.drop(columns=[EVENT_ID, POSITION]))
                await pace.pause()
            _, stored = refuse(
                conflicts,
                np.ones(len(conflicts), dtype=bool),
                id_reason("is stored already with other content"),
            )
            touched = new[CUSTOMER_ID].unique().tolist()
            if len(touched) >= BATCH_RESCORE_MIN:  # a few customers are cheaper rescored on read
                self._stale.update(touched)
                self._wake.set()
        refused = [*rejected, *late, *clashes, *stored]
        accepted = len(frame) - len(stored)
        duplicates = accepted - len(new)
        self.metrics.inc("events_ingested", len(new))
        self.metrics.inc("events_duplicate", duplicates)
        self.metrics.inc("events_rejected", len(refused))
        self._gauges()
        return EventsOut(
            accepted=accepted,
            duplicates=duplicates,
            rejected=sorted(refused, key=lambda r: r.index),
        )

    def _write(self, events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The durable write, with the store checked before and after it (a file removed
        during the write acknowledges nothing)."""
        self.store.verify()
        written = self.log.write(events)
        self.store.verify()
        return written

    def _limit(self) -> pd.Timestamp:
        """Latest event time the server accepts now."""
        return self.clock() + self.max_future

    def customer(
        self,
        customer_id: str,
        explain: int = 0,
        horizons: Sequence[Horizon] | None = None,
        discount_rate: float | None = None,
        intervals: bool = False,
    ) -> CustomerOut:
        """The current forecast of one customer (404 when unknown).

        A customer with a new event is rescored at once at the stream clock; the others get
        the forecast at the model's as-of (start-up or the last reload; its ``as_of`` says
        when), filled in the background or computed on their first read, so reads stay cheap
        while the clock moves. ``explain > 0`` adds that many top drivers of the forecast
        (computed on request, at the forecast's own as-of);
        ``horizons`` (or a ``discount_rate``, then at the model's horizon) add the forecast
        at each horizon and ``intervals`` the value's 80% interval, at that as-of too (422
        for a model that gives none).
        """
        model = self.model
        scorer = model.scorer
        if customer_id not in scorer:
            raise HTTPProblem(404, f"unknown customer {customer_id!r}")
        version = scorer.history.version(customer_id)
        as_of = model.as_of_for(customer_id, version)
        cached = model.answers.get(customer_id)
        row = None
        if as_of is not None and model.base is not None:
            row = model.filled.row(model.base[1].code(customer_id))
        if row is not None:  # no new event since the bundle: its filled forecast stands
            values = (*row, as_of, model.version)
        elif cached is not None and cached[0] == version:
            values = cached[1]  # no new event since: the forecast at its own as_of stands
        else:
            scored = scorer.rescore([customer_id], as_of)
            if not len(scored.frame):
                raise InsufficientDataError(
                    f"customer {customer_id!r} has no transaction or event up to "
                    f"{scored.as_of.isoformat()}"
                )
            fresh = model.answer_batch(scored.frame, scored.stats, scored.as_of, scored.versions)
            model.answers.update(fresh)
            values = fresh[customer_id][1]
        last = scorer.history.last_event_at(customer_id)
        answer = dict(zip(ANSWER_FIELDS, values, strict=True))
        out = CustomerOut(customer_id=customer_id, last_event_at=last, **answer)
        if explain > 0 or horizons is not None or discount_rate is not None or intervals:
            own = scorer.history.customer_data(customer_id)
            assert own is not None  # a known customer
            try:
                add_details(model.scoring, own, out, explain, horizons, discount_rate, intervals)
            except ConfigError as err:  # a model without explanations, curves or intervals
                raise HTTPProblem(422, str(err)) from err
        return out

    def recommendations(self, customer_id: str, top: int) -> RecommendationsOut:
        """The customer's next best action and ``top`` items at their forecast's as-of (404
        when unknown); the first request of a model version learns the item relations of
        the whole store (see :mod:`ltvcast.service.recommend`)."""
        forecast = self.customer(customer_id)
        model = self.model
        recommender = self.relations.get(model.scoring, model.version, self.history)
        own = model.scorer.history.customer_data(customer_id)
        assert own is not None  # a known customer
        as_of = to_naive_utc(pd.Timestamp(forecast.as_of))
        return recommend_one(recommender, own, as_of, model.version, forecast.segment, top)

    def new_customer(
        self, horizons: Sequence[Horizon] | None = None, discount_rate: float | None = None
    ) -> NewCustomerOut:
        """The population-level forecast of a customer who has just made a first purchase
        (422 for a model without curves)."""
        model = self.model
        try:
            table = model.scoring.new_customer(horizons, discount_rate=discount_rate)
        except ConfigError as err:
            raise HTTPProblem(422, str(err)) from err
        points = [
            CurvePoint(horizon=str(h), **{str(k): float(v) for k, v in row.items()})
            for h, row in table.iterrows()
        ]
        return NewCustomerOut(model_version=model.version, curve=points)

    def score(self, payload: dict[str, Any]) -> Forecast:
        """Score a customer described in the request (nothing is stored)."""
        model = self.model
        try:
            forecast = model.scoring.score_one(payload, rules=model.rules)
        except InsufficientDataError as err:  # the request itself is short, not a lookup miss
            raise HTTPProblem(422, str(err)) from err
        return Forecast(**forecast.answer(), model_version=model.version)

    def reload(self) -> ReloadOut:
        """Load the model directory again and swap it in; on failure keep the old one."""
        if not self.reload_lock.acquire(blocking=False):
            raise HTTPProblem(409, "a reload is already running")
        try:
            old = self.model
            try:
                scoring = load_scoring_model(self.model_dir)
                scorer = OnlineScorer(scoring.forecaster, history=old.scorer.history)
                new = prepare_bundle(scoring, scorer, model_version(self.model_dir, scoring))
            except Exception as err:
                self.metrics.inc("model_reload_failures")
                reason = str(err) if isinstance(err, LTVError) else f"{type(err).__name__}: {err}"
                log.error("model reload failed, still serving %s: %s", old.version, reason)
                raise HTTPProblem(
                    409, f"reload failed, still serving {old.version}: {reason}"
                ) from err
            self.model = new
            del old
            _freeze_heap()
            self.metrics.inc("model_reloads")
            log.info("model reloaded: %s", new.version)
            return ReloadOut(reloaded=True, model_version=new.version, customers=len(scorer))
        finally:
            self.reload_lock.release()

    def health(self) -> HealthOut:
        """Liveness and what is served; a store that is no longer there is a 503."""
        self.store.verify()
        model = self.model
        return HealthOut(
            status="ok",
            model_version=model.version,
            customers=len(model.scorer),
            clock=model.scorer.clock,
        )

    async def aclose(self) -> None:
        """Stop the background rescoring and close the store."""
        for task in (self._worker, self._filler):
            if task is None:
                continue
            task.cancel()
            if self._loop is asyncio.get_running_loop():  # else its loop is gone already
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.history.close()
        self.store.close()

    async def _rescore_loop(self) -> None:
        """Rescore the customers ingestion touched, :data:`RESCORE_SLICE` at a time, with
        the event loop free twice as long as each slice took (reads of a customer not
        rescored yet rescore that customer on the spot)."""
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            customers, self._stale = list(self._stale), set()
            for start in range(0, len(customers), RESCORE_SLICE):
                began = time.perf_counter()
                try:
                    self._rescore(set(customers[start : start + RESCORE_SLICE]))
                except Exception:  # reads then rescore one by one; keep the loop alive
                    log.exception("batch rescoring of %d customers failed", len(customers))
                # a background job: at most a third of the loop, whatever the ingestion rate
                await asyncio.sleep(2 * (time.perf_counter() - began))

    async def _fill_loop(self) -> None:
        """Fill the current bundle's forecasts (:meth:`Model.fill_step` on a worker thread),
        pausing as long as each step took; then wait for a reloaded bundle. The gauge
        ``forecasts_pending`` counts the customers not filled yet."""
        model, ids = None, np.empty(0, dtype=object)
        while True:
            if self.model is not model:
                model = self.model
                ids = model.scorer.history.ids()[: model.filled.n]
            self.metrics.gauges["forecasts_pending"] = model.filled.n - model.filled.next
            if model.filled.next >= model.filled.n:
                await asyncio.sleep(FILL_IDLE_S)
                continue
            began = time.perf_counter()
            try:
                done = await run_in_threadpool(model.fill_step, ids, FILL_SLICE)
                self.metrics.inc("customers_filled", done)
            except Exception:  # reads then score one by one; keep the loop alive
                log.exception("filling forecasts of %d customers failed", FILL_SLICE)
            await asyncio.sleep(time.perf_counter() - began)

    def _rescore(self, customers: set[str]) -> None:
        model = self.model
        if model.scorer.clock is None:
            return
        scored = model.scorer.rescore(customers)
        answers = model.answer_batch(scored.frame, scored.stats, scored.as_of, scored.versions)
        model.answers.update(answers)
        self.metrics.inc("customers_rescored", len(answers))

    def _gauges(self) -> None:
        self.metrics.gauges["customers"] = len(self.model.scorer)


class _Pacer:
    """Paces a job on the event loop: :meth:`pause` sleeps ``ratio`` times as long as the
    job ran since the last pause."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self.started = time.perf_counter()

    def restart(self) -> None:
        """Count from now (the time before was spent off the loop)."""
        self.started = time.perf_counter()

    async def pause(self) -> None:
        await asyncio.sleep(self.ratio * (time.perf_counter() - self.started))
        self.started = time.perf_counter()


#: How long a thread may hold the interpreter before another gets it (Python's default is
#: 5 ms): the event loop's thread serving reads waits at most this long behind ingestion.
SWITCH_INTERVAL_S = 0.0005


def _freeze_heap() -> None:
    """Move the objects alive now (the store's history, the model) out of the collector's
    reach: a full collection over millions of long-lived objects otherwise pauses a request
    for tens of milliseconds, which is what a GET's p99 showed."""
    gc.collect()
    gc.freeze()
