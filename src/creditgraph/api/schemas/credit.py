"""Credit data in (obligations, consent) and credit profiles out."""

from __future__ import annotations

from typing import Literal

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
    model_config = ConfigDict(extra="forbid")

    social_scoring: Literal["granted", "withdrawn"] = Field(
        description="May relationships (friends, counterparties) enter this account's credit "
        "outputs?"
    )


class ConsentPublic(BaseModel):
    account_id: str
    social_scoring: Literal["granted", "withdrawn"]
    previous: Literal["granted", "withdrawn"]
    explicit: bool = Field(description="false when the account had no value (the default)")
