"""``create_app(settings)``: the FastAPI application with its lifespan.

The lifespan opens the store (short timeouts: see degraded mode) and loads the champion into
a ``RiskEngine`` once, both through ``services.serving.Serving``, and runs a background probe
that flips degraded mode on and off and retries a model load that failed at start. Nothing
is built at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.telemetry import TelemetryConfig
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditgraph.api import openapi_doc
from creditgraph.api.bulkheads import Bulkheads
from creditgraph.api.errors import install_error_handlers
from creditgraph.api.headers import PageHeaders
from creditgraph.api.lane import MatchedRoute, RiskLane, answer
from creditgraph.api.limits import BodyGuard
from creditgraph.api.refusals import RefusalAudit
from creditgraph.api.routes import ROUTERS
from creditgraph.api.routes.risk import RISK_PATH
from creditgraph.api.state import ApiState, Metrics
from creditgraph.config import Settings
from creditgraph.errors import CreditGraphError
from creditgraph.web import mount_ui

log = logging.getLogger("creditgraph.api")

DESCRIPTION = """
Pre-transfer risk decisions for the payment service, account scores, live ingest and model
administration. Authenticate with `Authorization: Bearer <key>` (keys from
`creditgraph keys create --role payment|investigator|admin --name NAME`).
"""


class MetricsMiddleware:
    """Latency histogram per route template (pure ASGI: no per-request task overhead)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # labels() costs a lock and a tuple build per call: keep each child once.
        self._children: dict[tuple[str, str, int], Any] = {}

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
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            key = (scope["method"], path, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.metrics.latency.labels(
                    scope["method"], path, str(status)
                )
            child.observe(time.perf_counter() - start)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": path,
                        "status": status,
                        "ms": round((time.perf_counter() - start) * 1e3, 3),
                    },
                )


class RiskFastPath:
    """Serves ``POST /v1/risk/transfer`` with the route's own function, before FastAPI's
    routing and dependency machinery (the payment service's hot path; docs/benchmarks.md has
    the per-request cost of each layer). The FastAPI route stays registered: it documents the
    endpoint in OpenAPI and serves it when this middleware is not installed. Errors map
    through the same handlers as everywhere else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = MatchedRoute(RISK_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != RISK_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        response = await answer(Request(scope, receive))
        await response(scope, receive, send)


class CreditGraphAPI(FastAPI):
    """FastAPI with ``RiskLane`` in front: ordinary ``POST /v1/risk/transfer`` requests are
    served before FastAPI's and the app's middleware; everything else goes the usual way."""

    lane: RiskLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        if (
            lane is not None
            and scope["type"] == "http"
            and scope["path"] == RISK_PATH
            and scope["method"] == "POST"
        ):
            await lane(scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)


async def _probe_loop(state: ApiState, stop: asyncio.Event) -> None:
    """Every ``store_probe_interval_s``: act on erasures announced by other processes, probe
    the store, and load the model if none is.

    Stopped by ``stop``, never cancelled: cancelling the await would leave the probe's
    worker thread running on the driver while shutdown closes it underneath."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), state.settings.store_probe_interval_s)
        if stop.is_set():
            return
        forgotten = await run_in_threadpool(state.apply_erasures)
        if forgotten:
            log.info("erased accounts dropped from memory", extra={"accounts": len(forgotten)})
        ok = await run_in_threadpool(state.serving.probe)
        if ok and state.serving.engine is None and not stop.is_set():
            with contextlib.suppress(CreditGraphError):
                await run_in_threadpool(state.serving.reload)


_NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def create_app(settings: Settings, *, risk_lane: bool = True) -> FastAPI:
    """The API over ``settings``' store and model registry; ``risk_lane`` False serves the
    risk route through the whole middleware stack too (the lane's tests compare the two)."""

    metrics = Metrics()  # no I/O: built here so the middleware can hold it from the start

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ApiState(settings, metrics)
        app.state.api = state
        if await run_in_threadpool(state.serving.probe):
            try:
                await run_in_threadpool(state.serving.reload)
            except CreditGraphError as e:
                log.warning("serving without a model", extra={"error": str(e)})
        stop = asyncio.Event()
        task = asyncio.create_task(_probe_loop(state, stop))
        try:
            yield
        finally:
            stop.set()
            await task  # lets a probe or reload in flight finish before the store closes
            await run_in_threadpool(state.close)

    app = CreditGraphAPI(
        title="creditgraph",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Swagger UI / ReDoc pages load their scripts from a CDN: not in production.
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        telemetry=None if settings.otel_telemetry else _NO_TELEMETRY,
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    mount_ui(app)
    openapi_doc.install(app)
    # Added last = outermost: metrics see the fast path's requests too, and the guard's
    # 401/413 come before the fast path or any route reads a body; the bulkheads' 429s
    # come after the key is known and before any work.
    app.add_middleware(RiskFastPath)
    app.add_middleware(Bulkheads, settings=settings)
    app.add_middleware(BodyGuard, settings=settings)
    app.add_middleware(PageHeaders)
    app.add_middleware(RefusalAudit)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if risk_lane:
        app.lane = RiskLane(app, settings, metrics)
    return app
