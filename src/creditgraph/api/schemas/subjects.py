"""Responses of ``/v1/subjects/{id}``: a data subject's export and an erasure's outcome."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SubjectAttributes(BaseModel):
    created_at: float | None
    features: dict[str, float]
    properties: dict[str, str]


class SubjectPublic(BaseModel):
    """Everything held about one person (issue 15, item 9). ``lookups``: audit entries
    about them (who, when, why); ``decisions``: risk decisions and credit outputs about
    them. Other people in those entries appear as pseudonyms only."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "attributes": {
                        "created_at": 1700000000.0,
                        "features": {"kyc_level": 2.0},
                        "properties": {"social_scoring": "granted"},
                    },
                    "consent": {"social_scoring": "granted"},
                    "ties": [
                        {
                            "src": "acc_000042",
                            "dst": "acc_000007",
                            "relation": "FRIEND",
                            "directed": False,
                            "count": 1,
                            "total_amount": 0.0,
                        }
                    ],
                    "transfers": [
                        {
                            "transfer_id": "t1",
                            "src": "acc_000042",
                            "dst": "acc_000007",
                            "amount": 25.0,
                            "timestamp": 1700000100.0,
                            "currency": "EUR",
                            "channel": "app",
                        }
                    ],
                    "transfers_total": 1,
                    "labels": [],
                    "scores": [],
                    "rings": [],
                    "transfer_labels": [
                        {
                            "transfer_id": "t1",
                            "label": "legit",
                            "source": "chargeback_feed",
                            "observed_at": 1700000500.0,
                        }
                    ],
                    "obligations": [
                        {
                            "obligation_id": "loan-7",
                            "account_id": "acc_000042",
                            "kind": "loan",
                            "amount": 500.0,
                            "opened_at": 1690000000.0,
                            "due_at": 1700000000.0,
                            "status": "repaid",
                            "closed_at": 1699000000.0,
                            "history": [
                                {"status": "open", "at": 1690000000.0, "recorded_at": 1690000000.0},
                                {
                                    "status": "repaid",
                                    "at": 1699000000.0,
                                    "recorded_at": 1699000050.0,
                                },
                            ],
                        }
                    ],
                    "history": [],
                    "reviews": [],
                    "credit_outputs": [],
                    "lookups": [
                        {
                            "stream": "audit",
                            "seq": 17,
                            "ts": 1700000200.0,
                            "key_name": "alice",
                            "role": "investigator",
                            "action": "investigate.account",
                            "target": "acc_000042",
                            "result": "rings=0",
                            "purpose": "case 2024-117",
                        }
                    ],
                    "decisions": [],
                    "generated_at": 1700000300.0,
                }
            ]
        }
    )

    account_id: str
    attributes: SubjectAttributes
    consent: dict[str, str | None]
    ties: list[dict[str, Any]]
    transfers: list[dict[str, Any]]
    transfers_total: int = Field(ge=0)
    labels: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    rings: list[dict[str, Any]]
    transfer_labels: list[dict[str, Any]] = Field(
        description="Outcomes (fraud / legit) recorded for the person's transfers"
    )
    obligations: list[dict[str, Any]] = Field(description="With every status they have had")
    history: list[dict[str, Any]] = Field(description="Changes to the attributes, oldest first")
    reviews: list[dict[str, Any]] = Field(description="Review-queue items naming the person")
    credit_outputs: list[dict[str, Any]] = Field(
        description="Credit outputs answered about the person (from the decision log)"
    )
    lookups: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    generated_at: float


class SubjectErased(BaseModel):
    """What an erasure removed. ``already_erased``: an earlier erasure had done it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "already_erased": False,
                    "transfers": 12,
                    "links": 3,
                    "label": True,
                    "score": True,
                    "rings_left": [],
                    "rings_deleted": ["ring_3f2a9c"],
                    "transfer_labels": 2,
                    "reviews": 1,
                    "obligations": 1,
                    "model_files_scrubbed": 1,
                    "pseudonym_forgotten": True,
                    "tombstone": "9c1e...",
                    "in_memory_forgotten": True,
                }
            ]
        }
    )

    account_id: str
    already_erased: bool
    transfers: int | None = None
    links: int | None = None
    label: bool | None = None
    score: bool | None = None
    rings_left: list[str] | None = None
    rings_deleted: list[str] | None = None
    transfer_labels: int | None = None
    reviews: int | None = None
    obligations: int | None = None
    model_files_scrubbed: int | None = None
    pseudonym_forgotten: bool
    tombstone: str
    in_memory_forgotten: bool
