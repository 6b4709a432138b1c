"""The public schema mirrors the code: every reason code a client can receive is in the
OpenAPI enum, and the served answers validate against their documented models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from creditgraph.api.schemas.accounts import AccountScorePublic
from creditgraph.api.schemas.investigate import AccountPublic
from creditgraph.api.schemas.risk import RiskDecisionPublic
from creditgraph.domain import ReasonCode
from tests.apitools import ApiClient

KNOWN_A, KNOWN_B = "A0000001", "A0000002"


def test_openapi_lists_every_reason_code(api: ApiClient) -> None:
    spec: dict[str, Any] = api.get("/openapi.json").json()
    published = spec["components"]["schemas"]["ReasonCode"]["enum"]
    assert sorted(published) == sorted(code.value for code in ReasonCode)


def test_served_answers_validate_against_their_models(api: ApiClient) -> None:
    investigator = {**api.as_role("investigator"), "X-Purpose": "schema check"}
    answers: list[tuple[type[BaseModel], Any]] = [
        (
            RiskDecisionPublic,
            api.post(
                "/v1/risk/transfer", "payment", json={"src": KNOWN_A, "dst": KNOWN_B, "amount": 9}
            ),
        ),
        (
            RiskDecisionPublic,
            api.post(
                "/v1/risk/transfer", "payment", json={"src": KNOWN_A, "dst": "ghost", "amount": 9}
            ),
        ),
        (AccountScorePublic, api.get(f"/v1/accounts/{KNOWN_A}/score", "payment")),
        (AccountScorePublic, api.get("/v1/accounts/ghost/score", "payment")),
        (AccountPublic, api.client.get(f"/v1/accounts/{KNOWN_A}", headers=investigator)),
    ]
    for model, response in answers:
        if response.status_code == 404:
            continue  # an unknown account has no score: nothing to validate
        assert response.status_code == 200, (model.__name__, response.text)
        model.model_validate(response.json())
    account = AccountPublic.model_validate(answers[-1][1].json())
    assert account.ties, "a loaded model attributes the account's direct ties"
    codes = {r.code for r in account.reasons + account.ties}
    assert codes <= set(ReasonCode)
