"""The review queue for investigators: ``GET /v1/reviews`` and ``POST /v1/reviews/{id}``.

Transfers the risk check answered ``review`` wait here with the decision's reasons and both
accounts; a verdict (approved / rejected, with a note) closes one and becomes a transfer
label for the next training run. Looks and verdicts are audited like every investigator call
(purpose required)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from creditgraph.api.deps import StoreDep
from creditgraph.api.routes.investigate import ERRORS, LookupDep
from creditgraph.api.schemas import error_responses
from creditgraph.outcomes import REVIEW_STATUSES, ReviewStatus
from creditgraph.services import reviews
from creditgraph.store.base import MAX_PAGE, check_page

router = APIRouter(tags=["investigators"])
ReviewId = Annotated[str, Path(min_length=1, max_length=64, examples=["rv_3f1c2a7e9b"])]


_EXAMPLE: dict[str, Any] = {
    "review_id": "rv_3f1c2a7e9b",
    "transfer_id": "t_981",
    "src": "acc_000001",
    "dst": "acc_000042",
    "amount": 900.0,
    "timestamp": 1764590400.0,
    "created_at": 1764590400.1,
    "risk": 0.41,
    "model_version": "v0003/t0002",
    "reasons": [
        {
            "code": "FACTOR_RAISES_RISK",
            "message": "amount 900.00 is 14x the sender's largest transfer",
            "evidence": {"factor": "amount"},
            "weight": 1.7,
        }
    ],
    "status": "open",
    "reviewer": None,
    "note": None,
    "resolved_at": None,
    "channel": "app",
    "attributes": {"device": "d_17"},
}


class ReviewVerdict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"verdict": "rejected", "note": "victim confirmed"}]},
    )

    verdict: Literal["approved", "rejected"] = Field(
        description="approved: the transfer is fine (label legit); rejected: fraud"
    )
    note: str = Field(default="", max_length=2000, examples=["called the customer: genuine"])


class ReviewPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    review_id: str
    transfer_id: str
    src: str
    dst: str
    amount: float
    timestamp: float
    created_at: float
    risk: float
    model_version: str
    reasons: list[dict[str, Any]]
    status: str
    reviewer: str | None
    note: str | None
    resolved_at: float | None
    channel: str | None
    attributes: dict[str, str]


class ReviewsPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_EXAMPLE], "total": 1, "limit": 50, "offset": 0}]
        }
    )

    items: list[ReviewPublic]
    total: int
    limit: int
    offset: int


@router.get(
    "/v1/reviews",
    response_model=ReviewsPublic,
    summary="Transfers waiting for review (oldest first), or closed ones",
    responses=ERRORS,
)
def list_reviews(
    store: StoreDep,
    lookup: LookupDep,
    status: Annotated[
        Literal["open", "approved", "rejected", "any"], Query(description="Which items")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    check_page(limit, offset)
    wanted: ReviewStatus | None = None
    for s in REVIEW_STATUSES:
        if s == status:
            wanted = s
    page = lookup.run(
        "reviews.list",
        status,
        lambda: store.list_reviews(wanted, limit=limit, offset=offset),
        lambda p: f"total={p.total}",
    )
    return {
        "items": [asdict(i) for i in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


@router.post(
    "/v1/reviews/{review_id}",
    response_model=ReviewPublic,
    summary="Approve or reject a reviewed transfer; the verdict becomes a transfer label",
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
def resolve_review(
    review_id: ReviewId, body: ReviewVerdict, store: StoreDep, lookup: LookupDep
) -> dict[str, Any]:
    reviewer = lookup.principal.name
    done = lookup.run(
        "reviews.verdict",
        review_id,
        lambda: reviews.resolve(store, review_id, body.verdict, reviewer, body.note),
        lambda d: f"{d.status} transfer={d.transfer_id} label_written",
    )
    return asdict(done)
