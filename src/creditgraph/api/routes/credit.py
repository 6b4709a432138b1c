"""Credit routes: ``GET /v1/accounts/{id}/credit`` (the credit profile) and consent
(``PUT /v1/accounts/{id}/consent``).

Credit outputs are a separate product from the fraud score (EU AI Act: credit scoring is
high-risk, fraud detection is not): their own routes, model and audit actions.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.routes.investigate import PURPOSE_MAX
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.credit import ConsentPublic, ConsentUpdate, CreditProfilePublic
from creditgraph.errors import CreditGraphError, InvalidInput
from creditgraph.services.consent import set_consent
from creditgraph.services.credit import credit_profile

router = APIRouter(tags=["credit"])

ConsentWriter = Annotated[Principal, Depends(require_role("payment"))]
CreditReader = Annotated[Principal, Depends(require_role("payment", "investigator"))]
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
            accounts=[account_id],
        )
        raise
    state.audit.record(
        principal=principal,
        action="account.consent",
        target=account_id,
        result=f"social_scoring={change.social_scoring} (was {change.previous})",
        accounts=[account_id],
    )
    return asdict(change)


@router.get(
    "/v1/accounts/{account_id}/credit",
    response_model=CreditProfilePublic,
    summary="An account's credit profile: five dimensions, a 350-950 score, its reasons",
    responses=error_responses(400, 401, 403, 404, 422, 503),
)
async def get_credit(
    account_id: AccountId,
    principal: CreditReader,
    state: StateDep,
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="Investigators only (required for them): why you look; audited",
        ),
    ] = None,
) -> dict[str, Any]:
    """Roles payment and admin; investigators with an ``X-Purpose`` header. Relationships
    enter only with the account's consent and under the social policy (docs/credit.md).
    Every look-up is audited (action ``account.credit``), apart from the fraud score's."""
    purpose = (x_purpose or "").strip() or None
    if principal.role == "investigator":
        if purpose is None:
            raise HTTPException(
                400, "missing X-Purpose header: say why you look (kept in the audit)"
            )
        if len(purpose) > PURPOSE_MAX:
            raise HTTPException(400, f"X-Purpose is longer than {PURPOSE_MAX} characters")
    account_id = _account_id(account_id)

    def profile() -> dict[str, Any]:
        model = state.credit.model()
        return credit_profile(state.serving.store, model, account_id, state.settings.credit)

    try:
        out = await run_in_threadpool(profile)
    except CreditGraphError as e:
        state.audit.record(
            principal=principal,
            action="account.credit",
            target=account_id,
            result=f"refused: {type(e).__name__}",
            purpose=purpose,
            accounts=[account_id],
        )
        raise
    # The credit output goes to the decision log (hash-chained), apart from fraud decisions.
    await state.decisions.credit(
        account_id=account_id,
        inputs={"as_of_model": out["model_version"], "policy": state.settings.credit.social_policy},
        model_version=out["model_version"],
        output={
            "credit_score": out["credit_score"],
            "band": out["band"],
            "p_default": out["p_default"],
            "dimensions": {d: v["score"] for d, v in out["dimensions"].items()},
            "social_used": out["dimensions"]["social"]["used"],
        },
        thresholds={
            "policy": state.settings.credit.social_policy,
            "social_cap": state.settings.credit.social_cap,
            "consent_default": state.settings.credit.consent_default,
        },
        reasons=[{"code": r["code"], "points": r["points"]} for r in out["reasons"]],
        key_id=principal.key_id,
        kind="credit.profile",
    )
    state.audit.record(
        principal=principal,
        action="account.credit",
        target=account_id,
        result=(
            f"score={out['credit_score']} p_default={out['p_default']:.4f} "
            f"social_used={out['dimensions']['social']['used']} model={out['model_version']}"
        ),
        purpose=purpose,
        accounts=[account_id],
    )
    return out
