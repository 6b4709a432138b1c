"""Bulkheads: the payment path never waits behind investigator or ingest work.

Every ``/v1/`` request belongs to a lane by its route (and, for the score look-up both
sides use, by the key's role): ``payment`` (the risk check, a payment key's score look-up),
``investigator`` (look-ups, graph views, rings) or ``ingest`` (live writes). Per lane:
- a per-key token bucket (``rate_limit_<lane>_per_s``, ``rate_limit_burst_s`` seconds'
  worth): past it, 429 with ``Retry-After`` (payment: off by default);
- investigator and ingest only: at most ``<lane>_concurrency`` requests run at once in
  this process; one more waits up to ``bulkhead_queue_s`` for a slot, then 429.
The payment lane has no concurrency cap: its decisions run inline or on its own scoring
slot (``Serving.scoring_limiter``), and the embedded store reads on pooled connections of
their own, so the caps here only ever hold back the other lanes. Per process, like the
idempotency cache: with several workers each has its own buckets and slots.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import Literal

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from creditgraph.api.deps import PRINCIPAL
from creditgraph.api.errors import error_body
from creditgraph.api.keys import Principal
from creditgraph.api.limits import INGEST_PATHS
from creditgraph.api.routes.risk import RISK_PATH
from creditgraph.config import Settings

Lane = Literal["payment", "investigator", "ingest"]
_INVESTIGATOR_PREFIXES = ("/v1/accounts/", "/v1/paths", "/v1/rings", "/v1/graph")


def lane_of(method: str, path: str, role: str | None) -> Lane | None:
    """The lane of a request; None for the rest (health, models, admin)."""
    if path == RISK_PATH:
        return "payment"
    if method == "POST" and path in INGEST_PATHS:
        return "ingest"
    if path.startswith("/v1/accounts/"):
        if method == "PATCH":
            return "ingest"  # an admin's revision of an account is a write
        if path.endswith("/score"):
            return "payment" if role == "payment" else "investigator"
    if path.startswith(_INVESTIGATOR_PREFIXES):
        return "investigator"
    return None


class TokenBuckets:
    """One token bucket per key: ``rate`` tokens a second, at most ``capacity`` held."""

    def __init__(self, rate: float, burst_s: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * burst_s)
        self._buckets: dict[str, tuple[float, float]] = {}  # valid key ids only: bounded

    def take(self, key: str, now: float) -> float:
        """0 when a token was taken; else the seconds until one is there."""
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


class Gate:
    """At most ``limit`` holders; a newcomer waits up to a timeout for a slot, first come
    first served. Waiting is a future resolved by the slot's release or by a timer (never a
    cancelled await), on whichever event loop the request runs."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()

    async def enter(self, timeout_s: float) -> bool:
        if self.running < self.limit and not self._waiters:
            self.running += 1
            return True
        if timeout_s <= 0:
            return False
        loop = asyncio.get_running_loop()
        slot: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(slot)
        timer = loop.call_later(timeout_s, _resolve, slot, False)
        try:
            granted = await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled() and slot.result():
                self.leave()  # handed a slot while being cancelled: pass it on
            raise
        finally:
            timer.cancel()
            if slot in self._waiters:
                self._waiters.remove(slot)
        return granted

    def leave(self) -> None:
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():
                _resolve(slot, True)  # the slot passes to the next waiter as it is
                return
        self.running -= 1


def _resolve(slot: asyncio.Future[bool], value: bool) -> None:
    if not slot.done():
        slot.set_result(value)


class Bulkheads:
    """Rate limits and concurrency caps per lane (module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.queue_s = settings.bulkhead_queue_s
        rates: dict[Lane, float] = {
            "payment": settings.rate_limit_payment_per_s,
            "investigator": settings.rate_limit_investigator_per_s,
            "ingest": settings.rate_limit_ingest_per_s,
        }
        self.buckets: dict[Lane, TokenBuckets] = {
            lane: TokenBuckets(rate, settings.rate_limit_burst_s)
            for lane, rate in rates.items()
            if rate > 0
        }
        self.gates: dict[Lane, tuple[Gate, str]] = {
            "investigator": (Gate(settings.investigate_concurrency), "INVESTIGATE_CONCURRENCY"),
            "ingest": (Gate(settings.ingest_concurrency), "INGEST_CONCURRENCY"),
        }
        self._payment_free = "payment" not in self.buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self._payment_free and scope["path"] == RISK_PATH):
            await self.app(scope, receive, send)  # the hot path: nothing to do
            return
        path: str = scope["path"]
        if not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        principal = scope.get(PRINCIPAL) or _principal(scope)
        lane = lane_of(scope["method"], path, None if principal is None else principal.role)
        if lane is None or principal is None:  # no valid key: the route answers 401
            await self.app(scope, receive, send)
            return
        scope[PRINCIPAL] = principal
        buckets = self.buckets.get(lane)
        if buckets is not None:
            wait = buckets.take(principal.key_id, time.monotonic())
            if wait > 0:
                rate = buckets.rate
                await _too_many(
                    send,
                    f"key {principal.key_id} is over the {lane} rate limit of {rate:g} "
                    f"requests per second (CREDITGRAPH_RATE_LIMIT_{lane.upper()}_PER_S)",
                    f"rate_limit_{lane}_per_s",
                    wait,
                )
                return
        gated = self.gates.get(lane)
        if gated is None:
            await self.app(scope, receive, send)
            return
        gate, setting = gated
        if not await gate.enter(self.queue_s):
            await _too_many(
                send,
                f"at most {gate.limit} {lane} requests run at once on this server "
                f"(CREDITGRAPH_{setting}) and no slot freed up within {self.queue_s:g} s",
                setting.lower(),
                1.0,
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            gate.leave()


def _principal(scope: Scope) -> Principal | None:
    """The verified caller of a request without a body (BodyGuard verified the rest)."""
    for k, v in scope["headers"]:
        if k == b"authorization":
            scheme, _, key = v.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            found: Principal | None = scope["app"].state.api.keys.verify(key.strip())
            return found
    return None


async def _too_many(send: Send, message: str, cap: str, retry_after_s: float) -> None:
    body = orjson.dumps(error_body("too_many_requests", message, cap=cap))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(max(1, math.ceil(retry_after_s))).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
