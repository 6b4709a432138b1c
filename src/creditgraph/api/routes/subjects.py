"""``GET|DELETE /v1/subjects/{id}`` (admin): a data subject's export, and their erasure.

Both need ``X-Purpose`` (a request number: kept in the audit log) like every look-up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from creditgraph.api.deps import Principal, StateDep, StoreDep, require_role
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.subjects import SubjectErased, SubjectPublic
from creditgraph.errors import CreditGraphError
from creditgraph.services import subjects

router = APIRouter(tags=["subjects"])

Admin = Annotated[Principal, Depends(require_role("admin"))]
SubjectId = Annotated[str, Path(min_length=1, max_length=128, examples=["acc_000042"])]
Purpose = Annotated[
    str | None,
    Header(
        alias="X-Purpose",
        description="The data-subject request this answers (kept in the audit log)",
        examples=["DSR-2026-0042: access request"],
    ),
]
PURPOSE_MAX = 500


def _purpose(value: str | None) -> str:
    purpose = (value or "").strip()
    if not purpose:
        raise HTTPException(400, "missing X-Purpose header: name the data-subject request")
    if len(purpose) > PURPOSE_MAX:
        raise HTTPException(400, f"X-Purpose is longer than {PURPOSE_MAX} characters")
    return purpose


@router.get(
    "/v1/subjects/{account_id}",
    response_model=SubjectPublic,
    summary="Everything held about a person (data-subject access)",
    responses=error_responses(400, 401, 403, 404, 422, 503),
)
async def export_subject(
    account_id: SubjectId,
    principal: Admin,
    state: StateDep,
    store: StoreDep,
    x_purpose: Purpose = None,
) -> dict[str, Any]:
    """Attributes and consent, ties, transfers, labels, scores with reasons, rings, and who
    looked the person up, when and why. The look-up itself is audited."""
    purpose = _purpose(x_purpose)
    account_id = account_id.strip()
    try:
        out = await run_in_threadpool(subjects.export, store, state.ledger, account_id)
    except CreditGraphError:
        state.audit.record(principal=principal, action="subject.export", target=account_id,
                           result="refused", purpose=purpose, accounts=[account_id])  # fmt: skip
        raise
    state.audit.record(
        principal=principal,
        action="subject.export",
        target=account_id,
        result=f"transfers={out['transfers_total']} lookups={len(out['lookups'])}",
        purpose=purpose,
        accounts=[account_id],
    )
    return out


@router.delete(
    "/v1/subjects/{account_id}",
    response_model=SubjectErased,
    summary="Erase a person from the stores, the logs' links and this server's memory",
    responses=error_responses(400, 401, 403, 404, 422, 503),
)
async def erase_subject(
    account_id: SubjectId,
    principal: Admin,
    state: StateDep,
    store: StoreDep,
    x_purpose: Purpose = None,
) -> dict[str, Any]:
    """Removes the account with its ties, labels, ring memberships and scores, keeps a
    tombstone (a re-import is refused unless forced), unlinks the audit and decision
    entries about them (their pseudonym is deleted) and drops them from memory. Repeating
    it answers ``already_erased: true``."""
    purpose = _purpose(x_purpose)
    account_id = account_id.strip()
    who = {"key_id": principal.key_id, "key_name": principal.name, "role": principal.role}
    out = await run_in_threadpool(
        lambda: subjects.erase(store, state.ledger, account_id, who=who, purpose=purpose)
    )
    state.forget_erased([account_id])
    out["in_memory_forgotten"] = True
    return out
