"""Operations: liveness, readiness, Prometheus metrics (no key needed; bind to loopback or a
private network)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict

from creditgraph.api.deps import StateDep
from creditgraph.api.errors import json_response

router = APIRouter(tags=["operations"])


class HealthPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})
    status: str


class ReadyPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ready": True,
                    "model_loaded": True,
                    "model_version": "v0001",
                    "store_reachable": True,
                    "degraded": False,
                    "degraded_since": None,
                    "error": None,
                }
            ]
        }
    )

    ready: bool
    model_loaded: bool
    model_version: str | None
    store_reachable: bool
    degraded: bool
    degraded_since: float | None
    error: str | None


@router.get("/healthz", response_model=HealthPublic, summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "no model loaded"}},
    summary="Ready to answer risk checks (200 also while degraded)",
)
async def readyz(state: StateDep) -> Response:
    """200 once a model is loaded, also in degraded mode (risk checks still answer, from
    memory); 503 before. ``store_reachable`` reflects the last probe or store call."""
    engine = state.engine
    body: dict[str, Any] = {
        "ready": engine is not None,
        "model_loaded": engine is not None,
        "model_version": None if engine is None else engine.model_version,
        "store_reachable": not state.health.degraded,
        "degraded": state.health.degraded,
        "degraded_since": state.health.since,
        "error": state.health.last_error or state.load_error,
    }
    return json_response(body, status_code=200 if engine is not None else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": "# HELP ..."}}}},
)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
