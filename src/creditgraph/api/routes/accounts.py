"""``GET /v1/accounts/{id}/score``: an account's fraud probability and social credit."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.accounts import AccountScorePublic
from creditgraph.errors import InvalidInput, NotFound

router = APIRouter(tags=["accounts"])

ScoreReader = Annotated[Principal, Depends(require_role("payment", "investigator"))]


@router.get(
    "/v1/accounts/{account_id}/score",
    response_model=AccountScorePublic,
    summary="An account's fraud probability and social credit",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def account_score(
    account_id: Annotated[str, Path(min_length=1, max_length=128, examples=["acc_000042"])],
    principal: ScoreReader,
    state: StateDep,
) -> dict[str, Any]:
    """The champion's scores; accounts added since the last snapshot are scored from their
    neighbourhood. Every look-up is audited."""
    account_id = account_id.strip()  # as ingest trims ids (a copied id with a space)
    if not account_id:
        raise InvalidInput("account_id is blank")
    try:
        out = asdict(await state.serving.account_score(account_id))
    except NotFound:
        state.audit.record(
            principal=principal,
            action="account.score",
            target=account_id,
            result="not_found",
            accounts=[account_id],
        )
        raise
    state.audit.record(
        principal=principal,
        action="account.score",
        target=account_id,
        result=f"p={out['fraud_probability']:.4f} model={out['model_version']}",
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
        },
        thresholds={},
        reasons=out["reasons"],
        key_id=principal.key_id,
    )
    return out
