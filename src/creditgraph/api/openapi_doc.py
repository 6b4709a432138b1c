"""What the generated OpenAPI spec cannot know by itself.

- Links: which answer feeds which next call (an ingested account's score, a queued ring's
  details, a registered model's promotion). Clients and generated SDKs read them to chain
  calls; schemathesis follows them in its stateful run (tests/reliability).
- The answers of ``api.limits.BodyGuard``, which sits ahead of routing and so is invisible
  to FastAPI: 400 (JSON too deep) and 413 (body over the route's limit) on every operation
  that takes a body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_ACCOUNT_VIEWS = {
    "AccountScore": ("get", "/v1/accounts/{account_id}/score"),
    "Account": ("get", "/v1/accounts/{account_id}"),
    "Neighbourhood": ("get", "/v1/accounts/{account_id}/neighbourhood"),
    "Transfers": ("get", "/v1/accounts/{account_id}/transfers"),
}

#: (method, path) of a 200 answer -> link name -> (target method, target path, parameters).
LINKS: dict[tuple[str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("post", "/v1/accounts"): {
        name: (m, p, {"account_id": "$request.body#/items/0/account_id"})
        for name, (m, p) in _ACCOUNT_VIEWS.items()
    },
    ("post", "/v1/transfers"): {
        f"Sender{name}": (m, p, {"account_id": "$request.body#/items/0/src"})
        for name, (m, p) in _ACCOUNT_VIEWS.items()
    },
    ("post", "/v1/links"): {
        f"Src{name}": (m, p, {"account_id": "$request.body#/items/0/src"})
        for name, (m, p) in _ACCOUNT_VIEWS.items()
    },
    ("post", "/v1/labels"): {
        "AccountScore": (
            "get",
            "/v1/accounts/{account_id}/score",
            {"account_id": "$request.body#/items/0/account_id"},
        ),
    },
    ("get", "/v1/rings"): {
        "Ring": ("get", "/v1/rings/{ring_id}", {"ring_id": "$response.body#/items/0/ring_id"}),
        "RingStatus": (
            "patch",
            "/v1/rings/{ring_id}",
            {"ring_id": "$response.body#/items/0/ring_id"},
        ),
    },
    ("get", "/v1/models"): {
        "Promote": (
            "post",
            "/v1/models/{version}/promote",
            {"version": "$response.body#/0/version"},
        ),
    },
}


def add_links(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the links above on each source's 200 answer (in place; returned)."""
    paths = spec.get("paths", {})
    for (method, path), links in LINKS.items():
        answer = paths.get(path, {}).get(method, {}).get("responses", {}).get("200")
        if answer is None:
            continue
        answer["links"] = {
            name: {
                "operationId": paths[target][target_method]["operationId"],
                "parameters": params,
            }
            for name, (target_method, target, params) in links.items()
            if target_method in paths.get(target, {})
        }
    return spec


_GUARD = {
    "400": "JSON nested deeper than CREDITGRAPH_MAX_JSON_DEPTH (code too_deep)",
    "413": "Body over this route's limit (CREDITGRAPH_MAX_BODY_*), refused before reading",
}


def add_guard_responses(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the body guard's 400 / 413 on every operation that takes a body."""
    for path, ops in spec.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for op in ops.values():
            responses = op.get("responses", {})
            if "requestBody" not in op or "401" not in responses:
                continue
            for code, text in _GUARD.items():
                # Same error envelope as the route's own 401.
                responses.setdefault(code, {**responses["401"], "description": text})
    return spec


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) carry the links and the guard's
    answers, built once."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_guard_responses(add_links(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
