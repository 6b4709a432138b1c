"""``PageHeaders``: the investigator page (``/ui``) is sent with a Content-Security-Policy
(scripts, styles, data only from this origin; never framed), ``nosniff`` and no referrer.

The page loads only its own files (app.js, app.css, the vendored Cytoscape) and calls the
API on its own origin, so ``'self'`` is all it needs. Styles also allow inline: Cytoscape
sets element styles at run time. Only ``/ui`` paths: the API's JSON needs none of this.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditgraph.web import UI_PATH

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),  # for browsers without frame-ancestors
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class PageHeaders:
    """Add ``HEADERS`` to every response under ``/ui`` (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != UI_PATH and not path.startswith(UI_PATH + "/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
