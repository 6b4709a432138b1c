"""``GET /v1/accounts/{id}/score``: an account's fraud probability and social credit."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.routes.investigate import PURPOSE_MAX, LookupDep
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.accounts import AccountHistoryPublic, AccountScorePublic
from creditgraph.errors import InvalidInput, NotFound

router = APIRouter(tags=["accounts"])

ScoreReader = Annotated[Principal, Depends(require_role("payment", "investigator"))]


@router.get(
    "/v1/accounts/{account_id}/score",
    response_model=AccountScorePublic,
    summary="An account's fraud probability and social credit",
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)
async def account_score(
    account_id: Annotated[str, Path(min_length=1, max_length=128, examples=["acc_000042"])],
    principal: ScoreReader,
    state: StateDep,
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="Required of investigator and admin keys (400 without), as on every "
            "investigator look-up; kept in the audit log. The payment service need not send it.",
        ),
    ] = None,
) -> dict[str, Any]:
    """The champion's scores; accounts added since the last snapshot are scored from their
    neighbourhood. Every look-up is audited, an investigator's with its purpose.

    A payment key's look-up runs on the payment path's scoring slot; anyone else's on the
    investigators' own, so it never holds up a payment."""
    purpose = None
    if principal.role != "payment":
        purpose = (x_purpose or "").strip()
        if not purpose:
            raise HTTPException(
                400, "missing X-Purpose header: say why you look (kept in the audit)"
            )
        if len(purpose) > PURPOSE_MAX:
            raise HTTPException(400, f"X-Purpose is longer than {PURPOSE_MAX} characters")
    account_id = account_id.strip()  # as ingest trims ids (a copied id with a space)
    if not account_id:
        raise InvalidInput("account_id is blank")
    lane: Literal["payment", "investigator"] = (
        "payment" if principal.role == "payment" else "investigator"
    )
    try:
        out = asdict(await state.serving.account_score(account_id, lane=lane))
    except NotFound:
        state.audit.record(
            principal=principal,
            action="account.score",
            target=account_id,
            result="not_found",
            purpose=purpose,
            accounts=[account_id],
        )
        raise
    state.audit.record(
        principal=principal,
        action="account.score",
        target=account_id,
        result=f"p={out['fraud_probability']:.4f} model={out['model_version']}",
        purpose=purpose,
        accounts=[account_id],
    )
    # The social-credit dimension is a credit output: the decision log keeps it.
    await state.decisions.credit(
        kind="credit.social",
        account_id=account_id,
        inputs={"account_id": account_id, "source": out["source"]},
        model_version=out["model_version"],
        output={
            "social_credit": out["social_credit"],
            "fraud_probability": out["fraud_probability"],
            "source": out["source"],
            "degraded": out["degraded"],
            # Only when true: lines of scores without queued ties stay as they were.
            **({"pending": True} if out["pending"] else {}),
        },
        thresholds={},
        reasons=out["reasons"],
        key_id=principal.key_id,
    )
    return out


@router.get(
    "/v1/accounts/{account_id}/history",
    response_model=AccountHistoryPublic,
    summary="Every change to an account's recorded attributes: before, after, when, who",
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)
def account_history(
    account_id: Annotated[str, Path(min_length=1, max_length=128, examples=["acc_000042"])],
    state: StateDep,
    lookup: LookupDep,
) -> dict[str, Any]:
    """Investigators (with ``X-Purpose``) and admins; audited like every look-up."""
    account_id = account_id.strip()
    versions = lookup.run(
        "account.history",
        account_id,
        lambda: state.serving.store.account_history(account_id),
        lambda v: f"versions={len(v)}",
        accounts=[account_id],
    )
    return {"account_id": account_id, "versions": [asdict(v) for v in versions]}
