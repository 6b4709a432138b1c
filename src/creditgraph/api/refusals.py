"""``RefusalAudit``: every refused ``/v1/`` request is an audit entry.

400 (no ``X-Purpose``, a bad header or body), 401 (no or bad key), 403 (wrong role), 413
(body too large), 422 (invalid request) and 429 (rate limit, bulkhead) are recorded with
who asked (the verified key where there is one; for a 401, the key id the caller claimed,
never the secret), the route and the status. Outermost but for the metrics, so it sees the
refusals of the body guard and the bulkheads as well as the routes'. A route that audits its
own outcome (an investigator look-up that was invalid) leaves a second, HTTP-level entry.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditgraph.api.deps import PRINCIPAL
from creditgraph.api.keys import Principal

REFUSALS = frozenset({400, 401, 403, 413, 422, 429})
_CLAIM_MAX = 64
#: Routes whose path names an account (``/v1/accounts/{id}...``, ``/v1/subjects/{id}``).
_ACCOUNT_PATHS = ("/v1/accounts/", "/v1/subjects/")


def accounts_in_path(path: str) -> list[str]:
    """The account a path names, so the entry lists it (the log then writes a pseudonym
    in its place, also in the target)."""
    for prefix in _ACCOUNT_PATHS:
        if path.startswith(prefix):
            account = path[len(prefix) :].split("/", 1)[0].strip()
            return [account] if account else []
    return []


def claimed_key_id(scope: Scope) -> str | None:
    """The key id in an ``Authorization: Bearer cg_<id>_<secret>`` header, unverified."""
    for k, v in scope["headers"]:
        if k == b"authorization":
            _, _, key = v.decode("latin-1").partition(" ")
            parts = key.strip().split("_", 2)
            return parts[1][:_CLAIM_MAX] if len(parts) == 3 and parts[1] else None
    return None


class RefusalAudit:
    """Record refused ``/v1/`` requests in the audit log (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if status in REFUSALS:
                self.record(scope, status)

    @staticmethod
    def record(scope: Scope, status: int) -> None:
        """Audit the refusal of the request of ``scope`` with ``status``."""
        state = getattr(scope["app"].state, "api", None)
        if state is None:  # before the lifespan ran: nothing to write to
            return
        principal: Principal | None = scope.get(PRINCIPAL)
        purpose = None
        for k, v in scope["headers"]:
            if k == b"x-purpose":
                purpose = v.decode("latin-1")[:500]
        state.audit.record(
            principal=principal,
            action="http.refused",
            target=f"{scope['method']} {scope['path']}",
            result=str(status),
            purpose=purpose,
            claimed_key_id=None if principal is not None else claimed_key_id(scope),
            accounts=accounts_in_path(scope["path"]),
        )
