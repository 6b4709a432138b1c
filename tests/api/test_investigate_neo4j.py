"""The investigator endpoints over the Neo4j store: one pass through every view and a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.test_investigate import PURPOSE, build_graph
from tests.apitools import api_client
from tests.conftest import make_settings, wipe_neo4j

pytestmark = pytest.mark.neo4j


def test_every_view_on_neo4j(tmp_path: Path) -> None:
    # Conformance, not speed: a loaded CI machine must not turn the hub view into the 5 s
    # cap's 422 (the caps have their own tests).
    settings = make_settings("neo4j", tmp_path).model_copy(
        update={"investigate_deadline_s": 60.0, "investigate_path_deadline_s": 30.0}
    )
    wipe_neo4j(settings)
    build_graph(settings, tmp_path)
    with api_client(settings) as api:
        headers = {**api.as_role("investigator"), "X-Purpose": PURPOSE}

        def get(url: str, **params: Any) -> Any:
            r = api.client.get(url, headers=headers, params=params)
            assert r.status_code == 200, r.text
            return r.json()

        account = get("/v1/accounts/A")
        assert (account["label"], account["transfers"]) == ("fraud", 4)
        assert [r["ring_id"] for r in account["rings"]] == ["R1"]
        hub = get("/v1/accounts/HUB/neighbourhood", limit=10)
        assert (hub["truncated"], hub["capped"], len(hub["nodes"])) == (True, {"HUB": 30}, 11)
        paths = get("/v1/paths", **{"from": "A", "to": "D"})
        assert [p["accounts"] for p in paths["paths"]] == [["A", "B", "D"]]
        assert [t["transfer_id"] for t in paths["paths"][0]["hops"][0]["transfers"]] == [
            "T2",
            "T1",
        ]
        queue = get("/v1/rings", status="new", limit=1, offset=1)
        assert ([r["ring_id"] for r in queue["items"]], queue["total"]) == (["R3"], 2)
        ring = get("/v1/rings/R1")
        assert {e["id"] for e in ring["edges"] if e["evidence"]} == {
            "A|B|TRANSFER",
            "B|C|TRANSFER",
            "C|A|TRANSFER",
        }
        assert [t["transfer_id"] for t in ring["timeline"]] == ["T4", "T2", "T3", "T1"]
        page = get("/v1/accounts/A/transfers", counterparty="B", limit=1)
        assert ([t["transfer_id"] for t in page["items"]], page["total"]) == (["T2"], 2)
        r = api.client.patch("/v1/rings/R1", json={"status": "confirmed"}, headers=headers)
        assert r.json()["labels_written"] == 3
        assert get("/v1/accounts/B")["label"] == "fraud"
