"""The FastAPI application: durable event ingestion, per-customer forecasts, one-off scoring,
atomic model reload, health and metrics.

State lives in one :class:`Service`; the model in use is one immutable :class:`Model` bundle
(forecaster, scorer, segment cuts, version) behind a single reference, so a reload builds the
new bundle completely and then swaps that reference: no request sees a half-loaded model.
Customer histories are shared across reloads (they do not depend on the model).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import signal
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ltvcast.data.purchases import PURCHASE
from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, EVENT_TYPE, TIMESTAMP, CustomerData
from ltvcast.data.store import Store
from ltvcast.exceptions import ArtifactError, ConfigError, InsufficientDataError, LTVError
from ltvcast.features.rfm import customer_history
from ltvcast.scoring.artifacts import MANIFEST, load_model
from ltvcast.scoring.online import OnlineScorer
from ltvcast.scoring.single import parse_score_request
from ltvcast.service.ingest import EVENT_ID, EventLog
from ltvcast.service.metrics import BodyLimitMiddleware, Metrics, TimingMiddleware
from ltvcast.service.wire import (
    EVENTS,
    CustomerOut,
    Driver,
    EventIn,
    EventsIn,
    EventsOut,
    Forecast,
    HealthOut,
    Rejection,
    ReloadOut,
    validation_message,
)
from ltvcast.strategy.segments import FittedSegmentRules, SegmentRules

log = logging.getLogger("ltvcast.service")

#: The segment of every answer when there are no cuts: the manifest has none and the store
#: held fewer than MIN_CUSTOMERS_FOR_CUTS customers at start-up (a reload fits them on the
#: customers known by then).
UNSEGMENTED = "unsegmented"
MIN_CUSTOMERS_FOR_CUTS = 100
#: The cached answer of a customer, in order: forecast columns, then segment, as-of, model.
ANSWER_FIELDS = ("predicted_value", "predicted_purchases", "p_active", "value_p10", "value_p90",
                 "segment", "as_of", "model_version")  # fmt: skip
#: An ingest touching at least this many customers queues them for one batch rescoring.
BATCH_RESCORE_MIN = 32


class HTTPProblem(Exception):
    """An expected failure answered as ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


@dataclass(frozen=True)
class Model:
    """Everything that changes when the model does; swapped as one reference."""

    scorer: OnlineScorer
    version: str
    rules: FittedSegmentRules | None
    #: customer -> (history version the answer reflects, answer values in ANSWER_FIELDS
    #: order); tuples rather than dicts: cheap to build by the thousand, light for the GC
    answers: dict[str, tuple[tuple[int, int], tuple[Any, ...]]] = field(default_factory=dict)


class Service:
    """The service state: store, event log, customer history and the current model."""

    def __init__(self, model_dir: Path, db_path: Path | str) -> None:
        self.model_dir = model_dir
        self.store = Store(db_path)
        self.log = EventLog(self.store)
        self.metrics = Metrics()
        self.write_lock = threading.Lock()
        self.reload_lock = threading.Lock()
        forecaster, manifest = load_model(model_dir)
        scorer = OnlineScorer(forecaster, self.store)
        self.model = _warm(scorer, manifest, _model_version(model_dir, manifest))
        self.metrics.counters["events_ingested"] = 0
        self._gauges()
        # customers with new events, rescored together in the background (one vectorised
        # predict per round instead of one per customer); reads that come first rescore alone
        self._stale: set[str] = set()
        self._stale_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._worker = threading.Thread(target=self._rescore_loop, name="rescore", daemon=True)
        self._worker.start()
        _freeze_heap()

    def ingest(self, items: list[Any]) -> EventsOut:
        """Validate, durably store and learn a batch of events."""
        frame, rejected = _validate_events(items)
        duplicates = 0
        if len(frame):
            unique = frame.drop_duplicates(EVENT_ID, keep="first")
            with self.write_lock:
                new = self.log.write(unique)
                self.model.scorer.learn_many(new.drop(columns=EVENT_ID))
            touched = new[CUSTOMER_ID].unique().tolist()
            if len(touched) >= BATCH_RESCORE_MIN:  # a few customers are cheaper rescored on read
                with self._stale_lock:
                    self._stale.update(touched)
                self._wake.set()
            duplicates = len(frame) - len(new)
            self.metrics.inc("events_ingested", len(new))
            self.metrics.inc("events_duplicate", duplicates)
        self.metrics.inc("events_rejected", len(rejected))
        self._gauges()
        return EventsOut(accepted=len(frame), duplicates=duplicates, rejected=rejected)

    def customer(self, customer_id: str, explain: int = 0) -> CustomerOut:
        """The current forecast of one customer (404 when unknown).

        A customer with a new event is rescored at once at the stream clock; the others keep
        the forecast computed in batch at start-up or at the last reload (its ``as_of`` says
        when), so reads stay cheap while the clock moves. ``explain > 0`` adds that many top
        drivers of the forecast (computed on request, at the forecast's own as-of).
        """
        model = self.model
        scorer = model.scorer
        if customer_id not in scorer:
            raise HTTPProblem(404, f"unknown customer {customer_id!r}")
        version = scorer.history.version(customer_id)
        cached = model.answers.get(customer_id)
        if cached is not None and cached[0] == version:
            values = cached[1]  # no new event since: the forecast at its own as_of stands
        else:
            scored = scorer.rescore([customer_id])
            if not len(scored.frame):
                raise InsufficientDataError(
                    f"customer {customer_id!r} has no transaction or event up to "
                    f"{scored.as_of.isoformat()}"
                )
            fresh = _answers(scored.frame, scored.stats, scored.as_of, model, scored.versions)
            model.answers.update(fresh)
            values = fresh[customer_id][1]
        last = scorer.history.last_event_at(customer_id)
        answer = dict(zip(ANSWER_FIELDS, values, strict=True))
        out = CustomerOut(customer_id=customer_id, last_event_at=last, **answer)
        if explain > 0:
            own = scorer.history.customer_data(customer_id)
            assert own is not None  # a known customer
            try:
                row = scorer.forecaster.explain(own, pd.Timestamp(out.as_of)).iloc[0]
            except ConfigError as err:  # a model without explanations
                raise HTTPProblem(422, str(err)) from err
            drivers = row.drop("base_value")
            top = drivers.reindex(drivers.abs().sort_values(ascending=False).index[:explain])
            out.base_value = float(row["base_value"])
            out.drivers = [Driver(feature=str(k), contribution=float(v)) for k, v in top.items()]
        return out

    def score(self, payload: dict[str, Any]) -> Forecast:
        """Score a customer described in the request (nothing is stored)."""
        data, as_of = parse_score_request(payload)
        when = data.last_timestamp() if as_of is None else as_of
        model = self.model
        frame = model.scorer.forecaster.predict(data, when)
        if not len(frame):
            raise HTTPProblem(
                422, f"as_of: the request has no transaction or event up to {when.isoformat()}"
            )
        prediction = {**{str(k): v for k, v in frame.iloc[0].items()}, "as_of": when}
        return Forecast(**_answer(prediction, model, data, when))

    def reload(self) -> ReloadOut:
        """Load the model directory again and swap it in; on failure keep the old one."""
        if not self.reload_lock.acquire(blocking=False):
            raise HTTPProblem(409, "a reload is already running")
        try:
            old = self.model
            try:
                forecaster, manifest = load_model(self.model_dir)
                scorer = OnlineScorer(forecaster, history=old.scorer.history)
                new = _warm(scorer, manifest, _model_version(self.model_dir, manifest))
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
        model = self.model
        return HealthOut(
            status="ok",
            model_version=model.version,
            customers=len(model.scorer),
            clock=model.scorer.clock,
        )

    def close(self) -> None:
        """Stop the rescoring thread and close the store."""
        self._closing = True
        self._wake.set()
        self._worker.join(timeout=30)
        self.store.close()

    def _rescore_loop(self) -> None:
        while True:
            self._wake.wait()
            if self._closing:
                return
            with self._stale_lock:
                customers, self._stale = self._stale, set()
                self._wake.clear()
            try:
                self._rescore(customers)
            except Exception:  # reads then rescore one by one; keep the loop alive
                log.exception("batch rescoring of %d customers failed", len(customers))

    def _rescore(self, customers: set[str]) -> None:
        model = self.model
        if model.scorer.clock is None:
            return
        scored = model.scorer.rescore(customers)
        answers = _answers(scored.frame, scored.stats, scored.as_of, model, scored.versions)
        model.answers.update(answers)
        self.metrics.inc("customers_rescored", len(answers))

    def _gauges(self) -> None:
        self.metrics.gauges["customers"] = len(self.model.scorer)


def create_app(
    model_dir: str | Path,
    db_path: str | Path,
    *,
    token: str | None,
    max_body_bytes: int = 8 * 1024 * 1024,
    max_batch: int = 10_000,
    handle_sighup: bool = False,
) -> FastAPI:
    """Build the service application.

    Parameters
    ----------
    model_dir
        A model directory written by ``ltvcast train``; ``POST /v1/admin/reload`` reloads it.
    db_path
        The DuckDB store (created when absent); customer histories are rebuilt from it at start.
    token
        Bearer token required on every ``/v1`` route; ``None`` disables auth (the CLI only
        allows that with ``--insecure``).
    max_body_bytes, max_batch
        Request body limit (413 above it) and most events per ``POST /v1/events``.
    handle_sighup
        Reload the model on SIGHUP (the CLI sets it; tests leave it off).
    """
    service = Service(Path(model_dir), db_path)
    expected = None if token is None else token.encode()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if handle_sighup:
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.create_task(_reload_quietly(service))
            )
        try:
            yield
        finally:
            if handle_sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            service.close()

    app = FastAPI(
        title="ltvcast",
        version="1",
        summary="Per-customer lifetime-value forecasts, updated per event.",
        lifespan=lifespan,
    )
    app.state.service = service
    bearer = HTTPBearer(auto_error=False)

    async def authorize(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        # async: a sync dependency would hop to the thread pool on every request (a thread
        # wake-up and a GIL hand-off each way: the bulk of a cached GET's tail under load)
        if expected is None:
            return
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPProblem(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPProblem(403, "invalid token")

    secured = [Depends(authorize)]

    @app.exception_handler(HTTPProblem)
    async def _problem(_: Request, exc: HTTPProblem) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, exc.status, headers=exc.headers)

    @app.exception_handler(LTVError)
    async def _ltv_error(_: Request, exc: LTVError) -> JSONResponse:
        status = 404 if isinstance(exc, InsufficientDataError) else 422
        if isinstance(exc, ArtifactError):
            status = 409
        return JSONResponse({"detail": str(exc)}, status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        lines = []
        for item in exc.errors():
            path = ".".join(str(p) for p in item["loc"])
            lines.append(f"{path}: {item['msg']}")
        return JSONResponse({"detail": "; ".join(lines)}, 422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"detail": "internal error (see the server log)"}, 500)

    @app.post("/v1/events", dependencies=secured, tags=["events"])
    def post_events(body: EventsIn) -> EventsOut:
        """Store events durably (committed before this answer) and update forecasts."""
        if len(body.events) > max_batch:
            raise HTTPProblem(
                413, f"events: {len(body.events)} events exceed the batch limit of {max_batch}"
            )
        return service.ingest(body.events)

    @app.get("/v1/customers/{customer_id}", dependencies=secured, tags=["forecasts"])
    async def get_customer(
        customer_id: str,
        explain: Annotated[
            int, Query(ge=0, le=50, description="Add this many top drivers of the forecast.")
        ] = 0,
    ) -> CustomerOut:
        """The customer's forecast at the stream clock (the latest event time seen)."""
        return service.customer(customer_id, explain)

    @app.post("/v1/score", dependencies=secured, tags=["forecasts"])
    def post_score(payload: Annotated[dict[str, Any], Body()]) -> Forecast:
        """Score a customer described in the request, without storing anything."""
        return service.score(payload)

    @app.post("/v1/admin/reload", dependencies=secured, tags=["admin"])
    def post_reload() -> ReloadOut:
        """Load the model directory again and swap it in atomically."""
        return service.reload()

    @app.get("/healthz", tags=["ops"])
    def healthz() -> HealthOut:
        return service.health()

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")

    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(TimingMiddleware, metrics=service.metrics)
    return app


async def _reload_quietly(service: Service) -> None:
    try:
        await run_in_threadpool(service.reload)
    except HTTPProblem:
        pass  # logged by reload; the old model keeps serving


def _warm(scorer: OnlineScorer, manifest: dict[str, Any], version: str) -> Model:
    """Batch-score everyone (vectorised) and label their segments.

    Segment cuts come from the manifest (``segment_rules``, fitted by ``ltvcast train`` on
    the training customers); a model without them gets cuts fitted on these forecasts when
    there are at least ``MIN_CUSTOMERS_FOR_CUTS`` of them, else ``"unsegmented"``.
    """
    stored = manifest.get("segment_rules")
    rules = None if stored is None else FittedSegmentRules.from_dict(stored)
    if not len(scorer):
        return Model(scorer, version, rules)
    data, epoch, versions = scorer.history.snapshot()
    as_of = scorer.clock
    assert as_of is not None
    frame = scorer.predict_many(as_of)  # also checks the fast rescoring path against it
    if rules is None and len(frame) >= MIN_CUSTOMERS_FOR_CUTS:
        rules = SegmentRules().fit(frame)
    model = Model(scorer, version, rules)
    ids = frame[CUSTOMER_ID].tolist()
    stats = customer_history(data, as_of).set_index(CUSTOMER_ID).reindex(ids).reset_index()
    model.answers.update(
        _answers(frame, stats, as_of, model, [(epoch, versions.get(c)) for c in ids])
    )
    return model


def _answers(
    frame: pd.DataFrame,
    stats: pd.DataFrame,
    as_of: pd.Timestamp,
    model: Model,
    versions: Sequence[tuple[int, int]],
) -> dict[str, tuple[tuple[int, int], tuple[Any, ...]]]:
    """Cache entries for a batch forecast (``versions[i]``: the history version row ``i``
    reflects): segments labelled in one vectorised pass from ``stats`` (tenure, purchases;
    the same rows as ``frame``)."""
    if model.rules is None:
        segments = np.full(len(frame), UNSEGMENTED, dtype=object)
    else:  # rows are aligned: label by position (integer keys join faster than string ids)
        keys = {CUSTOMER_ID: np.arange(len(frame))}
        segments = model.rules.assign(frame.assign(**keys), stats.assign(**keys)).to_numpy()
    n = len(frame)
    columns = [
        frame[name].tolist() if name in frame.columns else [None] * n for name in ANSWER_FIELDS[:-3]
    ]
    fixed = (repeat(as_of, n), repeat(model.version, n))
    values = zip(*columns, segments.tolist(), *fixed, strict=True)
    return dict(zip(frame[CUSTOMER_ID].tolist(), zip(versions, values, strict=True), strict=True))


def _answer(
    prediction: dict[str, Any], model: Model, data: CustomerData, as_of: pd.Timestamp
) -> dict[str, Any]:
    """Forecast fields plus segment and model version for one customer."""
    segment = UNSEGMENTED
    if model.rules is not None:
        tenure_days, purchases = tenure_and_purchases(data, as_of)
        segment = model.rules.label(
            prediction["predicted_value"], prediction["p_active"], tenure_days, purchases
        )
    fields = ("predicted_value", "predicted_purchases", "p_active", "value_p10", "value_p90")
    answer = {name: _scalar(prediction.get(name)) for name in fields}
    return {**answer, "segment": segment, "as_of": as_of, "model_version": model.version}


def tenure_and_purchases(data: CustomerData, as_of: pd.Timestamp) -> tuple[float, float]:
    """Tenure (days) and purchase days of a one-customer bundle at ``as_of``.

    The same numbers as :func:`ltvcast.features.rfm.customer_history` (tested), without
    its group-bys: a purchase day is a day with a row of ``amount >= 0`` (the convention of
    :func:`ltvcast.data.purchases.purchase_days`).
    """
    past = data.until(as_of)
    tx = past.transactions
    times = [tx[TIMESTAMP].min()]
    if past.events is not None and len(past.events):
        times.append(past.events[TIMESTAMP].min())
    first = min(t for t in times if not pd.isna(t))
    days = tx.loc[tx[AMOUNT].to_numpy() >= 0, TIMESTAMP].dt.floor("D").nunique()
    return (as_of - first) / pd.Timedelta(days=1), float(days)


def _scalar(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _validate_events(items: list[Any]) -> tuple[pd.DataFrame, list[Rejection]]:
    """Validate all items in one pass (failing ones set aside with their reasons) and return
    the valid events as a frame (see :func:`_event_frame`)."""
    reasons: dict[int, list[str]] = {}
    try:
        good = EVENTS.validate_python(items)
    except ValidationError as err:
        for item in err.errors():
            index = int(item["loc"][0])
            sub = ValidationError.from_exception_data(err.title, [item])  # type: ignore[list-item]
            reasons.setdefault(index, []).append(validation_message(sub, skip=1))
        good = EVENTS.validate_python([item for i, item in enumerate(items) if i not in reasons])
    positions = np.array([i for i in range(len(items)) if i not in reasons], dtype=np.int64)
    frame, broken = _event_frame(good)
    for row, reason in broken.items():
        reasons[int(positions[row])] = [reason]
    if broken:
        frame = frame.drop(index=list(broken)).reset_index(drop=True)
    rejected = [Rejection(index=i, reason="; ".join(r)) for i, r in sorted(reasons.items())]
    return frame, rejected


def _event_frame(events: list[EventIn]) -> tuple[pd.DataFrame, dict[int, str]]:
    """Validated events as a frame (events without an ``event_id`` get a random one, times
    in naive UTC) and the rows that break the amount rule, with the reason."""
    kinds = np.array([e["event_type"] for e in events], dtype=object)
    amounts = [e.get("amount") for e in events]
    has_amount = np.array([a is not None for a in amounts], dtype=bool)
    purchase = kinds == PURCHASE
    broken = {
        int(i): "amount: a purchase needs an amount" for i in np.flatnonzero(purchase & ~has_amount)
    }
    broken.update(
        (int(i), f"amount: only purchase events carry an amount, not {kinds[i]!r}")
        for i in np.flatnonzero(~purchase & has_amount)
    )
    stamps = pd.to_datetime([e["timestamp"] for e in events], utc=True)
    frame = pd.DataFrame(
        {
            EVENT_ID: [e.get("event_id") or f"auto-{uuid.uuid4().hex}" for e in events],
            CUSTOMER_ID: pd.Series([e["customer_id"] for e in events], dtype="str"),
            TIMESTAMP: stamps.tz_localize(None).as_unit("us"),
            EVENT_TYPE: pd.Series(kinds, dtype="str"),
            AMOUNT: np.array([np.nan if a is None else a for a in amounts], dtype=np.float64),
        }
    )
    return frame, broken


def _model_version(model_dir: Path, manifest: dict[str, Any]) -> str:
    """``<model>-<first 12 hex of the manifest's sha256>``."""
    digest = hashlib.sha256((model_dir / MANIFEST).read_bytes()).hexdigest()[:12]
    return f"{manifest['model']}-{digest}"


def _freeze_heap() -> None:
    """Move the objects alive now (the store's history, the model) out of the collector's
    reach: a full collection over millions of long-lived objects otherwise pauses a request
    for tens of milliseconds, which is what a GET's p99 showed."""
    gc.collect()
    gc.freeze()
