"""Operations: liveness and readiness."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
