"""Credit routes: consent (``PUT /v1/accounts/{id}/consent``).

Credit outputs are a separate product from the fraud score (EU AI Act: credit scoring is
high-risk, fraud detection is not): their own routes, model and audit actions.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.credit import ConsentPublic, ConsentUpdate
from creditgraph.errors import CreditGraphError, InvalidInput
from creditgraph.services.consent import set_consent

router = APIRouter(tags=["credit"])

ConsentWriter = Annotated[Principal, Depends(require_role("payment"))]
AccountId = Annotated[str, Path(min_length=1, max_length=128, examples=["acc_000042"])]


def _account_id(raw: str) -> str:
    account_id = raw.strip()  # as ingest trims ids
    if not account_id:
        raise InvalidInput("account_id is blank")
    return account_id


@router.put(
    "/v1/accounts/{account_id}/consent",
    response_model=ConsentPublic,
    summary="Grant or withdraw consent to use relationships in credit outputs",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def put_consent(
    account_id: AccountId, body: ConsentUpdate, principal: ConsentWriter, state: StateDep
) -> dict[str, Any]:
    """Withdrawn: no relationship of the account enters its credit profile from the next
    request on. Every change (and every refused one) is audited."""
    account_id = _account_id(account_id)
    default = state.settings.credit.consent_default
    try:
        change = await run_in_threadpool(
            set_consent, state.serving.store, account_id, body.social_scoring, default
        )
    except CreditGraphError as e:
        state.audit.record(
            principal=principal,
            action="account.consent",
            target=account_id,
            result=f"refused: {type(e).__name__}",
        )
        raise
    state.audit.record(
        principal=principal,
        action="account.consent",
        target=account_id,
        result=f"social_scoring={change.social_scoring} (was {change.previous})",
    )
    return asdict(change)
