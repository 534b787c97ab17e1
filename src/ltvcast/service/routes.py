"""The FastAPI application: routes, authentication, error answers and lifespan.

Durable event ingestion, per-customer forecasts, one-off scoring, atomic model reload,
health and metrics; the state behind them is :class:`~ltvcast.service.state.Service`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ltvcast.exceptions import ArtifactError, InsufficientDataError, LTVError, StoreError
from ltvcast.models.clv import MAX_DISCOUNT_RATE
from ltvcast.service.metrics import BodyLimitMiddleware, TimingMiddleware
from ltvcast.service.state import MAX_FUTURE, HTTPProblem, Service
from ltvcast.service.wire import (
    CustomerOut,
    EventsIn,
    EventsOut,
    Forecast,
    HealthOut,
    NewCustomerOut,
    Problem,
    RecommendationsOut,
    ReloadOut,
)
from ltvcast.timeframe import parse_horizons

log = logging.getLogger("ltvcast.service")

_WHY = {
    401: "No bearer token.",
    403: "Wrong token.",
    404: "Unknown customer.",
    409: "A reload is running, or the new model failed to load (the old one serves).",
    413: "Body or batch over the limit.",
    422: "Invalid request (the detail names the field).",
    503: "The event store is unavailable: nothing was acknowledged.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers of a route (all shaped as :class:`Problem`)."""
    return {code: {"model": Problem, "description": _WHY[code]} for code in codes}


_AUTH = (401, 403)
HorizonsQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Comma-separated horizons, e.g. 30d,90d,1y: the forecast at each "
        "(BTYD models).",
    ),
]
DiscountQuery = Annotated[
    float | None,
    Query(
        ge=0,
        le=MAX_DISCOUNT_RATE,
        description="Annual discount rate, continuously compounded: adds discounted_value.",
    ),
]


def create_app(
    model_dir: str | Path,
    db_path: str | Path,
    *,
    token: str | None,
    max_body_bytes: int = 8 * 1024 * 1024,
    max_batch: int = 10_000,
    max_future: pd.Timedelta = MAX_FUTURE,
    handle_sighup: bool = False,
) -> FastAPI:
    """Build the service application.

    Parameters
    ----------
    model_dir
        A model directory written by ``ltvcast train``; ``POST /v1/admin/reload`` reloads it.
    db_path
        The DuckDB store (created when absent); per-customer running aggregates are read from
        it at start, a customer's rows when a forecast needs them.
    token
        Bearer token required on every ``/v1`` route; ``None`` disables auth (the CLI only
        allows that with ``--insecure``).
    max_body_bytes, max_batch
        Request body limit (413 above it) and most events per ``POST /v1/events``.
    max_future
        How far after the server's clock an event may be dated (later ones are refused).
    handle_sighup
        Reload the model on SIGHUP (the CLI sets it; tests leave it off).
    """
    service = Service(Path(model_dir), db_path, max_future=max_future)
    expected = None if token is None else token.encode()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if handle_sighup:
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.create_task(_reload_quietly(service))
            )
        service.start()
        try:
            yield
        finally:
            if handle_sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            await service.aclose()

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
        if isinstance(exc, StoreError):
            status = 503
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
        if isinstance(exc, MemoryError):  # a machine limit, not a bug: say so, in one line
            log.error("out of memory while answering a request")
            return JSONResponse({"detail": "out of memory: the server cannot answer now"}, 503)
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"detail": "internal error (see the server log)"}, 500)

    @app.post(
        "/v1/events",
        dependencies=secured,
        tags=["events"],
        responses=_errors(*_AUTH, 413, 422, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": EventsIn.model_json_schema()}},
            }
        },
    )
    async def post_events(request: Request) -> EventsOut:
        """Store events durably (committed before this answer) and update forecasts.

        Ingestion runs on the event loop in short steps, the DuckDB write on a worker thread,
        so reads keep their pace while batches arrive.
        """
        body = await request.body()
        try:
            parsed = EventsIn.model_validate_json(body)
        except ValidationError as err:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
            ) from None
        if len(parsed.events) > max_batch:
            raise HTTPProblem(
                413, f"events: {len(parsed.events)} events exceed the batch limit of {max_batch}"
            )
        return await service.ingest(parsed.events)

    @app.get(
        "/v1/customers/{customer_id:path}/recommendations",
        dependencies=secured,
        tags=["forecasts"],
        responses=_errors(*_AUTH, 404, 422),
    )
    def get_recommendations(
        customer_id: str,
        top: Annotated[int, Query(ge=1, le=100, description="Items to recommend.")] = 10,
    ) -> RecommendationsOut:
        """The customer's next best action (and why) and top items, at their forecast's
        as-of. Declared before the forecast route, whose ``path`` id would take the suffix."""
        return service.recommendations(customer_id, top)

    @app.get(
        "/v1/customers/{customer_id:path}",
        dependencies=secured,
        tags=["forecasts"],
        responses=_errors(*_AUTH, 404, 422),
    )
    async def get_customer(
        customer_id: str,
        explain: Annotated[
            int, Query(ge=0, le=50, description="Add this many top drivers of the forecast.")
        ] = 0,
        horizons: HorizonsQuery = None,
        discount_rate: DiscountQuery = None,
        intervals: Annotated[
            bool,
            Query(
                description="Add value_p10 and value_p90 (BTYD models: the expected value's "
                "80% interval under parameter uncertainty)."
            ),
        ] = False,
    ) -> CustomerOut:
        """The customer's forecast at the stream clock (the latest event time seen)."""
        spans = None if horizons is None else parse_horizons(horizons)
        return service.customer(customer_id, explain, spans, discount_rate, intervals)

    @app.get(
        "/v1/new-customer",
        dependencies=secured,
        tags=["forecasts"],
        responses=_errors(*_AUTH, 422),
    )
    def get_new_customer(
        horizons: HorizonsQuery = None, discount_rate: DiscountQuery = None
    ) -> NewCustomerOut:
        """What a customer who has just made a first purchase is expected to do (BTYD
        models; default horizon: the model's)."""
        spans = None if horizons is None else parse_horizons(horizons)
        return service.new_customer(spans, discount_rate)

    @app.post(
        "/v1/score", dependencies=secured, tags=["forecasts"], responses=_errors(*_AUTH, 413, 422)
    )
    def post_score(payload: Annotated[dict[str, Any], Body()]) -> Forecast:
        """Score a customer described in the request, without storing anything."""
        return service.score(payload)

    @app.post(
        "/v1/admin/reload", dependencies=secured, tags=["admin"], responses=_errors(*_AUTH, 409)
    )
    def post_reload() -> ReloadOut:
        """Load the model directory again and swap it in atomically."""
        return service.reload()

    @app.get("/healthz", tags=["ops"], responses=_errors(503))
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
