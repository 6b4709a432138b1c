"""``RiskLane``: the payment service's ``POST /v1/risk/transfer`` served in front of the
whole middleware stack when the request is an ordinary one.

Each ASGI layer a request passes costs a call, an await and a wrapped ``send`` both ways;
FastAPI's own three and the app's six cost about as much per request as a bare FastAPI
endpoint does in all (docs/benchmarks.md, "Session 10"), and on the payment path that is a
fifth of the whole answer. The lane does, for the one hot route, what those layers would do
for it, in one place:

- the metrics middleware's latency observation (same histogram, same labels);
- the body guard's checks: a declared ``Content-Length`` within the route's limit, a valid
  ``Bearer`` key, the JSON depth limit;
- the bulkheads: none apply to the payment lane unless a payment rate limit is set;
- the refusal audit for the route's own refusals (a 422 for an invalid body, say);
- the error handlers' mapping (``api.errors.error_response``), as ``RiskFastPath`` does.

Anything else goes to the full stack, unchanged: no ``Content-Length`` or a chunked body, a
length over the limit, a missing, invalid or wrong-role key (the body guard and the route
refuse it and the refusal is audited there), a body nested too deep (replayed to the stack,
which refuses it), a payment rate limit configured, OpenTelemetry tracing on, or the app not
started. ``tests/api/test_risk_lane.py`` checks the lane answers as the stack does.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from creditgraph.api.deps import PRINCIPAL, allowed_roles
from creditgraph.api.errors import error_response
from creditgraph.api.limits import Replay, body_headers, json_depth_exceeds
from creditgraph.api.refusals import REFUSALS, RefusalAudit
from creditgraph.api.routes.risk import RISK_PATH, check_transfer
from creditgraph.api.state import Metrics
from creditgraph.config import Settings

_ALLOWED = allowed_roles("payment")


async def answer(request: Request) -> Response:
    """The risk route's response to ``request``, its errors mapped as the app's handlers map
    them; anything unmapped propagates (a real 500)."""
    try:
        return await check_transfer(request)
    except Exception as exc:
        mapped = await error_response(request, exc)
        if mapped is None:
            raise
        return mapped


class MatchedRoute:
    """What the metrics read of a matched route."""

    def __init__(self, path: str) -> None:
        self.path = path


class RiskLane:
    """Serves ordinary risk requests of ``app`` ahead of its middleware (module doc)."""

    def __init__(self, app: Any, settings: Settings, metrics: Metrics) -> None:
        self.app = app  # the FastAPI app: its state, and scope["app"] for the route
        self.limit = settings.max_body_risk_bytes
        self.max_depth = settings.max_json_depth
        self.enabled = settings.rate_limit_payment_per_s <= 0 and not settings.otel_telemetry
        self.route = MatchedRoute(RISK_PATH)
        self._latency = metrics.latency
        self._children: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send, full: ASGIApp) -> None:
        """Serve the request, or hand it to ``full`` (the whole stack) untouched."""
        state = getattr(self.app.state, "api", None)
        if not self.enabled or state is None:
            await full(scope, receive, send)
            return
        start = time.perf_counter()
        length, auth, chunked = body_headers(scope)
        if chunked or length is None or auth is None or not length.isdigit():
            await full(scope, receive, send)
            return
        declared = int(length)
        scheme, _, key = auth.decode("latin-1").partition(" ")
        if not 0 < declared <= self.limit or scheme.lower() != "bearer":
            await full(scope, receive, send)
            return
        principal = state.keys.verify(key.strip())
        if principal is None or principal.role not in _ALLOWED:
            await full(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return
        body: bytes = message.get("body", b"")
        while message.get("more_body", False) and len(body) <= self.limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
        if len(body) > self.limit or (
            body.count(b"{") + body.count(b"[") > self.max_depth
            and json_depth_exceeds(body, self.max_depth)
        ):
            await full(scope, Replay(body, receive), send)  # the stack refuses it
            return
        scope["app"] = self.app
        scope[PRINCIPAL] = principal
        scope["route"] = self.route
        status = 500
        try:
            response = await answer(Request(scope, Replay(body, receive)))
            status = response.status_code
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": response.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": response.body})
        finally:
            child = self._children.get(status)
            if child is None:
                child = self._children[status] = self._latency.labels(
                    "POST", RISK_PATH, str(status)
                )
            child.observe(time.perf_counter() - start)
            if status in REFUSALS:
                RefusalAudit.record(scope, status)
