"""Dependency shortcuts for routes: ``Annotated[..., Depends()]`` in one place.

They are ``async def`` on purpose: they do no blocking I/O, and FastAPI would run a plain
``def`` dependency in the thread pool (a thread hop per dependency per request).

Roles: ``payment``, ``investigator``, ``admin``. ``require_role("investigator")`` accepts an
investigator key or an admin key (admin is allowed everywhere); the README has the matrix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from creditgraph.api.audit import AuditLog
from creditgraph.api.keys import ROLES, Principal
from creditgraph.api.state import ApiState
from creditgraph.store.base import GraphStore

__all__ = [
    "AuditDep",
    "Principal",
    "StateDep",
    "StoreDep",
    "require_role",
]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cg_...`")


async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_store(state: StateDep) -> GraphStore:
    """The open store; 503 (``StoreUnavailable``) while the store is unreachable."""
    return state.serving.store


async def get_audit(state: StateDep) -> AuditLog:
    return state.audit


StoreDep = Annotated[GraphStore, Depends(get_store)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]


def allowed_roles(*roles: str) -> frozenset[str]:
    """``roles`` plus admin; ``ValueError`` for an unknown role (a programming error)."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}")
    return frozenset(roles) | {"admin"}


#: Where ``api.limits.BodyGuard`` leaves the principal it verified (``scope[PRINCIPAL]``).
PRINCIPAL = "creditgraph.principal"


def authorize(principal: Principal, allowed: frozenset[str]) -> Principal:
    """``principal`` if its role is in ``allowed``; 403 otherwise."""
    if principal.role not in allowed:
        raise HTTPException(
            403, f"role {principal.role!r} may not do this (needs {', '.join(sorted(allowed))})"
        )
    return principal


def authenticate(state: ApiState, authorization: str | None, allowed: frozenset[str]) -> Principal:
    """The caller of an ``Authorization`` header value: 401 without a valid key, 403 for a
    valid key of a role not in ``allowed``."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise HTTPException(
            401,
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = state.keys.verify(key.strip())
    if principal is None:
        raise HTTPException(
            401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return authorize(principal, allowed)


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys of ``roles`` (and admin); 401 without a valid key, 403
    for a valid key of another role."""
    allowed = allowed_roles(*roles)

    async def dependency(
        request: Request,
        state: StateDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
        # Who is refused a role is audited too (``api.refusals``): verify, keep, then check.
        principal = authenticate(state, header, allowed_roles(*ROLES))
        request.scope[PRINCIPAL] = principal
        return authorize(principal, allowed)

    return dependency
