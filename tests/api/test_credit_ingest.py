"""``POST /v1/obligations`` and ``PUT /v1/accounts/{id}/consent`` over HTTP."""

from __future__ import annotations

from typing import Any

from tests.apitools import ApiClient, audit_entries

OB = {
    "obligation_id": "OX1",
    "account_id": "A0000010",
    "kind": "pay_later",
    "amount": 80.0,
    "opened_at": "2024-11-01",
    "due_at": "2024-12-01",
    "status": "open",
}


def _audit(api: ApiClient) -> list[dict[str, Any]]:
    return audit_entries(api.settings)


def test_post_obligations_and_advance(api: ApiClient) -> None:
    r = api.post("/v1/obligations", "payment", json={"items": [OB]})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 1
    assert r.json()["kind"] == "obligations"
    paid = {**OB, "status": "repaid", "closed_at": "2024-11-20"}
    r = api.post("/v1/obligations", "payment", json={"items": [paid]})
    assert r.status_code == 200
    assert r.json()["changed"] == 1
    back = api.post("/v1/obligations", "payment", json={"items": [OB]})
    assert back.status_code == 409
    body = back.json()["error"]
    assert "never moves backwards" in body["message"]
    assert body["fields"][0]["loc"] == ["body", "items", 0, "status"]
    assert any(e["action"] == "ingest.obligations" for e in _audit(api))


def test_post_obligations_validates_like_the_csv(api: ApiClient) -> None:
    bad = {**OB, "obligation_id": "OX2", "status": "repaid"}  # no closed_at
    r = api.post("/v1/obligations", "payment", json={"items": [OB, bad]})
    assert r.status_code == 422
    fields = r.json()["error"]["fields"]
    assert fields[0]["loc"] == ["body", "items", 1, "closed_at"]
    # All or nothing: the good item was not written either (a second send still changes it).
    again = api.post("/v1/obligations", "payment", json={"items": [OB]})
    assert again.json()["changed"] == 1


def test_post_obligations_roles(api: ApiClient) -> None:
    assert api.post("/v1/obligations", json={"items": [OB]}).status_code == 401
    r = api.post("/v1/obligations", "investigator", json={"items": [OB]})
    assert r.status_code == 403


def test_put_consent_is_audited(api: ApiClient) -> None:
    url = "/v1/accounts/A0000010/consent"
    h = api.as_role("payment")
    r = api.client.put(url, headers=h, json={"social_scoring": "withdrawn"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "account_id": "A0000010",
        "social_scoring": "withdrawn",
        "previous": "granted",
        "explicit": False,
    }
    r = api.client.put(url, headers=h, json={"social_scoring": "granted"})
    assert r.json()["previous"] == "withdrawn"
    assert r.json()["explicit"] is True
    entries = [e for e in _audit(api) if e["action"] == "account.consent"]
    assert [e["result"] for e in entries] == [
        "social_scoring=withdrawn (was granted)",
        "social_scoring=granted (was withdrawn)",
    ]
    assert entries[0]["key_name"] == "test-payment"


def test_put_consent_refusals(api: ApiClient) -> None:
    h = api.as_role("payment")
    bad = api.client.put("/v1/accounts/A0000010/consent", headers=h, json={"social_scoring": "x"})
    assert bad.status_code == 422
    missing = api.client.put(
        "/v1/accounts/nobody/consent", headers=h, json={"social_scoring": "withdrawn"}
    )
    assert missing.status_code == 404
    inv = api.client.put(
        "/v1/accounts/A0000010/consent",
        headers=api.as_role("investigator"),
        json={"social_scoring": "withdrawn"},
    )
    assert inv.status_code == 403
    assert any(
        e["action"] == "account.consent" and e["result"].startswith("refused") for e in _audit(api)
    )
