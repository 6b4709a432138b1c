"""Investigator endpoints: accounts, neighbourhoods, paths, rings and transfers.

Role ``investigator`` (or ``admin``). Every look-up needs a purpose, sent as the ``X-Purpose``
header (400 without it), and is audited with the key id, the purpose and a short result.
Responses are built by ``services.investigate`` as plain dicts and serialised by orjson as
they are; the response models below document them in OpenAPI and are not run per request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from creditgraph.api.audit import AuditLog
from creditgraph.api.deps import AuditDep, Principal, StateDep, StoreDep, require_role
from creditgraph.api.errors import json_response
from creditgraph.api.routes.schemas import ReasonPublic, error_responses
from creditgraph.domain import RingKind, RingStatus
from creditgraph.errors import CreditGraphError, InvalidInput, NotFound
from creditgraph.services import investigate
from creditgraph.store.base import MAX_HOPS, MAX_OFFSET, MAX_PAGE, MAX_PATH_HOPS

router = APIRouter(tags=["investigators"])
T = TypeVar("T")

PURPOSE_MAX = 500


@dataclass(frozen=True)
class Lookup:
    """An authorised investigator with the stated purpose; ``run`` audits one look-up."""

    principal: Principal
    purpose: str
    audit: AuditLog

    def run(self, action: str, target: str, fn: Callable[[], T], result: Callable[[T], str]) -> T:
        """Call ``fn``; record the outcome (also a refusal: not found, invalid) and re-raise."""
        try:
            out = fn()
        except CreditGraphError as e:
            outcome = (
                "not_found"
                if isinstance(e, NotFound)
                else "invalid"
                if isinstance(e, InvalidInput)
                else "error"
            )
            self._record(action, target, outcome)
            raise
        self._record(action, target, result(out))
        return out

    def _record(self, action: str, target: str, result: str) -> None:
        self.audit.record(
            principal=self.principal,
            action=action,
            target=target,
            result=result,
            purpose=self.purpose,
        )


def get_lookup(
    principal: Annotated[Principal, Depends(require_role("investigator"))],
    audit: AuditDep,
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="Why you look (a case number, an alert id): required, and kept in "
            "the audit log with your key id",
            examples=["case 2024-117: chargeback on acc_000042"],
        ),
    ] = None,
) -> Lookup:
    """Authorise (401/403 first), then require a purpose (400)."""
    purpose = (x_purpose or "").strip()
    if not purpose:
        raise HTTPException(400, "missing X-Purpose header: say why you look (kept in the audit)")
    if len(purpose) > PURPOSE_MAX:
        raise HTTPException(400, f"X-Purpose is longer than {PURPOSE_MAX} characters")
    return Lookup(principal, purpose, audit)


LookupDep = Annotated[Lookup, Depends(get_lookup)]
AccountId = Annotated[str, Path(min_length=1, max_length=128, examples=["acc_000042"])]
RingId = Annotated[str, Path(min_length=1, max_length=128, examples=["ring_3f2a9c"])]
ERRORS = error_responses(400, 401, 403, 404, 422, 503)


def _relations(values: Sequence[str] | None) -> list[str] | None:
    """``relations=A&relations=B`` or ``relations=A,B``; None (all) when absent."""
    if not values:
        return None
    return sorted({r.strip() for v in values for r in v.split(",") if r.strip()})


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


# -- documentation models (OpenAPI only) ----------------------------------------------------------
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
        description="Present when the view does not draw all of this account's neighbours "
        "(more than `limit`, the view's node budget, or a hub not walked through): its "
        "number of relationships within the relation filter",
    )
    hub: bool | None = Field(
        default=None, description="More relationships than the hub threshold (`hub_degree`)"
    )
    summarised: bool | None = Field(
        default=None,
        description="A hub whose neighbours this view did not walk (ask `through_hubs=true`)",
    )
    degree: dict[str, int] | None = Field(
        default=None, description="Capped accounts and hubs: relationships per relation"
    )
    more: dict[str, int] | None = Field(
        default=None, description="Per relation, relationships the view does not draw"
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
                    "hub_degree": 1000,
                    "through_hubs": False,
                    "truncated": True,
                    "capped": {"acc_000042": 310},
                    "hubs": [],
                    "summarised": [],
                    "nodes": [
                        {
                            "id": "acc_000042",
                            "fraud_probability": 0.83,
                            "social_credit": 41.2,
                            "risk": "high",
                            "rings": ["ring_3f2a9c"],
                            "center": True,
                            "capped": 310,
                            "degree": {"FRIEND": 12, "TRANSFER": 298},
                            "more": {"FRIEND": 4, "TRANSFER": 261},
                        },
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
    hub_degree: int = Field(description="Accounts with more relationships are hubs")
    through_hubs: bool
    truncated: bool = Field(description="Some account's neighbours are not all drawn")
    capped: dict[str, int] = Field(description="Those accounts with their relationship count")
    hubs: list[str] = Field(description="Accounts in the view over the hub threshold")
    summarised: list[str] = Field(
        description="Hubs the expansion did not walk through (`through_hubs=true` walks them)"
    )
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
                            "ring_id": "ring_3f2a9c",
                            "kind": "cycle",
                            "score": 0.91,
                            "status": "new",
                            "note": "",
                            "size": 5,
                            "detected_at": 1732400000.0,
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
                    "complete": True,
                    "cut_short": [],
                    "hubs_skipped": [],
                    "through_hubs": False,
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
    complete: bool = Field(description="False when the search stopped early (`cut_short`)")
    cut_short: list[str] = Field(
        description="Why paths may be missing: deadline, frontier, hubs, fanout, paths"
    )
    hubs_skipped: list[str] = Field(description="Hubs reached but not walked through")
    through_hubs: bool
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
                            "ring_id": "ring_3f2a9c",
                            "kind": "cycle",
                            "score": 0.91,
                            "status": "new",
                            "note": "",
                            "size": 5,
                            "detected_at": 1732400000.0,
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
                    "ring_id": "ring_3f2a9c",
                    "kind": "cycle",
                    "score": 0.91,
                    "status": "investigating",
                    "note": "asked the bank for KYC files",
                    "size": 3,
                    "detected_at": 1732400000.0,
                    "members": [
                        {
                            "id": "acc_000042",
                            "fraud_probability": 0.83,
                            "social_credit": 41.2,
                            "risk": "high",
                            "rings": ["ring_3f2a9c"],
                        }
                    ],
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
                    "timeline": [
                        {
                            "transfer_id": "t_91",
                            "src": "acc_000042",
                            "dst": "acc_000043",
                            "amount": 2450.0,
                            "timestamp": 1717200000.0,
                            "currency": "EUR",
                            "channel": "app",
                        }
                    ],
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
                    "ring_id": "ring_3f2a9c",
                    "kind": "cycle",
                    "score": 0.91,
                    "status": "confirmed",
                    "note": "round-tripping confirmed, case 117",
                    "size": 5,
                    "detected_at": 1732400000.0,
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
                    "items": [
                        {
                            "transfer_id": "t_91",
                            "src": "acc_000042",
                            "dst": "acc_000043",
                            "amount": 2450.0,
                            "timestamp": 1717200000.0,
                            "currency": "EUR",
                            "channel": "app",
                        }
                    ],
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


# -- endpoints ------------------------------------------------------------------------------------
@router.get(
    "/v1/accounts/{account_id}",
    response_model=AccountPublic,
    summary="An account: attributes, scores, reasons, social credit explained, rings",
    responses=ERRORS,
)
def get_account(
    account_id: AccountId, store: StoreDep, state: StateDep, lookup: LookupDep
) -> Response:
    engine = state.engine
    scorer = None if engine is None else engine.scorer
    out = lookup.run(
        "investigate.account",
        account_id,
        lambda: investigate.account_view(store, account_id, scorer),
        lambda v: f"rings={len(v['rings'])}",
    )
    return json_response(out)


@router.get(
    "/v1/accounts/{account_id}/neighbourhood",
    response_model=GraphPublic,
    summary="The account's neighbourhood as graph JSON, capped per account",
    responses=ERRORS,
)
def get_neighbourhood(
    account_id: AccountId,
    store: StoreDep,
    state: StateDep,
    lookup: LookupDep,
    hops: Annotated[int, Query(ge=1, le=MAX_HOPS, description="Rings of neighbours")] = 1,
    limit: Annotated[
        int,
        Query(ge=1, le=1000, description="Neighbours kept per expanded account, strongest first"),
    ] = 25,
    relations: Annotated[
        list[str] | None,
        Query(
            description="Only these relations: TRANSFER and/or link types (repeat or "
            "comma-separate); all when absent",
            examples=["TRANSFER,SHARES_DEVICE"],
        ),
    ] = None,
    through_hubs: Annotated[
        bool,
        Query(
            description="Walk through hubs (accounts over the hub threshold) too: slower, "
            "and a hub's neighbours crowd out the rest"
        ),
    ] = False,
) -> Response:
    rels = _relations(relations)
    hub_degree = state.settings.investigate_hub_degree
    out = lookup.run(
        "investigate.neighbourhood",
        account_id,
        lambda: investigate.neighbourhood_graph(
            store,
            account_id,
            hops=hops,
            limit=limit,
            relations=rels,
            hub_degree=hub_degree,
            through_hubs=through_hubs,
        ),
        lambda v: f"nodes={len(v['nodes'])} edges={len(v['edges'])} truncated={v['truncated']}",
    )
    return json_response(out)


@router.get(
    "/v1/paths",
    response_model=PathsPublic,
    summary="Shortest paths between two accounts with the transfers along them",
    responses=ERRORS,
)
def get_paths(
    store: StoreDep,
    state: StateDep,
    lookup: LookupDep,
    src: Annotated[str, Query(alias="from", min_length=1, max_length=128)],
    dst: Annotated[str, Query(alias="to", min_length=1, max_length=128)],
    max_hops: Annotated[int, Query(ge=1, le=MAX_PATH_HOPS)] = 4,
    relations: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="At most this many paths")] = 10,
    through_hubs: Annotated[
        bool,
        Query(
            description="Walk through hubs (accounts over the hub threshold) too: slower, "
            "and a hub's neighbours crowd out the rest"
        ),
    ] = False,
) -> Response:
    rels = _relations(relations)
    settings = state.settings
    out = lookup.run(
        "investigate.paths",
        f"{src}->{dst}",
        lambda: investigate.paths_view(
            store,
            src,
            dst,
            max_hops=max_hops,
            relations=rels,
            limit=limit,
            hub_degree=settings.investigate_hub_degree,
            through_hubs=through_hubs,
            deadline_s=settings.investigate_path_deadline_s,
        ),
        lambda v: f"paths={len(v['paths'])} length={v['length']} complete={v['complete']}",
    )
    return json_response(out)


@router.get(
    "/v1/rings",
    response_model=RingQueuePublic,
    summary="The ring alert queue, highest score first",
    responses=ERRORS,
)
def get_rings(
    store: StoreDep,
    lookup: LookupDep,
    status: Annotated[list[RingStatus] | None, Query(description="Repeat for several")] = None,
    kind: Annotated[list[RingKind] | None, Query(description="Repeat for several")] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    filters = f"status={status or '*'} kind={kind or '*'} min_score={min_score}"
    out = lookup.run(
        "investigate.rings",
        filters,
        lambda: investigate.ring_queue(
            store, statuses=status, kinds=kind, min_score=min_score, limit=limit, offset=offset
        ),
        lambda v: f"items={len(v['items'])} total={v['total']}",
    )
    return json_response(out)


@router.get(
    "/v1/rings/{ring_id}",
    response_model=RingPublic,
    summary="A ring: members, evidence, timeline",
    responses=ERRORS,
)
def get_ring(ring_id: RingId, store: StoreDep, lookup: LookupDep) -> Response:
    out = lookup.run(
        "investigate.ring",
        ring_id,
        lambda: investigate.ring_detail(store, ring_id),
        lambda v: f"members={len(v['members'])} status={v['status']}",
    )
    return json_response(out)


@router.patch(
    "/v1/rings/{ring_id}",
    response_model=RingUpdated,
    summary="Set a ring's status and note; verdicts become training labels",
    responses=ERRORS,
)
def patch_ring(ring_id: RingId, update: RingUpdate, store: StoreDep, lookup: LookupDep) -> Response:
    out = lookup.run(
        "investigate.ring.status",
        ring_id,
        lambda: investigate.set_verdict(store, ring_id, update.status, update.note),
        lambda v: f"status={v['status']} labels_written={v['labels_written']}",
    )
    return json_response(out)


@router.get(
    "/v1/accounts/{account_id}/transfers",
    response_model=TransfersPublic,
    summary="An account's transfers, newest first, by time and counterparty",
    responses=ERRORS,
)
def get_transfers(
    account_id: AccountId,
    store: StoreDep,
    lookup: LookupDep,
    since: Annotated[
        datetime | None, Query(description="ISO-8601 or UNIX seconds; no zone means UTC")
    ] = None,
    until: Annotated[datetime | None, Query(description="Inclusive")] = None,
    counterparty: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    out = lookup.run(
        "investigate.transfers",
        account_id,
        lambda: investigate.account_transfers(
            store,
            account_id,
            since=_epoch(since),
            until=_epoch(until),
            counterparty=counterparty,
            limit=limit,
            offset=offset,
        ),
        lambda v: f"items={len(v['items'])} total={v['total']}",
    )
    return json_response(out)
