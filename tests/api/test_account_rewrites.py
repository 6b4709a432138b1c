"""A payment key cannot rewrite an existing account (issue 15, defect 5); an admin can, and
the change is versioned, listed by ``/history`` and audited."""

from __future__ import annotations

from tests.apitools import ApiClient, audit_entries

A = "A0000001"
PURPOSE = {"X-Purpose": "case 15: history"}


def test_a_payment_key_cannot_rewrite_features_or_created_at(api: ApiClient) -> None:
    before = api.get(f"/v1/accounts/{A}/score", "payment").json()
    stored = api.get(f"/v1/accounts/{A}", "investigator", headers=PURPOSE).json()
    feature, value = next(iter(stored["features"].items()))
    rewrite = {
        "items": [
            {"account_id": "fresh-1", "features": {feature: 1.0}},
            {"account_id": A, "created_at": "2026-11-30", "features": {feature: value + 100}},
        ]
    }
    r = api.post("/v1/accounts", "payment", json=rewrite)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["fields"] == [
        {
            "loc": ["body", "items", 1],
            "message": f"already has a different created_at, features.{feature}",
            "differing": ["created_at", f"features.{feature}"],
        }
    ]
    assert "nothing was written" in error["message"]
    after = api.get(f"/v1/accounts/{A}", "investigator", headers=PURPOSE).json()
    assert (after["features"], after["created_at"]) == (stored["features"], stored["created_at"])
    assert api.get(f"/v1/accounts/{A}/score", "payment").json() == before
    assert api.get("/v1/accounts/fresh-1/score", "payment").status_code == 404
    # Adding an attribute it lacks, and a new account: allowed.
    add = {"items": [{"account_id": A, "properties": {"nickname": "al"}}, {"account_id": "n2"}]}
    assert api.post("/v1/accounts", "payment", json=add).status_code == 200


def test_an_admin_change_is_versioned_listed_and_audited(api: ApiClient) -> None:
    stored = api.get(f"/v1/accounts/{A}", "investigator", headers=PURPOSE).json()
    feature, value = next(iter(stored["features"].items()))
    change = {"items": [{"account_id": A, "features": {feature: value + 1}}]}
    r = api.post("/v1/accounts", "admin", json=change)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 1
    assert api.get(f"/v1/accounts/{A}/history", "investigator").status_code == 400  # purpose
    assert api.get(f"/v1/accounts/{A}/history", "payment").status_code == 403
    history = api.get(f"/v1/accounts/{A}/history", "investigator", headers=PURPOSE)
    assert history.status_code == 200, history.text
    versions = history.json()["versions"]
    admin_key_id = api.keys["admin"].split("_")[1]
    assert [(v["version"], v["actor"], v["before"], v["after"]) for v in versions] == [
        (
            1,
            f"key:{admin_key_id}",
            {f"features.{feature}": value},
            {f"features.{feature}": value + 1},
        )
    ]
    lines = audit_entries(api.settings)
    ingest = next(x for x in lines if x["action"] == "ingest.accounts")
    assert (ingest["role"], ingest["subjects"]) == ("admin", [A])
    assert any(x["action"] == "account.history" and x["subjects"] == [A] for x in lines)
