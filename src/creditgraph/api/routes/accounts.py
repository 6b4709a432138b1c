"""``GET /v1/accounts/{id}/score``: an account's fraud probability and social credit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.routes.schemas import ReasonPublic, error_responses
from creditgraph.api.state import ApiState
from creditgraph.errors import NotFound, StoreUnavailable

router = APIRouter(tags=["accounts"])

ScoreReader = Annotated[Principal, Depends(require_role("payment", "investigator"))]


class AccountScorePublic(BaseModel):
    """One account's scores with reasons."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_000042",
                    "fraud_probability": 0.031,
                    "social_credit": 0.71,
                    "reasons": [
                        {
                            "code": "FEATURE_LOWERS",
                            "message": "account_age_days lowers the fraud risk",
                            "evidence": {"feature": "account_age_days"},
                            "weight": -0.8,
                        }
                    ],
                    "model_version": "v0001",
                    "source": "table",
                    "degraded": False,
                }
            ]
        }
    )

    account_id: str
    fraud_probability: float = Field(ge=0, le=1)
    social_credit: float
    reasons: list[ReasonPublic]
    model_version: str
    source: Literal["table", "live", "inductive"] = Field(
        description="table: the model over the last snapshot; live: rescored after new data "
        "arrived over HTTP; inductive: scored now from the account's neighbourhood"
    )
    degraded: bool


def _score(state: ApiState, account_id: str) -> dict[str, Any]:
    engine = state.require_engine()
    store = state.live_store()
    try:
        if (
            store is not None
            and not engine.knows(account_id)
            and store.missing_accounts([account_id])
        ):
            raise NotFound(f"account {account_id!r} not found")
        risk = engine.account_risk(account_id, store)
    except StoreUnavailable as e:
        state.health.down(e)
        store = None
        risk = engine.account_risk(account_id, None)
    if risk.source == "unavailable" or risk.fraud_probability is None:
        raise StoreUnavailable(
            f"account {account_id!r} is not in memory and the store is unreachable"
        )
    reasons: list[dict[str, Any]]
    if risk.inductive is not None:
        reasons = risk.inductive.reasons
    else:
        reasons = []
        if store is not None:
            try:
                stored = store.get_scores([account_id])
            except StoreUnavailable as e:
                state.health.down(e)
                stored = []
            if stored and stored[0].model_version == engine.model_version:
                reasons = stored[0].reasons
        if not reasons:
            reasons = engine.scorer.score(account_id).reasons
    return {
        "account_id": account_id,
        "fraud_probability": risk.fraud_probability,
        "social_credit": risk.social_credit,
        "reasons": reasons,
        "model_version": engine.model_version,
        "source": risk.source,
        "degraded": store is None,
    }


@router.get(
    "/v1/accounts/{account_id}/score",
    response_model=AccountScorePublic,
    summary="An account's fraud probability and social credit",
    responses=error_responses(401, 403, 404, 503),
)
async def account_score(
    account_id: Annotated[str, Path(min_length=1, max_length=128, examples=["acc_000042"])],
    principal: ScoreReader,
    state: StateDep,
) -> dict[str, Any]:
    """The champion's scores; accounts added since the last snapshot are scored from their
    neighbourhood. Every look-up is audited."""
    try:
        out = await to_thread.run_sync(_score, state, account_id, limiter=state.scoring_limiter)
    except NotFound:
        state.audit.record(
            principal=principal, action="account.score", target=account_id, result="not_found"
        )
        raise
    state.audit.record(
        principal=principal,
        action="account.score",
        target=account_id,
        result=f"p={out['fraud_probability']:.4f} model={out['model_version']}",
    )
    return out
