"""Audit gaps (issue 15, defect 4): purposes on every investigator look-up, whom ingest and
labels touched, refusals recorded, and every account a graph view shows."""

from __future__ import annotations

from typing import Any

from tests.apitools import ApiClient, audit_entries

A, B = "A0000001", "A0000002"
PURPOSE = {"X-Purpose": "case 15: audit"}


def audit(api: ApiClient) -> list[dict[str, Any]]:
    """The audit entries with pseudonyms turned back into account ids."""
    return audit_entries(api.settings) if api.settings.audit_log_path.exists() else []


def test_investigators_state_a_purpose_for_score_look_ups(api: ApiClient) -> None:
    url = f"/v1/accounts/{A}/score"
    for role in ("investigator", "admin"):
        r = api.get(url, role)
        assert r.status_code == 400, (role, r.text)
        assert "X-Purpose" in r.json()["error"]["message"]
        assert api.get(url, role, headers={"X-Purpose": "   "}).status_code == 400
    assert api.get(url, "investigator", headers=PURPOSE).status_code == 200
    assert api.get(url, "payment").status_code == 200  # the payment service states none
    looks = [x for x in audit(api) if x["action"] == "account.score"]
    assert [(x["role"], x.get("purpose")) for x in looks] == [
        ("investigator", PURPOSE["X-Purpose"]),
        ("payment", None),
    ]
    assert all(x["subjects"] == [A] for x in looks)


def test_ingest_and_label_entries_name_the_accounts_and_ids(api: ApiClient) -> None:
    items = [
        {"transfer_id": "aud-1", "src": A, "dst": B, "amount": 5, "timestamp": "2026-01-01"},
        {
            "transfer_id": " aud-2 ",
            "src": B,
            "dst": "A0000003",
            "amount": 7,
            "timestamp": "2026-01-02",
        },
    ]
    assert api.post("/v1/transfers", "payment", json={"items": items}).status_code == 200
    link = {"src": A, "dst": "A0000004", "type": "SHARES_DEVICE"}
    assert api.post("/v1/links", "payment", json={"items": [link]}).status_code == 200
    labels = [{"account_id": B, "label": "fraud"}, {"account_id": A, "label": "legit"}]
    assert api.post("/v1/labels", "investigator", json={"items": labels}).status_code == 200
    entries = {x["action"]: x for x in audit(api) if x["action"].startswith("ingest.")}
    assert entries["ingest.transfers"]["subjects"] == [A, B, "A0000003"]
    assert entries["ingest.transfers"]["ids"] == ["aud-1", "aud-2"]
    assert entries["ingest.links"]["subjects"] == [A, "A0000004"]
    assert "ids" not in entries["ingest.links"]  # a link is named by its two accounts
    assert entries["ingest.labels"]["subjects"] == [B, A]
    assert entries["ingest.labels"]["role"] == "investigator"


def test_a_refused_batch_is_audited_with_whom_it_named(api: ApiClient) -> None:
    items = [
        {
            "transfer_id": "aud-x",
            "src": A,
            "dst": "nobody-here",
            "amount": 1,
            "timestamp": "2026-01-03",
        }
    ]
    r = api.post("/v1/transfers", "payment", json={"items": items})
    assert r.status_code in (404, 422), r.text
    entry = next(x for x in audit(api) if x["action"] == "ingest.transfers")
    assert entry["result"].startswith("refused")
    assert entry["subjects"] == [A, "nobody-here"]
    assert entry["ids"] == ["aud-x"]


def test_refusals_are_recorded(api: ApiClient) -> None:
    risk = {"src": A, "dst": B, "amount": 1}
    assert api.client.post("/v1/risk/transfer", json=risk).status_code == 401
    bad = {"Authorization": "Bearer cg_madeup123_secret"}
    assert api.client.get(f"/v1/accounts/{A}/score", headers=bad).status_code == 401
    assert api.post("/v1/labels", "payment", json={"items": []}).status_code == 403
    assert api.post("/v1/risk/transfer", "payment", json={"src": A}).status_code == 422
    big = {"src": A, "dst": B, "amount": 1, "attributes": {"x": "y" * 20_000}}
    assert api.post("/v1/risk/transfer", "payment", json=big).status_code == 413
    assert api.get(f"/v1/accounts/{A}", "investigator").status_code == 400  # no purpose
    refused = [x for x in audit(api) if x["action"] == "http.refused"]
    got = [(x["result"], x["target"], x["role"]) for x in refused]
    assert got == [
        ("401", "POST /v1/risk/transfer", None),
        ("401", f"GET /v1/accounts/{A}/score", None),
        ("403", "POST /v1/labels", "payment"),
        ("422", "POST /v1/risk/transfer", "payment"),
        ("413", "POST /v1/risk/transfer", "payment"),
        ("400", f"GET /v1/accounts/{A}", "investigator"),
    ]
    assert refused[1]["claimed_key_id"] == "madeup123"
    raw = api.settings.audit_log_path.read_text()
    assert "secret" not in raw
    assert (
        A not in raw
    )  # account ids are pseudonyms in the file  # the claimed key's secret part is never written


def test_graph_views_record_every_account_they_return(api: ApiClient) -> None:
    r = api.get(f"/v1/accounts/{A}/neighbourhood?hops=2&limit=5", "investigator", headers=PURPOSE)
    assert r.status_code == 200
    shown = [n["id"] for n in r.json()["nodes"]]
    assert len(shown) > 1
    p = api.get(f"/v1/paths?from={A}&to={shown[-1]}", "investigator", headers=PURPOSE)
    assert p.status_code == 200
    t = api.get(f"/v1/accounts/{A}/transfers?limit=5", "investigator", headers=PURPOSE)
    assert t.status_code == 200
    entries = {x["action"]: x for x in audit(api) if x["action"].startswith("investigate.")}
    assert entries["investigate.neighbourhood"]["subjects"] == shown
    path_nodes = [n["id"] for n in p.json()["nodes"]]
    assert set(entries["investigate.paths"]["subjects"]) == {A, shown[-1], *path_nodes}
    parties = {x for item in t.json()["items"] for x in (item["src"], item["dst"])}
    assert set(entries["investigate.transfers"]["subjects"]) == parties | {A}
