"""``GET /v1/accounts/{id}/score``: one account's scores."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from creditgraph.api.schemas.common import ReasonPublic


class AccountScorePublic(BaseModel):
    """One account's scores with reasons."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "fraud_probability": 0.031,
                    "social_credit": 0.71,
                    "reasons": [
                        {
                            "code": "FEATURE_LOWERS_RISK",
                            "message": "account_age_days lowers the fraud risk",
                            "evidence": {"feature": "account_age_days"},
                            "weight": -0.8,
                        }
                    ],
                    "model_version": "v0001",
                    "source": "table",
                    "degraded": False,
                    "pending": False,
                }
            ]
        }
    )

    account_id: str
    fraud_probability: float = Field(ge=0, le=1)
    social_credit: float
    reasons: list[ReasonPublic]
    model_version: str
    source: Literal["table", "live", "inductive"] = Field(
        description="table: the model over the last snapshot; live: rescored after new data "
        "arrived over HTTP; inductive: scored now from the account's neighbourhood"
    )
    degraded: bool
    pending: bool = Field(
        default=False,
        description="true: ties of the account ingested over HTTP are not in this score yet "
        "(the background rescorer has it queued; source is then table)",
    )


class AccountVersionPublic(BaseModel):
    """One change to an account's recorded attributes (``features.x``, ``properties.y``,
    ``created_at``): the values before and after, when, by whom and why."""

    version: int = Field(ge=1)
    changed_at: float = Field(description="UNIX seconds, UTC")
    actor: str = Field(description="`key:<key id>` for the API, `import` for a CSV import")
    reason: str | None
    before: dict[str, Any]
    after: dict[str, Any]


class AccountHistoryPublic(BaseModel):
    """``GET /v1/accounts/{id}/history``: every change to the account, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "versions": [
                        {
                            "version": 1,
                            "changed_at": 1764590000.0,
                            "actor": "key:3f1c2a7e9b01",
                            "reason": "POST /v1/accounts by admin key 'ops'",
                            "before": {"features.kyc_level": 1.0},
                            "after": {"features.kyc_level": 2.0},
                        }
                    ],
                }
            ]
        }
    )

    account_id: str
    versions: list[AccountVersionPublic]
