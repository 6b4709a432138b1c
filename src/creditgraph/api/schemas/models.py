"""Model administration: versions, promotion, reloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
