"""Investigator endpoints on a small hand-made graph: auth, purpose, audit, caps, pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from creditgraph.api.schemas.investigate import (
    AccountPublic,
    GraphPublic,
    PathsPublic,
    RingPublic,
    RingQueuePublic,
    RingUpdated,
    TransfersPublic,
)
from creditgraph.config import Settings
from creditgraph.domain import AccountColumns, Ring, Score, TransferColumns
from creditgraph.store.factory import open_store
from tests.apitools import ApiClient, api_client, audit_entries, bearer
from tests.integration.test_store_contract import ACCOUNTS, LABELS, LINKS, TRANSFERS, load

PURPOSE = "case 117: chargeback review"
SPOKES = [f"S{i:02d}" for i in range(30)]

RINGS = [
    Ring(
        "R1",
        "cycle",
        0.9,
        ["A", "B", "C"],
        {"cycles": [["A", "B", "C"]], "shared_links": [{"a": "C", "b": "E", "type": "X"}]},
    ),
    Ring("R2", "shared_identity", 0.5, ["C", "E"], {}, status="investigating"),
    Ring("R3", "mule_fan_out", 0.7, ["HUB", *SPOKES[:5]], {"hubs": ["HUB"]}),
]


def _scores() -> list[Score]:
    reasons = [
        {
            "code": "FEATURE_RAISES_RISK",
            "message": "kyc_level = 1 raises the fraud risk",
            "weight": 0.8,
            "evidence": {"target": "fraud", "feature": "kyc_level"},
        },
        {
            "code": "RELATION_RAISES_RISK",
            "message": "the TRANSFER_in relation (2 neighbours) raises the relationship risk",
            "weight": 0.4,
            "evidence": {"target": "social", "relation": "TRANSFER_in"},
        },
    ]
    probs = {"A": 0.91, "B": 0.35, "C": 0.6, "D": 0.01, "HUB": 0.7}
    return [Score(a, p, 100 * (1 - p), "v0001", reasons, 1.7e9) for a, p in probs.items()]


def build_graph(settings: Settings, tmp_path: Path) -> None:
    """The contract graph, a hub paying 30 spokes, scores for a few accounts, three rings."""
    store = open_store(settings)
    try:
        store.apply_schema()
        load(store, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS)
        ids = ["HUB", *SPOKES]
        store.upsert_accounts(
            AccountColumns(ids, [None] * len(ids), [{}] * len(ids), [{}] * len(ids))
        )
        n = len(SPOKES)
        store.upsert_transfers(
            TransferColumns(
                [f"H{i}" for i in range(n)],
                ["HUB"] * n,
                SPOKES,
                [100.0 + i for i in range(n)],
                [1.7e9 + i for i in range(n)],
                ["EUR"] * n,
                [None] * n,
            )
        )
        store.write_scores(_scores())
        store.write_rings(RINGS)
    finally:
        store.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    root = tmp_path_factory.mktemp("investigate")
    # HUB (30 transfers) is a hub here; every other account is far below.
    settings = Settings(data_dir=root / "data", investigate_hub_degree=20)
    build_graph(settings, root)
    with api_client(settings) as client:
        yield client


def get(api: ApiClient, url: str, role: str = "investigator", **params: Any) -> Any:
    headers = {**api.as_role(role), "X-Purpose": PURPOSE}
    return api.client.get(url, headers=headers, params=params)


def audit_lines(settings: Settings) -> list[dict[str, Any]]:
    return audit_entries(settings)


ENDPOINTS = [
    "/v1/accounts/A",
    "/v1/accounts/A/neighbourhood",
    "/v1/accounts/A/transfers",
    "/v1/paths?from=A&to=C",
    "/v1/rings",
    "/v1/rings/R1",
]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_auth_and_purpose(api: ApiClient, url: str) -> None:
    assert api.client.get(url, headers={"X-Purpose": PURPOSE}).status_code == 401
    bad = {**bearer("cg_nope_nope"), "X-Purpose": PURPOSE}
    assert api.client.get(url, headers=bad).status_code == 401
    forbidden = api.client.get(url, headers={**api.as_role("payment"), "X-Purpose": PURPOSE})
    assert forbidden.status_code == 403
    no_purpose = api.client.get(url, headers=api.as_role("investigator"))
    assert no_purpose.status_code == 400
    assert "X-Purpose" in no_purpose.json()["error"]["message"]
    blank = api.client.get(url, headers={**api.as_role("investigator"), "X-Purpose": "  "})
    assert blank.status_code == 400
    for role in ("investigator", "admin"):
        r = api.client.get(url, headers={**api.as_role(role), "X-Purpose": PURPOSE})
        assert r.status_code == 200, r.text


def test_lookups_are_audited_with_key_and_purpose(api: ApiClient) -> None:
    before = len(audit_lines(api.settings))
    assert get(api, "/v1/accounts/B").status_code == 200
    assert get(api, "/v1/accounts/nobody").status_code == 404
    assert api.client.get("/v1/accounts/B", headers=api.as_role("investigator")).status_code == 400
    new = audit_lines(api.settings)[before:]
    assert [(e["action"], e["target"], e["result"]) for e in new] == [
        ("investigate.account", "B", "rings=1"),
        ("investigate.account", "nobody", "not_found"),
    ]
    key_id = api.keys["investigator"].split("_")[1]
    for e in new:
        assert e["purpose"] == PURPOSE
        assert e["key_id"] == key_id
        assert e["role"] == "investigator"
        assert api.keys["investigator"] not in orjson.dumps(e).decode()


def test_account_view(api: ApiClient) -> None:
    body = get(api, "/v1/accounts/A").json()
    assert body["account_id"] == "A"
    assert body["label"] == "fraud"
    assert body["features"] == {"kyc_level": 1.0}
    assert body["score"]["fraud_probability"] == pytest.approx(0.91)
    assert body["score"]["risk"] == "high"
    assert [r["code"] for r in body["reasons"]] == ["FEATURE_RAISES_RISK"]
    assert body["ties"] == []  # no model is loaded over this hand-made graph
    social = body["social_credit_explanation"]
    assert [r["code"] for r in social["reasons"]] == ["RELATION_RAISES_RISK"]
    assert "9.0 of 100" in social["summary"]
    assert [r["ring_id"] for r in body["rings"]] == ["R1"]
    assert body["transfers"] == 4
    unscored = get(api, "/v1/accounts/E").json()
    assert unscored["score"] is None
    assert unscored["reasons"] == []


def test_neighbourhood_graph(api: ApiClient) -> None:
    body = get(api, "/v1/accounts/A/neighbourhood").json()
    assert body["truncated"] is False
    nodes = {n["id"]: n for n in body["nodes"]}
    assert set(nodes) == {"A", "B", "C", "H"}
    assert nodes["A"]["center"] is True
    assert nodes["A"]["risk"] == "high"
    assert nodes["A"]["rings"] == ["R1"]
    assert nodes["H"]["risk"] == "unscored"
    edges = {e["id"]: e for e in body["edges"]}
    assert edges["A|B|TRANSFER"]["count"] == 2
    assert edges["A|B|TRANSFER"]["total_amount"] == pytest.approx(15.5)
    assert edges["A|B|FRIEND"]["directed"] is False
    two = get(api, "/v1/accounts/A/neighbourhood", hops=2).json()
    assert {n["id"] for n in two["nodes"]} == {"A", "B", "C", "D", "E", "H"}
    friends = get(api, "/v1/accounts/A/neighbourhood", hops=2, relations="FRIEND").json()
    assert {n["id"] for n in friends["nodes"]} == {"A", "B", "D"}
    assert {e["relation"] for e in friends["edges"]} == {"FRIEND"}
    both = get(api, "/v1/accounts/C/neighbourhood", relations=["FRIEND", "SHARES_DEVICE"]).json()
    assert {n["id"] for n in both["nodes"]} == {"C", "E"}


def test_supernode_is_capped_with_marker(api: ApiClient) -> None:
    body = get(api, "/v1/accounts/HUB/neighbourhood", limit=10).json()
    assert body["truncated"] is True
    assert body["capped"] == {"HUB": 30}
    assert (body["hubs"], body["summarised"], body["hub_degree"]) == (["HUB"], [], 20)
    assert len(body["nodes"]) == 11
    hub = next(n for n in body["nodes"] if n["id"] == "HUB")
    assert (hub["capped"], hub["hub"], hub["degree"], hub["more"]) == (
        30,
        True,
        {"TRANSFER": 30},
        {"TRANSFER": 20},
    )
    full = get(api, "/v1/accounts/HUB/neighbourhood", limit=30).json()
    assert full["truncated"] is False
    assert len(full["nodes"]) == 31
    assert next(n for n in full["nodes"] if n["id"] == "HUB")["more"] == {}
    # From a spoke, two hops reach the hub and stop there: it is summarised, not walked.
    spoke = get(api, "/v1/accounts/S00/neighbourhood", hops=2, limit=5).json()
    assert [n["id"] for n in spoke["nodes"]] == ["S00", "HUB"]
    assert (spoke["capped"], spoke["summarised"], spoke["truncated"]) == (
        {"HUB": 30},
        ["HUB"],
        True,
    )
    hub = spoke["nodes"][1]
    assert (hub["summarised"], hub["more"]) == (True, {"TRANSFER": 29})
    # Asked explicitly, the expansion walks through it; S00 is among the hub's five
    # strongest ties (equal weights, then by id).
    walked = get(api, "/v1/accounts/S00/neighbourhood", hops=2, limit=5, through_hubs=True).json()
    assert (walked["capped"], walked["summarised"], walked["through_hubs"]) == (
        {"HUB": 30},
        [],
        True,
    )
    assert [n["id"] for n in walked["nodes"]] == ["S00", "HUB", "S01", "S02", "S03", "S04"]


def test_paths_say_when_a_hub_was_not_walked(api: ApiClient) -> None:
    body = get(api, "/v1/paths", **{"from": "S00", "to": "S01"}).json()
    assert (body["found"], body["complete"], body["cut_short"], body["hubs_skipped"]) == (
        False,
        False,
        ["hubs"],
        ["HUB"],
    )
    through = get(api, "/v1/paths", through_hubs=True, **{"from": "S00", "to": "S01"}).json()
    assert (through["found"], through["length"], through["complete"]) == (True, 2, True)
    assert through["paths"][0]["accounts"] == ["S00", "HUB", "S01"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"hops": 0}, 422),
        ({"hops": 4}, 422),
        ({"limit": 0}, 422),
        ({"limit": 1001}, 422),
        ({"relations": "lower"}, 422),
    ],
)
def test_neighbourhood_bad_parameters(api: ApiClient, params: dict[str, Any], status: int) -> None:
    r = get(api, "/v1/accounts/A/neighbourhood", **params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


def test_paths_with_transfers(api: ApiClient) -> None:
    body = get(api, "/v1/paths", **{"from": "A", "to": "D"}).json()
    assert body["found"] is True
    assert (body["complete"], body["cut_short"]) == (True, [])
    assert body["length"] == 2
    assert [p["accounts"] for p in body["paths"]] == [["A", "B", "D"]]
    first, second = body["paths"][0]["hops"]
    assert first["relations"] == ["FRIEND", "TRANSFER"]
    assert [t["transfer_id"] for t in first["transfers"]] == ["T2", "T1"]
    assert first["transfers_total"] == 2
    assert second["relations"] == ["FRIEND"]
    assert second["transfers"] == []
    assert {n["id"] for n in body["nodes"]} == {"A", "B", "D"}
    none = get(api, "/v1/paths", **{"from": "A", "to": "G"}).json()
    assert (none["found"], none["length"], none["paths"]) == (False, None, [])
    assert get(api, "/v1/paths", **{"from": "A", "to": "zz"}).status_code == 404
    assert get(api, "/v1/paths", **{"from": "A"}).status_code == 422
    short = get(api, "/v1/paths", **{"from": "A", "to": "D", "max_hops": "1"}).json()
    assert short["found"] is False


def test_ring_queue_filters_and_pages(api: ApiClient) -> None:
    body = get(api, "/v1/rings").json()
    assert [r["ring_id"] for r in body["items"]] == ["R1", "R3", "R2"]
    assert body["total"] == 3
    r1 = body["items"][0]
    assert (r1["size"], r1["max_member_risk"], r1["members_preview"]) == (
        3,
        pytest.approx(0.91),
        ["A", "B", "C"],
    )
    page = get(api, "/v1/rings", limit=1, offset=1).json()
    assert ([r["ring_id"] for r in page["items"]], page["total"]) == (["R3"], 3)
    assert [r["ring_id"] for r in get(api, "/v1/rings", status="new").json()["items"]] == [
        "R1",
        "R3",
    ]
    several = get(api, "/v1/rings", kind=["cycle", "shared_identity"]).json()
    assert [r["ring_id"] for r in several["items"]] == ["R1", "R2"]
    assert [r["ring_id"] for r in get(api, "/v1/rings", min_score=0.6).json()["items"]] == [
        "R1",
        "R3",
    ]
    assert get(api, "/v1/rings", status="closed").status_code == 422
    assert get(api, "/v1/rings", limit=0).status_code == 422
    assert get(api, "/v1/rings", offset=-1).status_code == 422
    assert get(api, "/v1/rings", offset=2**63).status_code == 422


def test_ring_detail(api: ApiClient) -> None:
    body = get(api, "/v1/rings/R1").json()
    assert (body["kind"], body["status"], body["size"]) == ("cycle", "new", 3)
    assert [m["id"] for m in body["members"]] == ["A", "B", "C"]
    assert body["members"][2]["rings"] == ["R1", "R2"]
    assert {(e["source"], e["target"]) for e in body["evidence_edges"]} == {
        ("A", "B"),
        ("B", "C"),
        ("C", "A"),
        ("C", "E"),
    }
    flagged = {e["id"] for e in body["edges"] if e["evidence"]}
    assert flagged == {"A|B|TRANSFER", "B|C|TRANSFER", "C|A|TRANSFER"}
    assert "A|B|FRIEND" in {e["id"] for e in body["edges"]}
    assert [t["transfer_id"] for t in body["timeline"]] == ["T4", "T2", "T3", "T1"]
    assert get(api, "/v1/rings/nope").status_code == 404


def test_account_transfers_paginated_and_filtered(api: ApiClient) -> None:
    body = get(api, "/v1/accounts/A/transfers").json()
    assert [t["transfer_id"] for t in body["items"]] == ["T6", "T4", "T2", "T1"]
    assert body["total"] == 4
    page = get(api, "/v1/accounts/A/transfers", limit=2, offset=2).json()
    assert ([t["transfer_id"] for t in page["items"]], page["total"]) == (["T2", "T1"], 4)
    by_cp = get(api, "/v1/accounts/A/transfers", counterparty="B").json()
    assert [t["transfer_id"] for t in by_cp["items"]] == ["T2", "T1"]
    window = get(
        api, "/v1/accounts/A/transfers", since="2024-02-02", until="2024-02-04T10:00:00Z"
    ).json()
    assert [t["transfer_id"] for t in window["items"]] == ["T4", "T2"]
    epoch = get(api, "/v1/accounts/A/transfers", since=1707040800).json()
    assert [t["transfer_id"] for t in epoch["items"]] == ["T6", "T4"]
    assert get(api, "/v1/accounts/A/transfers", since="yesterday").status_code == 422
    assert get(api, "/v1/accounts/A/transfers", limit=1001).status_code == 422
    assert get(api, "/v1/accounts/nobody/transfers").status_code == 404


def test_ui_is_served(api: ApiClient) -> None:
    r = api.client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307)
    assert r.headers["location"] == "/ui/"
    page = api.client.get("/ui/")
    assert page.status_code == 200
    assert "creditgraph" in page.text
    assert api.client.get("/ui/vendor/cytoscape.min.js").status_code == 200


def test_openapi_documents_the_endpoints(api: ApiClient) -> None:
    spec = api.client.get("/openapi.json").json()
    for path in (
        "/v1/accounts/{account_id}",
        "/v1/accounts/{account_id}/neighbourhood",
        "/v1/accounts/{account_id}/transfers",
        "/v1/paths",
        "/v1/rings",
        "/v1/rings/{ring_id}",
    ):
        op = spec["paths"][path]["get"]
        assert "X-Purpose" in {p["name"] for p in op["parameters"]}, path
        assert {"400", "401", "403"} <= set(op["responses"]), path
        assert spec["paths"][path]["get"]["responses"]["200"]["content"]
    patch_op = spec["paths"]["/v1/rings/{ring_id}"]["patch"]
    assert "X-Purpose" in {p["name"] for p in patch_op["parameters"]}
    assert patch_op["requestBody"]["content"]["application/json"]["schema"]


@pytest.fixture
def fresh_api(tmp_path: Path) -> Iterator[ApiClient]:
    """Its own graph: verdicts change labels and statuses."""
    settings = Settings(data_dir=tmp_path / "data")
    build_graph(settings, tmp_path)
    with api_client(settings) as client:
        yield client


def patch(
    api: ApiClient, ring_id: str, body: Any, role: str = "investigator", **headers: str
) -> Any:
    h = {**api.as_role(role), "X-Purpose": PURPOSE, **headers}
    return api.client.patch(f"/v1/rings/{ring_id}", json=body, headers=h)


def test_verdicts_feed_labels_and_are_audited(fresh_api: ApiClient) -> None:
    api = fresh_api
    r = patch(api, "R1", {"status": "confirmed", "note": "round-tripping, case 117"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["note"], body["labels_written"]) == (
        "confirmed",
        "round-tripping, case 117",
        3,
    )
    assert get(api, "/v1/accounts/B").json()["label"] == "fraud"
    ring = get(api, "/v1/rings/R1").json()
    assert (ring["status"], ring["note"]) == ("confirmed", "round-tripping, case 117")
    assert [r["ring_id"] for r in get(api, "/v1/rings", status="confirmed").json()["items"]] == [
        "R1"
    ]
    # Dismissed: E (unlabelled) becomes legit; C keeps the fraud label R1's verdict wrote.
    r = patch(api, "R2", {"status": "dismissed"})
    assert r.json()["labels_written"] == 1
    assert r.json()["note"] == ""
    assert get(api, "/v1/accounts/E").json()["label"] == "legit"
    assert get(api, "/v1/accounts/C").json()["label"] == "fraud"
    # A status without a verdict keeps the note when none is sent.
    patch(api, "R3", {"status": "investigating", "note": "looking"})
    r = patch(api, "R3", {"status": "new"})
    assert (r.json()["status"], r.json()["note"], r.json()["labels_written"]) == (
        "new",
        "looking",
        0,
    )
    entries = [e for e in audit_lines(api.settings) if e["action"] == "investigate.ring.status"]
    assert [(e["target"], e["result"]) for e in entries] == [
        ("R1", "status=confirmed labels_written=3"),
        ("R2", "status=dismissed labels_written=1"),
        ("R3", "status=investigating labels_written=0"),
        ("R3", "status=new labels_written=0"),
    ]
    assert {e["purpose"] for e in entries} == {PURPOSE}


def test_verdict_refusals(fresh_api: ApiClient) -> None:
    api = fresh_api
    assert patch(api, "R1", {"status": "confirmed"}, role="payment").status_code == 403
    no_key = api.client.patch(
        "/v1/rings/R1", json={"status": "confirmed"}, headers={"X-Purpose": PURPOSE}
    )
    assert no_key.status_code == 401
    no_purpose = api.client.patch(
        "/v1/rings/R1", json={"status": "confirmed"}, headers=api.as_role("investigator")
    )
    assert no_purpose.status_code == 400
    bad = patch(api, "R1", {"status": "closed"})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["loc"] == ["body", "status"]
    assert patch(api, "R1", {"status": "new", "extra": 1}).status_code == 422
    assert patch(api, "R1", {"status": "new", "note": "x" * 2001}).status_code == 422
    assert patch(api, "nope", {"status": "confirmed"}).status_code == 404
    assert get(api, "/v1/rings/R1").json()["status"] == "new"
    assert get(api, "/v1/accounts/B").json()["label"] is None


def test_every_view_matches_its_response_model(api: ApiClient) -> None:
    """The documented models (api/schemas/investigate.py) describe what the views return:
    the views are served as built, so this is what keeps the docs honest."""
    views: list[tuple[type[BaseModel], Any]] = [
        (AccountPublic, get(api, "/v1/accounts/A")),
        (GraphPublic, get(api, "/v1/accounts/A/neighbourhood", hops=2)),
        (GraphPublic, get(api, "/v1/accounts/HUB/neighbourhood", limit=3)),
        (PathsPublic, get(api, "/v1/paths", **{"from": "A", "to": "D"})),
        (PathsPublic, get(api, "/v1/paths", **{"from": "A", "to": "G"})),
        (RingQueuePublic, get(api, "/v1/rings")),
        (RingPublic, get(api, "/v1/rings/R1")),
        (RingUpdated, patch(api, "R2", {"status": "investigating"})),
        (TransfersPublic, get(api, "/v1/accounts/HUB/transfers", limit=5)),
    ]
    for model, response in views:
        assert response.status_code == 200, (model.__name__, response.text)
        body = response.json()
        parsed = model.model_validate(body)
        # Every field the model documents is in the view (none filled in by a default).
        assert set(parsed.model_dump(by_alias=True, exclude_unset=True)) <= set(body)
        for name, field in model.model_fields.items():
            if field.is_required():
                assert (field.alias or name) in body, (model.__name__, name)
