"""Investigator views: the response models document in OpenAPI what ``services.investigate``
builds as plain dicts (they are not run per request; ``tests/api/test_investigate.py``
validates each view against its model, so the two cannot drift apart), and ``RingUpdate``,
the one request body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from creditgraph.api.schemas.common import ReasonPublic
from creditgraph.domain import RingKind, RingStatus

# Example values shared by several views' examples.
_NODE: JsonDict = {
    "id": "acc_000042",
    "fraud_probability": 0.83,
    "social_credit": 41.2,
    "risk": "high",
    "rings": ["ring_3f2a9c"],
}
_RING: JsonDict = {
    "ring_id": "ring_3f2a9c",
    "kind": "cycle",
    "score": 0.91,
    "status": "new",
    "note": "",
    "size": 5,
    "detected_at": 1732400000.0,
}
_TRANSFER: JsonDict = {
    "transfer_id": "t_91",
    "src": "acc_000042",
    "dst": "acc_000043",
    "amount": 2450.0,
    "timestamp": 1717200000.0,
    "currency": "EUR",
    "channel": "app",
}


class NodePublic(BaseModel):
    """An account in a graph view."""

    id: str
    fraud_probability: float | None
    social_credit: float | None
    risk: str = Field(description="Band: high (>= 0.5), elevated (>= 0.2), low, or unscored")
    rings: list[str]
    center: bool | None = None
    capped: int | None = Field(
        default=None,
        description="Present when this account has more neighbours than the view's limit: "
        "its full neighbour count (only the strongest `limit` are shown)",
    )


class EdgePublic(BaseModel):
    """Transfers between an ordered pair aggregated, or one undirected link."""

    id: str
    source: str
    target: str
    relation: str = Field(examples=["TRANSFER", "FRIEND", "SHARES_DEVICE"])
    directed: bool
    count: int
    total_amount: float
    evidence: bool | None = Field(default=None, description="Ring views: the evidence names it")


class GraphPublic(BaseModel):
    """A capped neighbourhood as graph JSON."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "center": "acc_000042",
                    "hops": 1,
                    "limit": 25,
                    "relations": None,
                    "truncated": True,
                    "capped": {"acc_000042": 310},
                    "nodes": [
                        {**_NODE, "center": True, "capped": 310},
                        {
                            "id": "acc_000977",
                            "fraud_probability": 0.02,
                            "social_credit": 97.5,
                            "risk": "low",
                            "rings": [],
                        },
                    ],
                    "edges": [
                        {
                            "id": "acc_000042|acc_000977|TRANSFER",
                            "source": "acc_000042",
                            "target": "acc_000977",
                            "relation": "TRANSFER",
                            "directed": True,
                            "count": 3,
                            "total_amount": 1250.0,
                        }
                    ],
                }
            ]
        }
    )

    center: str
    hops: int
    limit: int
    relations: list[str] | None
    truncated: bool = Field(description="Some account had more neighbours than `limit`")
    capped: dict[str, int] = Field(description="Those accounts with their full neighbour count")
    nodes: list[NodePublic]
    edges: list[EdgePublic]


class ScorePublic(BaseModel):
    fraud_probability: float
    social_credit: float
    risk: str
    model_version: str
    scored_at: float


class SocialCreditExplanation(BaseModel):
    summary: str
    reasons: list[ReasonPublic]
    definition: str = Field(description="Where the definition lives in the repository")


class RingSummaryPublic(BaseModel):
    ring_id: str
    kind: RingKind
    score: float
    status: RingStatus
    note: str
    size: int
    detected_at: float


class AccountPublic(BaseModel):
    """Everything an investigator reads about one account."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "created_at": 1704067200.0,
                    "features": {"kyc_level": 1.0},
                    "properties": {"region": "north"},
                    "label": None,
                    "score": {
                        "fraud_probability": 0.83,
                        "social_credit": 41.2,
                        "risk": "high",
                        "model_version": "v0001",
                        "scored_at": 1732400000.0,
                    },
                    "reasons": [
                        {
                            "code": "FEATURE_RAISES_RISK",
                            "message": "account_age_days = 3 raises the fraud risk",
                            "weight": 1.2,
                            "evidence": {"target": "fraud", "feature": "account_age_days"},
                        }
                    ],
                    "ties": [
                        {
                            "code": "NEIGHBOUR_RAISES_RISK",
                            "message": "tie to acc_000977 (TRANSFER_out) raises the fraud risk",
                            "weight": 0.6,
                            "evidence": {
                                "account_id": "acc_000977",
                                "relations": ["TRANSFER_out"],
                            },
                        }
                    ],
                    "social_credit_explanation": {
                        "summary": "Social credit 41.2 of 100 (low trust from relationships "
                        "alone). ...",
                        "reasons": [],
                        "definition": "docs/social_credit.md",
                    },
                    "rings": [
                        {
                            **_RING,
                        }
                    ],
                    "transfers": 57,
                }
            ]
        }
    )

    account_id: str
    created_at: float | None
    features: dict[str, float]
    properties: dict[str, str]
    label: str | None
    score: ScorePublic | None
    reasons: list[ReasonPublic] = Field(description="Why the fraud probability is what it is")
    ties: list[ReasonPublic] = Field(
        description="The direct ties raising or lowering the fraud risk most, attributed by "
        "the serving model (empty while no model is loaded)"
    )
    social_credit_explanation: SocialCreditExplanation
    rings: list[RingSummaryPublic]
    transfers: int = Field(description="How many transfers the account sent or received")


class TransferPublic(BaseModel):
    transfer_id: str
    src: str
    dst: str
    amount: float
    timestamp: float = Field(description="UNIX seconds, UTC")
    currency: str | None
    channel: str | None


class HopPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    relations: list[str]
    edges: list[str] = Field(description="Ids of the edges joining the pair")
    transfers: list[TransferPublic] = Field(description="Newest first, at most 20")
    transfers_total: int


class PathPublic(BaseModel):
    accounts: list[str]
    hops: list[HopPublic]


class PathsPublic(BaseModel):
    """Shortest paths between two accounts, with the money along them."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "from": "acc_000042",
                    "to": "acc_000977",
                    "max_hops": 4,
                    "found": True,
                    "length": 2,
                    "paths": [
                        {
                            "accounts": ["acc_000042", "acc_000500", "acc_000977"],
                            "hops": [
                                {
                                    "from": "acc_000042",
                                    "to": "acc_000500",
                                    "relations": ["FRIEND"],
                                    "edges": ["acc_000042|acc_000500|FRIEND"],
                                    "transfers": [],
                                    "transfers_total": 0,
                                },
                                {
                                    "from": "acc_000500",
                                    "to": "acc_000977",
                                    "relations": ["TRANSFER"],
                                    "edges": ["acc_000500|acc_000977|TRANSFER"],
                                    "transfers": [
                                        {
                                            "transfer_id": "t_88",
                                            "src": "acc_000500",
                                            "dst": "acc_000977",
                                            "amount": 420.0,
                                            "timestamp": 1717200000.0,
                                            "currency": "EUR",
                                            "channel": "app",
                                        }
                                    ],
                                    "transfers_total": 1,
                                },
                            ],
                        }
                    ],
                    "nodes": [],
                    "edges": [],
                }
            ]
        },
    )

    from_: str = Field(alias="from")
    to: str
    max_hops: int
    found: bool
    length: int | None = Field(description="Hops of the shortest paths; null when none")
    paths: list[PathPublic]
    nodes: list[NodePublic]
    edges: list[EdgePublic]


class RingQueueItem(RingSummaryPublic):
    members_preview: list[str]
    max_member_risk: float | None


class RingQueuePublic(BaseModel):
    """One page of the alert queue, highest score first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            **_RING,
                            "members_preview": ["acc_000042", "acc_000043"],
                            "max_member_risk": 0.83,
                        }
                    ],
                    "total": 1,
                    "limit": 50,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[RingQueueItem]
    total: int
    limit: int
    offset: int


class EvidenceEdgePublic(BaseModel):
    source: str
    target: str
    relation: str


class RingPublic(RingSummaryPublic):
    """A ring with its members, evidence and timeline."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_RING,
                    "status": "investigating",
                    "note": "asked the bank for KYC files",
                    "size": 3,
                    "members": [_NODE],
                    "evidence": {
                        "patterns": ["cycles"],
                        "cycles": [["acc_000042", "acc_000043", "acc_000044"]],
                    },
                    "evidence_edges": [
                        {"source": "acc_000042", "target": "acc_000043", "relation": "TRANSFER"}
                    ],
                    "edges": [
                        {
                            "id": "acc_000042|acc_000043|TRANSFER",
                            "source": "acc_000042",
                            "target": "acc_000043",
                            "relation": "TRANSFER",
                            "directed": True,
                            "count": 4,
                            "total_amount": 9800.0,
                            "evidence": True,
                        }
                    ],
                    "timeline": [_TRANSFER],
                }
            ]
        }
    )

    members: list[NodePublic]
    evidence: dict[str, Any] = Field(description="As the detector wrote it")
    evidence_edges: list[EvidenceEdgePublic] = Field(description="Pairs the evidence names")
    edges: list[EdgePublic] = Field(description="Edges among the members")
    timeline: list[TransferPublic] = Field(description="Transfers among members, newest first")


class RingUpdate(BaseModel):
    """A verdict or a change of status, with the investigator's note."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"status": "confirmed", "note": "round-tripping confirmed, case 117"}]
        },
    )

    status: RingStatus = Field(
        description="confirmed: members labelled fraud; dismissed: unlabelled members "
        "labelled legit; new / investigating: no labels (docs/rings.md)"
    )
    note: str | None = Field(
        default=None, max_length=2000, description="Replaces the note; kept when absent"
    )


class RingUpdated(RingSummaryPublic):
    """The ring after the change, and how many member labels the verdict wrote."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_RING,
                    "status": "confirmed",
                    "note": "round-tripping confirmed, case 117",
                    "labels_written": 5,
                }
            ]
        }
    )

    labels_written: int


class TransfersPublic(BaseModel):
    """One page of an account's transfers, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "items": [_TRANSFER],
                    "total": 57,
                    "limit": 50,
                    "offset": 0,
                }
            ]
        }
    )

    account_id: str
    items: list[TransferPublic]
    total: int
    limit: int
    offset: int
