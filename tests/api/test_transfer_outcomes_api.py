"""Transfer outcomes over HTTP: ``POST /v1/transfer-labels`` (investigator or admin),
transfer attributes on ingest and on the risk request, and the hard limits in answers."""

from __future__ import annotations

from creditgraph.store.embedded import EmbeddedStore
from tests.apitools import ApiClient

RISK = "/v1/risk/transfer"
A, B = "A0000001", "A0000002"
ITEM = {
    "transfer_id": "t-outcome-1",
    "src": A,
    "dst": B,
    "amount": 75.0,
    "timestamp": "2026-01-02T10:00:00Z",
    "channel": "app",
    "attributes": {"device": "dev-9", "merchant_category": "travel"},
}


def _store(api: ApiClient) -> EmbeddedStore:
    return EmbeddedStore(api.settings.embedded_path)


def test_transfer_attributes_are_stored_and_outcomes_need_an_investigator(api: ApiClient) -> None:
    assert api.post("/v1/transfers", "payment", json={"items": [ITEM]}).status_code == 200
    label = {"items": [{"transfer_id": "t-outcome-1", "label": "fraud", "source": "chargeback"}]}
    assert api.post("/v1/transfer-labels", "payment", json=label).status_code == 403
    r = api.post("/v1/transfer-labels", "investigator", json=label)
    assert r.status_code == 200, r.text
    assert (r.json()["kind"], r.json()["changed"]) == ("transfer_labels", 1)
    assert api.post("/v1/transfer-labels", "admin", json=label).json()["changed"] == 0
    store = _store(api)
    try:
        log = store.transfer_log()
        row = log.transfer_id.index("t-outcome-1")
        assert log.properties[row] == {"device": "dev-9", "merchant_category": "travel"}
        got = store.transfer_labels()
        k = got.transfer_id.index("t-outcome-1")
        assert (got.label[k], got.source[k]) == ("fraud", "chargeback")
    finally:
        store.close()


def test_a_label_for_an_unknown_transfer_is_refused_and_nothing_is_written(
    api: ApiClient,
) -> None:
    store = _store(api)
    try:
        before = store.transfer_labels()
        known = before.transfer_id[0]
        body = {
            "items": [
                {"transfer_id": known, "label": "legit" if before.label[0] == "fraud" else "fraud"},
                {"transfer_id": "no-such-transfer", "label": "fraud"},
            ]
        }
        r = api.post("/v1/transfer-labels", "investigator", json=body)
        assert r.status_code == 422, r.text
        assert "no-such-transfer" in r.text
        assert store.transfer_labels() == before
    finally:
        store.close()


def test_the_risk_request_takes_channel_and_attributes(api: ApiClient) -> None:
    body = {"src": A, "dst": B, "amount": 20, "channel": "web", "attributes": {"device": "d"}}
    assert api.post(RISK, "payment", json=body).status_code == 200
    bad = {"src": A, "dst": B, "amount": 20, "attributes": {"amount": "5"}}
    assert api.post(RISK, "payment", json=bad).status_code == 422


def test_an_absurd_amount_is_blocked_with_a_reason(api: ApiClient) -> None:
    r = api.post(RISK, "payment", json={"src": A, "dst": B, "amount": 1e308})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "block"
    assert body["reasons"][0]["code"] == "AMOUNT_ABSURD"
    big = api.post(RISK, "payment", json={"src": A, "dst": B, "amount": 60_000}).json()
    assert big["decision"] == "block"
    assert big["reasons"][0]["code"] == "HARD_LIMIT"
