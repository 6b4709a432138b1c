"""``POST /v1/risk/transfer``: the request and the decision."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from creditgraph.api.schemas.common import ID, ReasonPublic
from creditgraph.api.schemas.ingest import MAX_PROPERTIES, MAX_VALUE_LENGTH, check_attribute_names


class TransferRiskCreate(BaseModel):
    """A transfer about to be made."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "src": "acc_000001",
                    "dst": "acc_000042",
                    "amount": 120.0,
                    "currency": "EUR",
                    "timestamp": "2026-11-24T12:00:00Z",
                    "channel": "app",
                    "attributes": {"device": "d_17"},
                }
            ]
        },
    )

    # Trimmed as ingest trims ids, so " acc_1" is the account "acc_1".
    src: Annotated[str, StringConstraints(strip_whitespace=True)] = ID
    dst: Annotated[str, StringConstraints(strip_whitespace=True)] = ID
    amount: float = Field(ge=0, examples=[120.0])
    currency: str | None = Field(default=None, min_length=1, max_length=8, examples=["EUR"])
    timestamp: datetime | None = None
    channel: str | None = Field(default=None, min_length=1, max_length=32, examples=["app"])
    attributes: dict[str, Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH)]] = Field(
        default_factory=dict,
        max_length=MAX_PROPERTIES,
        description="the transfer's extra fields as in transfers.csv (device, location, ...)",
    )
    transfer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="the id the transfer will be ingested with: a review verdict then "
        "labels that transfer",
    )

    @field_validator("amount")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, v: dict[str, str]) -> dict[str, str]:
        return check_attribute_names(v)


class RiskDecisionPublic(BaseModel):
    """The decision with its reasons."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision": "review",
                    "risk": 0.62,
                    "reasons": [
                        {
                            "code": "RECEIVER_RISK",
                            "message": "the receiver's fraud probability is 0.540",
                            "evidence": {"account_id": "acc_000042", "fraud_probability": 0.54},
                        },
                        {
                            "code": "ACCOUNTS_UNRELATED",
                            "message": "no friendship, earlier transfer or "
                            "common neighbour between the two accounts",
                            "evidence": {},
                        },
                    ],
                    "model_version": "v0001",
                    "degraded": False,
                }
            ]
        }
    )

    decision: Literal["allow", "review", "block"]
    risk: float = Field(ge=0, le=1)
    reasons: list[ReasonPublic]
    model_version: str
    degraded: bool
