"""The auth matrix: every endpoint x (no key, bad key, each role)."""

from __future__ import annotations

import pytest

from tests.apitools import ApiClient

A, B = "A0000001", "A0000002"
ENDPOINTS: list[tuple[str, str, dict[str, object] | None, set[str]]] = [
    ("POST", "/v1/risk/transfer", {"src": A, "dst": B, "amount": 1}, {"payment", "admin"}),
    ("GET", f"/v1/accounts/{A}/score", None, {"payment", "investigator", "admin"}),
    (
        "POST",
        "/v1/transfers",
        {
            "items": [
                {"transfer_id": "m1", "src": A, "dst": B, "amount": 1, "timestamp": "2026-01-01"}
            ]
        },
        {"payment", "admin"},
    ),
    (
        "POST",
        "/v1/links",
        {"items": [{"src": A, "dst": B, "type": "SHARES_DEVICE"}]},
        {"payment", "admin"},
    ),
    ("POST", "/v1/accounts", {"items": [{"account_id": "m-acc"}]}, {"payment", "admin"}),
    (
        "POST",
        "/v1/labels",
        {"items": [{"account_id": A, "label": "legit"}]},
        {"investigator", "admin"},
    ),
    ("GET", "/v1/models", None, {"investigator", "admin"}),
    ("POST", "/v1/models/v0001/promote", None, {"admin"}),
    ("POST", "/v1/admin/reload", None, {"admin"}),
]
ROLES = ("payment", "investigator", "admin")


@pytest.mark.parametrize(
    ("method", "url", "body", "allowed"), ENDPOINTS, ids=[f"{m} {u}" for m, u, _, _ in ENDPOINTS]
)
def test_auth_matrix(
    api: ApiClient, method: str, url: str, body: dict[str, object] | None, allowed: set[str]
) -> None:
    call = api.client.post if method == "POST" else api.client.get
    kwargs = {"json": body} if body is not None else {}
    r = call(url, **kwargs)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthorized"
    r = call(url, headers={"Authorization": "Bearer cg_nothere_secret"}, **kwargs)
    assert r.status_code == 401
    key = api.keys["payment"]
    r = call(url, headers={"Authorization": f"Bearer {key[:-2]}xx"}, **kwargs)
    assert r.status_code == 401
    for role in ROLES:
        # Investigators state a purpose on every look-up (tests/api/test_audit_gaps.py).
        r = call(url, headers={**api.as_role(role), "X-Purpose": "auth matrix"}, **kwargs)
        if role in allowed:
            assert r.status_code == 200, (role, r.text)
        else:
            assert r.status_code == 403, (role, r.text)
            assert r.json()["error"]["code"] == "forbidden"


def test_operations_need_no_key(api: ApiClient) -> None:
    for url in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert api.get(url).status_code == 200
