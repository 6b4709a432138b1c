"""``POST /v1/risk/transfer``: allow, review or block, before every transfer."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from creditgraph.api.deps import PRINCIPAL, allowed_roles, authenticate, authorize
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.risk import RiskDecisionPublic, TransferRiskCreate
from creditgraph.api.state import ApiState
from creditgraph.services.risk import RiskDecision, TransferCheck

router = APIRouter(tags=["risk"])


def decision_payload(d: RiskDecision) -> dict[str, object]:
    return {
        "decision": d.decision,
        "risk": d.risk,
        "reasons": d.reasons,
        "model_version": d.model_version,
        "degraded": d.degraded,
    }


RISK_PATH = "/v1/risk/transfer"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_ALLOWED = allowed_roles("payment")
_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TransferRiskCreate.model_json_schema()}},
    },
    "parameters": [
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": "Repeat a request with the same key to get the same answer "
            "(kept 24 h in memory per server process)",
            "example": "3f1c2a7e-transfer-981",
        }
    ],
    "security": [{"HTTPBearer": []}],
}


def _parse(raw: bytes, idempotency_key: str | None) -> TransferRiskCreate:
    errors: list[Any] = []
    body = None
    try:
        body = TransferRiskCreate.model_validate_json(raw)
    except ValidationError as e:
        errors += [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        errors.append(
            {
                "loc": ("header", IDEMPOTENCY_HEADER),
                "msg": "must be 1-200 characters",
                "type": "string_length",
            }
        )
    if errors or body is None:
        raise RequestValidationError(errors)
    return body


@router.post(
    RISK_PATH,
    response_model=RiskDecisionPublic,
    summary="Decide on a transfer before it is made",
    responses=error_responses(401, 403, 409, 422, 503),
    openapi_extra=_OPENAPI,
)
async def check_transfer(request: Request) -> Response:
    """Allow, review or block with a risk in [0, 1] and the reasons. Unknown accounts are
    scored from their neighbourhood; with the store unreachable the answer comes from memory
    and says ``degraded: true``.

    The hot path: no FastAPI dependencies (auth, body and header are read here with the same
    helpers the dependencies use, and documented through ``openapi_extra``). Resolving
    dependencies cost more per request than the decision itself (docs/benchmarks.md)."""
    state: ApiState = request.app.state.api
    verified = request.scope.get(PRINCIPAL)  # BodyGuard checked the key before the body
    principal = (
        authorize(verified, _ALLOWED)
        if verified is not None
        else authenticate(state, request.headers.get("authorization"), _ALLOWED)
    )
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    body = _parse(await request.body(), idempotency_key)
    serving = state.serving
    serving.require_engine()  # 503 before a model is loaded, replay or not
    fingerprint = b""
    if idempotency_key is not None:
        fingerprint = state.idempotency.fingerprint(body.model_dump_json().encode())
        cached = state.idempotency.reserve(principal.key_id, idempotency_key, fingerprint)
        if isinstance(cached, asyncio.Future):  # the same request, in flight: its answer
            cached = await asyncio.shield(cached)
        if cached is not None:
            state.audit.record(
                principal=principal,
                action="risk.transfer",
                target=f"{body.src}->{body.dst}",
                result="replayed",
                accounts=(body.src, body.dst),
            )
            return Response(
                cached, media_type="application/json", headers={"Idempotent-Replayed": "true"}
            )
    try:
        check = TransferCheck(
            src=body.src,
            dst=body.dst,
            amount=body.amount,
            currency=body.currency,
            timestamp=body.timestamp.timestamp() if body.timestamp else None,
            channel=body.channel,
            attributes=body.attributes,
            transfer_id=body.transfer_id,
        )
        decision = await serving.decide(check)
        # A review answer enters the store-backed queue first (committed, in a batch with
        # the review answers in flight beside it), so its log line names it.
        queued = None
        if decision.decision == "review":
            queued = await serving.queue_review(check, decision)
        # Logged before it is answered (or cached for a replay): a decision that cannot be
        # recorded is a 503, never an unrecorded answer. One line, in the decision log (it
        # names the key): a second, audit-log line per decision doubled the logging cost.
        # Written with the other lines of this event-loop pass (``LineBatch``).
        seq = await state.decisions.risk(
            inputs=body.model_dump(mode="json"),
            src=body.src,
            dst=body.dst,
            decision=decision.decision,
            risk=decision.risk,
            model_version=decision.model_version,
            policy=serving.policy,
            reasons=decision.reasons,
            degraded=decision.degraded,
            key_id=principal.key_id,
            applied={
                "decision_policy": decision.policy,
                "thresholds": dict(decision.thresholds),
                "review_id": queued,
            },
        )
        await state.decisions.settle(seq)  # waits for the fsync only under decision_ack=fsync
        answer = orjson.dumps(decision_payload(decision))
    except BaseException as e:
        if idempotency_key is not None:
            state.idempotency.release(principal.key_id, idempotency_key, e)
        raise
    if idempotency_key is not None:
        state.idempotency.put(principal.key_id, idempotency_key, fingerprint, answer)
    state.metrics.decided(decision.decision, decision.degraded)
    return Response(answer, media_type="application/json")
