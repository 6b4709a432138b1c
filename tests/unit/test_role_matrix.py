"""The README's role matrix covers every endpoint the app serves, with the roles the code
admits (issue 15: "the role matrix in the README covers every new endpoint")."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from creditgraph.api.app import create_app
from creditgraph.api.keys import ROLES
from creditgraph.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
METHOD = re.compile(r"^(GET|POST|PUT|PATCH|DELETE)\s+(/\S*)$")
Endpoint = tuple[str, str]  # (method, path with every {param} as {})


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0]).rstrip("/") or "/"


def _roles_in(fn: Any) -> frozenset[str] | None:
    """The role set a function closes over or names as a global (``require_role``'s
    ``allowed``; the risk route's ``_ALLOWED``, which skips dependencies for speed)."""
    if not inspect.isfunction(fn):
        return None
    cv = inspect.getclosurevars(fn)
    for value in [*cv.nonlocals.values(), *cv.globals.values()]:
        if isinstance(value, frozenset) and value and value <= set(ROLES):
            return value
    return None


def _allowed(route: APIRoute) -> frozenset[str] | None:
    """The roles admitted on ``route`` (None: no key needed), from its dependency tree."""
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        found = _roles_in(dep.call)
        if found is not None:
            return found
        stack += dep.dependencies
    return None


def _walk(routes: list[Any], out: dict[Endpoint, frozenset[str] | None]) -> None:
    for r in routes:
        if isinstance(r, APIRoute):
            for m in r.methods or ():
                out[(m, _norm(r.path))] = _allowed(r)
        elif isinstance(r, Mount):
            out[("GET", _norm(r.path))] = None
        elif isinstance(r, Route):
            for m in r.methods or ():
                if m != "HEAD":
                    out[(m, _norm(r.path))] = None
        elif hasattr(r, "original_router"):  # an included router (FastAPI >= 0.13x)
            _walk(r.original_router.routes, out)


def app_endpoints(app: FastAPI) -> dict[Endpoint, frozenset[str] | None]:
    """Every (method, path) the app routes, with the roles admitted; FastAPI's own docs
    pages are left out (the README describes them apart)."""
    out: dict[Endpoint, frozenset[str] | None] = {}
    _walk(app.router.routes, out)
    for path, ops in app.openapi()["paths"].items():  # the published spec, as a cross-check
        for m in ops:
            out.setdefault((m.upper(), _norm(path)), None)
    own = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    return {k: v for k, v in out.items() if k[1] not in {_norm(p) for p in own if p}}


def readme_matrix(text: str) -> dict[Endpoint, str]:
    """(method, path) → the roles cell, from the README table headed ``endpoint | what |
    roles``. A cell may list several endpoints; a path without a method takes the one
    before it (```POST /v1/transfers`, `/v1/links```)."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| endpoint | what | roles |"))
    out: dict[Endpoint, str] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        method = None
        for code in re.findall(r"`([^`]*)`", cells[0]):
            m = METHOD.match(code.strip())
            if m:
                method, path = m.group(1), m.group(2)
            elif code.startswith("/") and method:
                path = code
            else:
                continue
            out[(method, _norm(path))] = cells[-1]
    return out


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[Endpoint, frozenset[str] | None]:
    return app_endpoints(create_app(Settings(data_dir=tmp_path_factory.mktemp("data"))))


def test_the_walk_finds_the_known_endpoints(
    endpoints: dict[Endpoint, frozenset[str] | None],
) -> None:
    # The enumeration itself must see the app (a walk that found nothing would pass below).
    assert endpoints[("POST", "/v1/risk/transfer")] == frozenset({"payment", "admin"})
    assert endpoints[("DELETE", "/v1/subjects/{}")] == frozenset({"admin"})
    assert endpoints[("GET", "/healthz")] is None
    assert len(endpoints) >= 30


def test_every_endpoint_is_in_the_readme_role_matrix_with_its_roles(
    endpoints: dict[Endpoint, frozenset[str] | None],
) -> None:
    matrix = readme_matrix(README.read_text())
    missing = sorted(f"{m} {p}" for m, p in endpoints if (m, p) not in matrix)
    assert not missing, f"README role matrix lacks: {', '.join(missing)}"
    wrong = []
    for key, allowed in endpoints.items():
        said = set(re.findall(r"\b(" + "|".join(ROLES) + r")\b", matrix[key]))
        if allowed is None and (said or "none" not in matrix[key]):
            wrong.append(f"{key}: needs no key, README says {matrix[key]!r}")
        elif allowed is not None and said != allowed:
            wrong.append(f"{key}: admits {sorted(allowed)}, README says {sorted(said)}")
    assert not wrong, "\n".join(wrong)
    stale = sorted(f"{m} {p}" for m, p in matrix if (m, p) not in endpoints)
    assert not stale, f"README role matrix names endpoints the app does not serve: {stale}"
