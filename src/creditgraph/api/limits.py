"""``BodyGuard``: every ``/v1/`` request with a body is authenticated, then bounded, before
any route (the risk fast path included) reads a byte of it.

Order: a body without a valid key is a 401 unread; a ``Content-Length`` over the route's
limit is a 413 unread; a chunked body is counted while it streams and cut off with a 413 at
the limit; a JSON body nesting deeper than ``max_json_depth`` is a 400. The role check (403)
stays with the route. What passes is replayed to the app as received, so routes read it as
before. Why here: FastAPI reads and parses a body before it resolves the auth dependency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditgraph.api.deps import PRINCIPAL
from creditgraph.api.errors import error_body
from creditgraph.api.routes.risk import RISK_PATH
from creditgraph.config import Settings

#: Routes taking a batch of up to 10,000 items.
INGEST_PATHS = frozenset({"/v1/transfers", "/v1/links", "/v1/accounts", "/v1/labels"})

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether ``body`` (JSON) nests deeper than ``limit`` arrays / objects. Bodies with
    fewer than ``limit`` brackets cannot (the risk request: one) and cost two counts; the
    rest are stripped to their brackets in C and peeled one level per regex pass. Malformed
    nesting returns False: the parser will name it."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    skeleton = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    for _ in range(limit):
        peeled = _EMPTY_PAIR.sub(b"", skeleton)
        if not peeled or peeled == skeleton:
            return False
        skeleton = peeled
    return True


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


class BodyGuard:
    """Authenticate and bound request bodies before routes read them (module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.default_limit = settings.max_body_bytes
        self.limits = {RISK_PATH: settings.max_body_risk_bytes} | dict.fromkeys(
            INGEST_PATHS, settings.max_body_ingest_bytes
        )
        self.max_depth = settings.max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        length, auth, chunked = body_headers(scope)
        if not chunked and (length is None or length == b"0"):
            await self.app(scope, receive, send)  # no body: the route authenticates
            return
        scheme, _, key = (auth or b"").decode("latin-1").partition(" ")
        principal = None
        if scheme.lower() == "bearer":
            principal = scope["app"].state.api.keys.verify(key.strip())
        if principal is None:
            await _refuse(
                send,
                401,
                "unauthorized",
                "a request body needs a valid API key: send Authorization: Bearer <key>",
                {"WWW-Authenticate": "Bearer"},
            )
            return
        scope[PRINCIPAL] = principal  # the risk fast path need not verify the key again
        limit = self.limits.get(scope["path"], self.default_limit)
        if length is not None and not chunked:
            try:
                declared = int(length)
            except ValueError:
                await _refuse(send, 400, "bad_request", "Content-Length is not a number")
                return
            if declared > limit:
                await _too_large(send, limit)
                return
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            await _too_large(send, limit)
            return
        if message.get("more_body", False):
            parts = [body]
            size = len(body)
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await _too_large(send, limit)
                    return
                parts.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(parts)
        if body.count(b"{") + body.count(b"[") > self.max_depth and json_depth_exceeds(
            body, self.max_depth
        ):
            await _refuse(
                send, 400, "too_deep", f"the JSON body nests deeper than {self.max_depth} levels"
            )
            return
        await self.app(scope, Replay(body, receive), send)


def body_headers(scope: Scope) -> tuple[bytes | None, bytes | None, bool]:
    """(Content-Length, Authorization, chunked?) of a request, in one pass over its headers
    (this runs on every payment request)."""
    length = auth = None
    chunked = False
    for k, v in scope["headers"]:
        if k == b"content-length":
            length = v
        elif k == b"authorization":
            auth = v
        elif k == b"transfer-encoding":
            chunked = True
    return length, auth, chunked


class Replay:
    """The body as one message, then the real ``receive`` (for a disconnect)."""

    __slots__ = ("body", "receive")

    def __init__(self, body: bytes | None, receive: Receive) -> None:
        self.body = body
        self.receive = receive

    async def __call__(self) -> Message:
        body, self.body = self.body, None
        if body is None:
            return await self.receive()
        return {"type": "http.request", "body": body, "more_body": False}


async def _too_large(send: Send, limit: int) -> None:
    await _refuse(
        send, 413, "payload_too_large", f"the request body exceeds this route's {limit} bytes"
    )


async def _refuse(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = orjson.dumps(error_body(code, message))
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    # The unread rest of the body makes the connection unusable: tell the client it closes.
    raw.append((b"connection", b"close"))
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
