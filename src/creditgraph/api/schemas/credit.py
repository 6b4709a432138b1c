"""Credit data in (obligations, consent) and credit profiles out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from creditgraph.api.schemas.common import ID
from creditgraph.api.schemas.ingest import ISO, MAX_ITEMS


class ObligationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    obligation_id: str = Field(min_length=1, max_length=128, examples=["ob_000981"])
    account_id: str = ID
    kind: str = Field(min_length=1, max_length=64, examples=["pay_later"])
    amount: float = Field(examples=[250.0], description="finite, non-negative")
    opened_at: str = Field(max_length=40, examples=["2026-09-01"], description="ISO-8601")
    due_at: str = Field(max_length=40, examples=["2026-10-01"], description="ISO-8601")
    status: str = Field(examples=["open"], description="open | repaid | late | defaulted")
    closed_at: str | None = ISO


class ObligationBatchCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "obligation_id": "ob_000981",
                            "account_id": "acc_000042",
                            "kind": "pay_later",
                            "amount": 250.0,
                            "opened_at": "2026-09-01",
                            "due_at": "2026-10-01",
                            "status": "repaid",
                            "closed_at": "2026-09-28",
                        }
                    ]
                }
            ]
        },
    )
    items: list[ObligationCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class ConsentUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"social_scoring": "withdrawn"}]}
    )

    social_scoring: Literal["granted", "withdrawn"] = Field(
        description="May relationships (friends, counterparties) enter this account's credit "
        "outputs?"
    )


class ConsentPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "social_scoring": "withdrawn",
                    "previous": "granted",
                    "explicit": False,
                }
            ]
        }
    )

    account_id: str
    social_scoring: Literal["granted", "withdrawn"]
    previous: Literal["granted", "withdrawn"]
    explicit: bool = Field(description="false when the account had no value (the default)")


class CreditReasonPublic(BaseModel):
    """One piece of evidence: which input, its value, the points it cost or gave."""

    code: str = Field(examples=["CREDIT_HISTORY__DEFAULTS"])
    dimension: Literal["credit_history", "behaviour", "capacity", "identity", "social"]
    feature: str | None = Field(examples=["defaults"])
    value: float | None = Field(examples=[2.0])
    points: float = Field(description="points against an average account (negative: lost)")
    message: str = Field(examples=["2 defaulted obligation(s) on record"])


class CreditDimensionPublic(BaseModel):
    score: float | None = Field(
        description="0-100, higher = more likely to meet obligations; null when not computed"
    )
    weight: float = Field(description="weight of its log-odds in the composite (0 when unused)")
    points: float = Field(description="points it adds to (or takes from) the composite")
    used: bool
    reasons: list[CreditReasonPublic]


class CreditDimensionsPublic(BaseModel):
    credit_history: CreditDimensionPublic
    behaviour: CreditDimensionPublic
    capacity: CreditDimensionPublic
    identity: CreditDimensionPublic
    social: CreditDimensionPublic


class CreditProfilePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "credit_score": 642,
                    "band": "fair",
                    "p_default": 0.061,
                    "dimensions": {
                        d: {
                            "score": 88.0,
                            "weight": 0.5,
                            "points": 4.0,
                            "used": True,
                            "reasons": [],
                        }
                        for d in ("credit_history", "behaviour", "capacity", "identity", "social")
                    },
                    "reasons": [],
                    "counterfactual": {"target_band": "good", "points_needed": 33.0},
                    "model_version": "c0001",
                }
            ]
        }
    )

    account_id: str
    credit_score: int = Field(ge=350, le=950)
    band: Literal["very_poor", "poor", "fair", "good", "excellent"]
    p_default: float = Field(ge=0, le=1)
    dimensions: CreditDimensionsPublic
    reasons: list[CreditReasonPublic] = Field(
        description="principal reasons: at most four, most points lost first"
    )
    counterfactual: dict[str, Any] = Field(
        description="the smallest change of one actionable input that reaches the next band"
    )
    model_version: str
