"""``RiskLane`` answers the risk route as the whole middleware stack does: the same status
and body for ordinary requests, idempotent replays and every kind of refusal; refusals are
audited and latencies observed either way; only ordinary requests skip the stack."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from creditgraph.api import app as app_module
from creditgraph.api.app import MetricsMiddleware, create_app
from creditgraph.config import Settings
from tests.apitools import audit_entries, bearer, keys_for

RISK = "/v1/risk/transfer"
WHEN = "2026-12-01T12:00:00Z"


@pytest.fixture
def stack_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that went through the middleware stack."""
    calls: list[str] = []
    original = MetricsMiddleware.__call__

    async def counted(self: MetricsMiddleware, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            calls.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(MetricsMiddleware, "__call__", counted)
    return calls


def requests(keys: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    pay = bearer(keys["payment"])
    ok = {"src": "A0000001", "dst": "A0000002", "amount": 42.5, "timestamp": WHEN}
    deep: Any = 1
    for _ in range(30):
        deep = [deep]
    return [
        ("ordinary", {"json": ok, "headers": pay}),
        ("admin key", {"json": {**ok, "amount": 7.0}, "headers": bearer(keys["admin"])}),
        ("unknown receiver", {"json": {**ok, "dst": "ZZ-nobody"}, "headers": pay}),
        ("over the hard limit", {"json": {**ok, "amount": 1e308}, "headers": pay}),
        ("invalid body", {"json": {**ok, "amount": "lots"}, "headers": pay}),
        ("not JSON", {"content": b"{nope", "headers": pay}),
        ("no key", {"json": ok}),
        ("bad key", {"json": ok, "headers": bearer("cg_nokey_nosecret")}),
        ("wrong role", {"json": ok, "headers": bearer(keys["investigator"])}),
        ("too large", {"content": b'{"src":"' + b"x" * 20000 + b'"}', "headers": pay}),
        ("too deep", {"json": {**ok, "attributes": {"a": deep}}, "headers": pay}),
        ("idempotent", {"json": ok, "headers": {**pay, "Idempotency-Key": "k-1"}}),
        ("replayed", {"json": ok, "headers": {**pay, "Idempotency-Key": "k-1"}}),
        ("bad idempotency key", {"json": ok, "headers": {**pay, "Idempotency-Key": ""}}),
    ]


@pytest.fixture
def twin_settings(api_settings: Settings, tmp_path: Path) -> tuple[Settings, Settings]:
    """Two copies of the same data: one served with the lane, one without."""
    other = tmp_path / "twin"
    shutil.copytree(api_settings.data_dir, other)
    return api_settings, Settings(data_dir=other, store_probe_interval_s=0.2)


def answers(settings: Settings, lane: bool) -> tuple[list[tuple[int, bytes, str | None]], str]:
    keys = keys_for(settings)
    out = []
    with TestClient(create_app(settings, risk_lane=lane)) as client:
        for name, kw in requests(keys):
            headers = {"content-type": "application/json", **kw.pop("headers", {})}
            r = client.post(RISK, headers=headers, **kw)
            out.append((r.status_code, r.content, r.headers.get("idempotent-replayed")))
            assert r.status_code < 500, (name, r.status_code, r.text)
        metrics = client.get("/metrics", headers=bearer(keys["admin"])).text
    return out, metrics


def test_the_lane_answers_as_the_stack_does(
    twin_settings: tuple[Settings, Settings], stack_calls: list[str]
) -> None:
    with_lane, without = twin_settings
    laned, lane_metrics = answers(with_lane, lane=True)
    through = len([p for p in stack_calls if p == RISK])
    stacked, stack_metrics = answers(without, lane=False)
    names = [n for n, _ in requests(keys_for(with_lane))]
    for name, a, b in zip(names, laned, stacked, strict=True):
        assert a == b, name
    statuses = dict(zip(names, (s for s, _, _ in laned), strict=True))
    assert statuses["ordinary"] == 200
    assert statuses["replayed"] == 200
    assert laned[names.index("replayed")][2] == "true"
    assert statuses["over the hard limit"] == 200
    assert b'"block"' in laned[names.index("over the hard limit")][1]
    assert (statuses["invalid body"], statuses["not JSON"]) == (422, 422)
    assert (statuses["no key"], statuses["bad key"], statuses["wrong role"]) == (401, 401, 403)
    assert (statuses["too large"], statuses["too deep"]) == (413, 400)
    # With the lane, only the requests it hands on went through the stack: the refusals of
    # a key or a size it does not serve, and the body too deep.
    assert through == 5

    # The same refusals audited, with the same status and caller.
    def refused(settings: Settings) -> list[tuple[str, str | None, bool]]:
        return [
            (e["result"], e["role"], "claimed_key_id" in e)
            for e in audit_entries(settings)
            if e.get("action") == "http.refused"
        ]

    assert refused(with_lane) == refused(without)
    assert [r for r, _, _ in refused(with_lane)] == [
        "422",
        "422",
        "401",
        "401",
        "403",
        "413",
        "400",
        "422",
    ]

    # Latencies observed under the same labels, as many of them (the refusals before
    # routing count as "unmatched", as they always have).
    def counts(metrics: str) -> list[str]:
        prefix = 'creditgraph_http_request_duration_seconds_count{method="POST"'
        return sorted(x for x in metrics.splitlines() if x.startswith(prefix))

    assert counts(lane_metrics) == counts(stack_metrics)
    for status, count in (("200", 6), ("422", 3)):
        line = (
            'creditgraph_http_request_duration_seconds_count{method="POST",'
            f'route="{RISK}",status="{status}"}} {count}.0'
        )
        assert line in lane_metrics, line


def test_a_payment_rate_limit_sends_risk_requests_through_the_stack(
    api_settings: Settings, stack_calls: list[str]
) -> None:
    settings = api_settings.model_copy(update={"rate_limit_payment_per_s": 1000.0})
    app = create_app(settings)
    assert isinstance(app, app_module.CreditGraphAPI)
    assert app.lane is not None
    assert not app.lane.enabled
    keys = keys_for(settings)
    with TestClient(app) as client:
        r = client.post(
            RISK,
            json={"src": "A0000001", "dst": "A0000002", "amount": 1.0},
            headers=bearer(keys["payment"]),
        )
    assert r.status_code == 200
    assert stack_calls.count(RISK) == 1
