"""Prometheus text metrics and the two ASGI middlewares in front of every route: request
timing (per route template and status) and the request body size limit."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Latency histogram bucket upper bounds, seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: HTTP methods counted under their own name; any other is counted as "other", so that
#: requests with invented methods cannot grow the metric series without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Counters and latency histograms, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: defaultdict[tuple[str, str], list[int]] = defaultdict(
            lambda: [0] * (len(BUCKETS) + 1)
        )
        self._sums: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.gauges: dict[str, float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        with self._lock:
            self.requests[(method, route, status)] += 1
            self._buckets[(method, route)][bisect_left(BUCKETS, seconds)] += 1
            self._sums[(method, route)] += seconds

    def inc(self, name: str, by: int = 1) -> None:
        """Add to a counter (``ltvcast_<name>_total``)."""
        with self._lock:
            self.counters[name] += by

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        with self._lock:
            lines = [
                "# HELP ltvcast_http_requests_total HTTP requests by method, route and status.",
                "# TYPE ltvcast_http_requests_total counter",
            ]
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(
                    f'ltvcast_http_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP ltvcast_http_request_duration_seconds Request latency.",
                "# TYPE ltvcast_http_request_duration_seconds histogram",
            ]
            for (method, route), counts in sorted(self._buckets.items()):
                labels = f'method="{method}",route="{route}"'
                running = 0
                for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(
                        f'ltvcast_http_request_duration_seconds_bucket{{{labels},le="{le}"}} '
                        f"{running}"
                    )
                lines.append(f"ltvcast_http_request_duration_seconds_count{{{labels}}} {running}")
                lines.append(
                    f"ltvcast_http_request_duration_seconds_sum{{{labels}}} "
                    f"{self._sums[(method, route)]:.6f}"
                )
            for name, value in sorted(self.counters.items()):
                lines += [f"# TYPE ltvcast_{name}_total counter", f"ltvcast_{name}_total {value}"]
            for name, gauge in sorted(self.gauges.items()):
                lines += [f"# TYPE ltvcast_{name} gauge", f"ltvcast_{name} {gauge:g}"]
        return "\n".join(lines) + "\n"


class TimingMiddleware:
    """Record every HTTP request's latency under its route template (``/v1/customers/{id}``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path_format", None) or "unmatched"  # a template: bounded
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe(method, path, status, time.perf_counter() - start)


class BodyLimitMiddleware:
    """Answer 413 to a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        received = 0
        started = False
        answered = False  # the 413 went out: the app's own answer is dropped

        async def limited_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request" and not answered:
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    answered = True
                    await _too_large(send, self.max_bytes)
                    return {"type": "http.disconnect"}  # the app stops reading the body
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception:
            if not answered:
                raise  # the app's own failure; after a 413 a disconnect error is expected


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail":"request body exceeds the limit of {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
