"""Map the library's error family (and request validation) to HTTP, once, at the edge.

Every error body is ``{"error": {"code", "message", "fields"?}}``; ``fields`` lists
``{"loc": [...], "message": ...}`` per bad field (request validation and ingest rows).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from creditgraph.errors import (
    AccountConflict,
    Conflict,
    CreditGraphError,
    InvalidInput,
    ModelNotReady,
    NotFound,
    ObligationConflict,
    StoreUnavailable,
    TooExpensive,
    TransferConflict,
    ValidationFailed,
)

_STATUS: list[tuple[type[CreditGraphError], int, str]] = [
    (NotFound, 404, "not_found"),
    (TooExpensive, 422, "too_expensive"),
    (InvalidInput, 422, "invalid_input"),
    (Conflict, 409, "conflict"),
    (StoreUnavailable, 503, "store_unavailable"),
    (ModelNotReady, 503, "model_not_ready"),
]


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response serialised by orjson (no per-field pydantic pass)."""
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _status_of(e: CreditGraphError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(e, cls):
            return status, code
    return 500, "internal"


async def _library_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CreditGraphError)
    status, code = _status_of(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationFailed):
        extra["fields"] = [
            {
                "loc": ["body", "items", e.line, *([e.column] if e.column else [])],
                "message": e.reason,
            }
            for e in exc.errors
        ]
        extra["total"] = exc.total
        message = f"{exc.total} invalid item field(s); nothing was written"
    elif isinstance(exc, TransferConflict):  # rows are item indices (``import_records``)
        extra["fields"] = [
            {
                "loc": ["body", "items", c.row, "transfer_id"],
                "message": f"already stored with a different {', '.join(c.fields)}",
                "differing": list(c.fields),
            }
            for c in exc.changed
        ]
        first = exc.changed[0]
        message = (
            f"items.{first.row}: transfer_id {first.transfer_id!r} is already stored with a "
            f"different {', '.join(first.fields)}"
            + (f" (and {len(exc.changed) - 1} more)" if len(exc.changed) > 1 else "")
            + "; nothing was written"
        )
    elif isinstance(exc, AccountConflict):  # rows are item indices (``import_records``)
        extra["fields"] = [
            {
                "loc": ["body", "items", c.row],
                "message": f"already has a different {', '.join(c.fields)}",
                "differing": list(c.fields),
            }
            for c in exc.changed
        ]
        account = exc.changed[0]
        message = (
            f"items.{account.row}: account {account.account_id!r} already has a different "
            f"{', '.join(account.fields)}"
            + (f" (and {len(exc.changed) - 1} more)" if len(exc.changed) > 1 else "")
            + "; a payment key may add accounts and attributes, not change recorded ones "
            "(an admin key may, and every change is versioned); nothing was written"
        )
    elif isinstance(exc, TooExpensive):
        extra["cap"] = exc.cap
        message = str(exc)
    elif isinstance(exc, ObligationConflict):  # rows are item indices (``import_records``)
        extra["fields"] = [
            {"loc": ["body", "items", c.row, "status"], "message": c.reason} for c in exc.refused
        ]
        refused = exc.refused[0]
        message = (
            f"items.{refused.row}: obligation_id {refused.obligation_id!r} {refused.reason}"
            + (f" (and {len(exc.refused) - 1} more)" if len(exc.refused) > 1 else "")
            + "; nothing was written"
        )
    else:
        message = str(exc)
    headers = {"Retry-After": "2"} if status == 503 else None
    return json_response(error_body(code, message, **extra), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"loc": list(err.get("loc", ())), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    first = fields[0] if fields else {"loc": [], "message": "invalid request"}
    where = ".".join(str(x) for x in first["loc"])
    return json_response(
        error_body("invalid_request", f"{where}: {first['message']}", fields=fields),
        status_code=422,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
    return json_response(
        error_body(code.get(exc.status_code, "http_error"), str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def error_response(request: Request, exc: Exception) -> Response | None:
    """The mapped response for one of our errors; None for anything else (a real 500)."""
    if isinstance(exc, CreditGraphError):
        return await _library_error(request, exc)
    if isinstance(exc, RequestValidationError):
        return await _validation_error(request, exc)
    if isinstance(exc, StarletteHTTPException):
        return await _http_error(request, exc)
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(CreditGraphError, _library_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
