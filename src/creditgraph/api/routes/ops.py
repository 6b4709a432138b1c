"""Operations: liveness, readiness, Prometheus metrics (no key needed; bind to loopback or a
private network)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from creditgraph.api.deps import StateDep
from creditgraph.api.errors import json_response
from creditgraph.api.schemas.ops import HealthPublic, ReadyPublic

router = APIRouter(tags=["operations"])


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
    body = state.serving.readiness()
    return json_response(body, status_code=200 if body["ready"] else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": "# HELP ..."}}}},
)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
