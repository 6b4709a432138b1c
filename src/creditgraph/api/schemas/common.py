"""Models shared by the routes: reasons, the error envelope, the id field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from creditgraph.domain import ReasonCode

ID = Field(min_length=1, max_length=128, examples=["acc_000042"])


class ReasonPublic(BaseModel):
    """Why: a stable code, a sentence, and the figures behind it."""

    code: ReasonCode = Field(examples=["RECEIVER_IN_RING"])
    message: str = Field(examples=["the receiver belongs to 1 detected ring(s)"])
    evidence: dict[str, Any] = Field(default_factory=dict)
    weight: float | None = Field(
        default=None, description="Signed contribution to the fraud logit, where the model gave one"
    )


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[dict[str, Any]] | None = None


class ErrorPublic(BaseModel):
    """Every error: ``{"error": {"code", "message", "fields"?}}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"error": {"code": "not_found", "message": "account 'x' not found"}}]
        }
    )

    error: ErrorDetail


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses."""
    text = {
        401: "Missing or invalid API key",
        403: "The key's role may not call this endpoint",
        404: "Not found",
        409: "Conflict (e.g. an Idempotency-Key reused for another request)",
        413: "Body over this route's limit (CREDITGRAPH_MAX_BODY_*), refused before reading",
        422: "Invalid request, with field-level messages",
        503: "Store unreachable or model not loaded",
    }
    return {c: {"model": ErrorPublic, "description": text.get(c, "error")} for c in codes}
