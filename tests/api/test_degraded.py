"""Degraded mode against a real Neo4j that is stopped during the test, then restarted.

The server is this test's own (its own home under tmp_path, Bolt 7702 / HTTP 7489), so the
suite's shared server is never touched. While it is down, risk checks answer from the
in-memory score table with ``degraded: true`` and the configured policy for accounts not in
memory; writes answer 503; when it is back the API leaves degraded mode by itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from creditgraph.config import RiskSettings, Settings
from creditgraph.devtools import neo4j_server
from tests.apitools import bearer, build_network, keys_for, running_server

pytestmark = pytest.mark.neo4j

BOLT, HTTP = 7702, 7489
A, B = "A0000001", "A0000002"


@pytest.fixture
def own_neo4j(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(
        store="neo4j",
        data_dir=tmp_path / "data",
        neo4j_home=tmp_path / "neo4j-home",
        neo4j_bolt_port=BOLT,
        neo4j_http_port=HTTP,
        neo4j_uri=f"bolt://127.0.0.1:{BOLT}",
        neo4j_password=SecretStr("api-degraded-test"),
        neo4j_heap="512m",
        neo4j_pagecache="64m",
        store_probe_interval_s=0.3,
        risk=RiskSettings(unknown_policy="review"),
    )
    neo4j_server.start(settings)
    try:
        yield settings
    finally:
        neo4j_server.stop(settings)


def _wait(client: httpx.Client, degraded: bool, timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get("/readyz").json()
        if body["degraded"] is degraded:
            return body
        time.sleep(0.2)
    raise AssertionError(f"degraded never became {degraded}")


def test_degraded_mode_with_neo4j_stopped_and_restarted(
    own_neo4j: Settings, tmp_path: Path
) -> None:
    settings = own_neo4j
    build_network(tmp_path, accounts=800, settings=settings)
    keys = keys_for(settings)
    risk = "/v1/risk/transfer"
    with (
        running_server(settings) as url,
        httpx.Client(
            base_url=url,
            headers={**bearer(keys["admin"]), "X-Purpose": "degraded test"},
            timeout=60,
        ) as c,
    ):
        healthy = c.post(risk, json={"src": A, "dst": B, "amount": 10}).json()
        assert healthy["degraded"] is False
        new = c.post(risk, json={"src": A, "dst": "fresh", "amount": 10}).json()
        assert new["degraded"] is False

        neo4j_server.stop(settings)
        # Until the probe notices, answers still come (known accounts need no store).
        for _ in range(5):
            assert c.post(risk, json={"src": A, "dst": B, "amount": 10}).status_code == 200
        ready = _wait(c, degraded=True)
        assert ready["ready"] is True
        assert ready["store_reachable"] is False

        known = c.post(risk, json={"src": A, "dst": B, "amount": 10})
        assert known.status_code == 200
        body = known.json()
        assert body["degraded"] is True
        assert body["risk"] == pytest.approx(healthy["risk"])
        assert "STORE_UNAVAILABLE" in [r["code"] for r in body["reasons"]]

        started = time.monotonic()
        unknown = c.post(risk, json={"src": A, "dst": "fresh", "amount": 10})
        assert time.monotonic() - started < 1.0  # no store call while degraded
        assert unknown.status_code == 200
        body = unknown.json()
        assert body["degraded"] is True
        assert body["decision"] in ("review", "block")
        policy = next(r for r in body["reasons"] if r["code"] == "UNKNOWN_ACCOUNT_POLICY")
        assert policy["evidence"] == {"accounts": ["fresh"], "policy": "review"}

        score = c.get(f"/v1/accounts/{A}/score")
        assert score.status_code == 200
        assert score.json()["degraded"] is True
        assert c.get("/v1/accounts/fresh/score").status_code == 503
        write = c.post("/v1/links", json={"items": [{"src": A, "dst": B, "type": "FRIEND"}]})
        assert write.status_code == 503
        assert write.json()["error"]["code"] == "store_unavailable"
        metrics = c.get("/metrics").text
        assert "creditgraph_degraded 1.0" in metrics

        neo4j_server.start(settings)
        _wait(c, degraded=False)
        back = c.post(risk, json={"src": A, "dst": "fresh", "amount": 10}).json()
        assert back["degraded"] is False
        assert "UNKNOWN_ACCOUNT_POLICY" not in [r["code"] for r in back["reasons"]]
