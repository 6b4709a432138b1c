"""Model administration: list versions, promote one, hot-swap the serving model."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from starlette.concurrency import run_in_threadpool

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.models import ModelPublic, PromoteCreate, ReloadPublic

router = APIRouter(tags=["models"])

Admin = Annotated[Principal, Depends(require_role("admin"))]
ModelReader = Annotated[Principal, Depends(require_role("investigator"))]


@router.get(
    "/v1/models",
    response_model=list[ModelPublic],
    responses=error_responses(401, 403),
    summary="Registered model versions",
)
async def list_models(principal: ModelReader, state: StateDep) -> list[dict[str, Any]]:
    """Oldest first; the champion and the serving version are marked."""
    return await run_in_threadpool(state.serving.models)


@router.post(
    "/v1/models/{version}/promote",
    response_model=ReloadPublic,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Make a version the champion and serve it",
)
async def promote(
    version: Annotated[str, Path(pattern=r"^v\d{4,}$", examples=["v0002"])],
    principal: Admin,
    state: StateDep,
    body: Annotated[PromoteCreate | None, Body()] = None,
) -> dict[str, Any]:
    """No gate (that is the retraining job's); the reason goes to the promotion history.
    The new champion is loaded and swapped in without dropping requests."""
    reason = body.reason if body is not None else PromoteCreate().reason
    out = asdict(await run_in_threadpool(state.serving.promote, version, reason))
    state.audit.record(
        principal=principal, action="model.promote", target=version, result="ok", purpose=reason
    )
    return out


@router.post(
    "/v1/admin/reload",
    response_model=ReloadPublic,
    responses=error_responses(401, 403, 503),
    summary="Reload the champion over a fresh snapshot (hot swap)",
)
async def reload(principal: Admin, state: StateDep) -> dict[str, Any]:
    """Builds the new engine beside the serving one and swaps it in; requests in flight
    finish on the old one, none is dropped."""
    out = asdict(await run_in_threadpool(state.serving.reload))
    state.audit.record(
        principal=principal, action="model.reload", target=out["model_version"], result="ok"
    )
    return out
