"""Model administration: list versions, promote one, hot-swap the serving model."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.routes.schemas import error_responses
from creditgraph.api.state import ApiState
from creditgraph.services.retrain import promote_version

router = APIRouter(tags=["models"])

Admin = Annotated[Principal, Depends(require_role("admin"))]
ModelReader = Annotated[Principal, Depends(require_role("investigator"))]


class ModelPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": "v0001",
                    "champion": True,
                    "serving": True,
                    "created_at": 1764000000.0,
                    "metrics": {"fraud.auprc": 0.81},
                }
            ]
        }
    )

    version: str
    champion: bool
    serving: bool = Field(description="the version this server answers with")
    created_at: float
    metrics: dict[str, float]


class PromoteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "better AUPRC"}]}
    )

    reason: str = Field(default="promoted over the API", min_length=1, max_length=500)


class ReloadPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model_version": "v0002", "accounts": 20000, "seconds": 3.2}]
        }
    )

    model_version: str
    accounts: int
    seconds: float


@router.get(
    "/v1/models",
    response_model=list[ModelPublic],
    responses=error_responses(401, 403),
    summary="Registered model versions",
)
async def list_models(principal: ModelReader, state: StateDep) -> list[dict[str, Any]]:
    """Oldest first; the champion and the serving version are marked."""
    champion = state.registry.champion_version()
    serving = state.engine.model_version if state.engine is not None else None
    records = await run_in_threadpool(state.registry.records)
    return [
        {
            "version": r.version,
            "champion": r.version == champion,
            "serving": r.version == serving,
            "created_at": r.created_at,
            "metrics": r.metrics,
        }
        for r in records
    ]


def _reload(state: ApiState) -> dict[str, Any]:
    t0 = time.perf_counter()
    engine = state.reload()
    return {
        "model_version": engine.model_version,
        "accounts": len(engine.account_ids),
        "seconds": round(time.perf_counter() - t0, 3),
    }


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
    await run_in_threadpool(promote_version, state.registry, version, reason=reason)
    out = await run_in_threadpool(_reload, state)
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
    out = await run_in_threadpool(_reload, state)
    state.audit.record(
        principal=principal, action="model.reload", target=out["model_version"], result="ok"
    )
    return out
