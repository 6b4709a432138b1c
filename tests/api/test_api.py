"""Every endpoint of the service API on a small trained network (embedded store)."""

from __future__ import annotations

import gc
import sqlite3
import time
from typing import Any

import pytest

from creditgraph.api.keys import create_key
from creditgraph.config import RiskSettings, Settings
from creditgraph.services.risk import RiskEngine
from creditgraph.services.serving import Serving
from creditgraph.store.embedded import EmbeddedStore
from tests.apitools import ApiClient, api_client, audit_entries, bearer

KNOWN_A, KNOWN_B = "A0000001", "A0000002"
RISK = "/v1/risk/transfer"


def engine_of(api: ApiClient) -> RiskEngine:
    engine = api.client.app.state.api.serving.engine  # type: ignore[attr-defined]
    assert isinstance(engine, RiskEngine)
    return engine


def policy_with(engine: RiskEngine, **changes: float) -> RiskSettings:
    """The engine's risk settings with ``changes``."""
    return engine.policy.model_copy(update=changes)


def unrelated_pair(api: ApiClient) -> tuple[str, str]:
    engine = engine_of(api)
    ids = engine.account_ids
    for b in ids[200:400]:
        if not engine.relation(ids[0], b):
            return ids[0], b
    raise AssertionError("no unrelated pair")


def counts(settings: Settings) -> tuple[int, int, int, int]:
    store = EmbeddedStore(settings.embedded_path)
    try:
        c = store.counts()
    finally:
        store.close()
    return c.accounts, c.transfers, c.links, c.labels


def audit_lines(settings: Settings) -> list[dict[str, object]]:
    return audit_entries(settings)


# -- operations ---------------------------------------------------------------------------------


def test_health_ready_and_metrics(api: ApiClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["model_loaded"]
    assert body["store_reachable"]
    assert not body["degraded"]
    assert body["model_version"] == "v0001"
    api.post(RISK, "payment", json={"src": KNOWN_A, "dst": KNOWN_B, "amount": 10})
    text = api.get("/metrics").text
    assert "creditgraph_http_request_duration_seconds_bucket" in text
    assert 'route="/v1/risk/transfer"' in text
    assert "creditgraph_risk_decisions_total{" in text
    assert 'creditgraph_model_info{version="v0001"}' in text


# -- risk decisions -----------------------------------------------------------------------------


def test_risk_known_accounts(api: ApiClient) -> None:
    r = api.post(RISK, "payment", json={"src": KNOWN_A, "dst": KNOWN_B, "amount": 25.5})
    assert r.status_code == 200
    body = r.json()
    assert body["decision"] in ("allow", "review", "block")
    assert 0.0 <= body["risk"] <= 1.0
    assert body["model_version"] == "v0001"
    assert body["degraded"] is False
    codes = [x["code"] for x in body["reasons"]]
    assert "RECEIVER_RISK" in codes
    assert "SENDER_RISK" in codes
    for reason in body["reasons"]:
        assert reason["message"]
        assert isinstance(reason["evidence"], dict)
    receiver = next(x for x in body["reasons"] if x["code"] == "RECEIVER_RISK")
    assert receiver["evidence"]["source"] == "table"


def test_risk_unknown_accounts_are_scored_inductively(api: ApiClient) -> None:
    r = api.post(RISK, "payment", json={"src": KNOWN_A, "dst": "never-seen", "amount": 5000})
    assert r.status_code == 200
    receiver = next(x for x in r.json()["reasons"] if x["code"] == "RECEIVER_RISK")
    assert receiver["evidence"]["source"] == "inductive"
    both = api.post(RISK, "payment", json={"src": "new-1", "dst": "new-2", "amount": 1})
    assert both.status_code == 200


def test_inductive_scores_are_reused_until_expiry_or_new_ties(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of(api)
    calls: list[str] = []
    score_new = engine.scorer.score_new

    def counting(account_id: str, store: Any, **kw: Any) -> Any:
        calls.append(account_id)
        return score_new(account_id, store, **kw)

    monkeypatch.setattr(engine.scorer, "score_new", counting)

    def receiver_p(dst: str) -> float:
        r = api.post(RISK, "payment", json={"src": KNOWN_A, "dst": dst, "amount": 5})
        assert r.status_code == 200, r.text
        receiver = next(x for x in r.json()["reasons"] if x["code"] == "RECEIVER_RISK")
        assert receiver["evidence"]["source"] == "inductive"
        return float(receiver["evidence"]["fraud_probability"])

    first = receiver_p("ghost-1")
    assert (receiver_p("ghost-1"), calls) == (first, ["ghost-1"])  # within the TTL: reused
    engine.record_ties(links=[("ghost-1", KNOWN_B, "FRIEND")])  # its neighbourhood changed
    receiver_p("ghost-1")
    assert calls == ["ghost-1", "ghost-1"]
    monkeypatch.setattr(
        engine, "policy", engine.policy.model_copy(update={"inductive_cache_s": 0.05})
    )
    time.sleep(0.1)
    receiver_p("ghost-1")  # expired
    assert calls == ["ghost-1"] * 3
    monkeypatch.setattr(engine, "policy", policy_with(engine, inductive_cache_s=0))
    receiver_p("ghost-2")
    receiver_p("ghost-2")  # 0 switches reuse off
    assert calls[3:] == ["ghost-2", "ghost-2"]


def test_inductive_reuse_is_bounded(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_of(api)
    monkeypatch.setattr(
        engine, "policy", engine.policy.model_copy(update={"inductive_cache_size": 2})
    )
    for dst in ("g-1", "g-2", "g-3"):
        r = api.post(RISK, "payment", json={"src": KNOWN_A, "dst": dst, "amount": 5})
        assert r.status_code == 200
    assert list(engine._recent) == ["g-2", "g-3"]  # the oldest went first
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in engine._recent.values())


def test_snapshot_ties_are_found_both_ways(api: ApiClient) -> None:
    """The engine's pair table answers for every kind of tie in the snapshot, either way."""
    engine = engine_of(api)
    store = EmbeddedStore(api.settings.embedded_path)
    try:
        snapshot = store.snapshot()
    finally:
        store.close()
    ids = snapshot.account_ids
    kinds = set()
    for rel, es in snapshot.edges.items():
        for s_, d_ in list(zip(es.src.tolist(), es.dst.tolist(), strict=True))[:25]:
            a, b = ids[s_], ids[d_]
            if a == b:
                continue
            kinds.add(rel)
            for x, y in ((a, b), (b, a)):
                if rel == "FRIEND":
                    assert "friends" in engine.relation(x, y)
                elif rel == "TRANSFER":
                    assert "earlier transfers" in engine.relation(x, y)
                else:
                    assert rel in engine.shared_identity(x, y)
                    assert rel not in engine.shared_identity(*unrelated_pair(api))
    assert {"FRIEND", "TRANSFER"} < kinds  # and at least one identity link type
    a, b = unrelated_pair(api)
    assert (engine.relation(a, b), engine.shared_identity(a, b)) == ([], [])


def test_risk_thresholds_come_from_settings(api_settings: Settings) -> None:
    from tests.apitools import api_client

    strict = api_settings.model_copy(
        update={"risk": RiskSettings(review_threshold=0.0, block_threshold=0.0)}
    )
    with api_client(strict) as api:
        r = api.post(RISK, "payment", json={"src": KNOWN_A, "dst": KNOWN_B, "amount": 1})
        assert r.json()["decision"] == "block"


def test_ring_membership_raises_the_risk(api: ApiClient) -> None:
    from creditgraph.domain import Ring
    from creditgraph.services.risk import RiskEngine as Engine

    old = engine_of(api)
    a, b = unrelated_pair(api)
    before = old.decide(_check(a, b), None)
    ring = Ring("ring-1", "cycle", 0.9, [b, "x"], {"why": "test"})
    engine = Engine(
        old.scorer, _snapshot(api), old.fraud_probability, old.social_credit, [ring], old.policy
    )
    after = engine.decide(_check(a, b), None)
    assert after.risk > before.risk
    ring_reason = next(x for x in after.reasons if x["code"] == "RECEIVER_IN_RING")
    assert ring_reason["evidence"]["rings"][0]["ring_id"] == "ring-1"


def _check(a: str, b: str):  # type: ignore[no-untyped-def]
    from creditgraph.services.risk import TransferCheck

    return TransferCheck(a, b, 10.0)


def _snapshot(api: ApiClient):  # type: ignore[no-untyped-def]
    return api.client.app.state.api.serving.store.snapshot()  # type: ignore[attr-defined]


def test_unusual_amount_is_a_reason(api: ApiClient) -> None:
    r = api.post(RISK, "payment", json={"src": KNOWN_A, "dst": KNOWN_B, "amount": 10**7})
    codes = [x["code"] for x in r.json()["reasons"]]
    assert "AMOUNT_UNUSUAL" in codes


# -- idempotency ---------------------------------------------------------------------------------


def test_idempotency_key_returns_the_same_answer(api: ApiClient) -> None:
    body = {"src": KNOWN_A, "dst": "idem-new", "amount": 42}
    first = api.post(RISK, "payment", json=body, headers={"Idempotency-Key": "k-1"})
    # The world changes (the new account gets ties), the replay still answers as before.
    api.post(
        "/v1/links?create_missing_accounts=true",
        "payment",
        json={"items": [{"src": "idem-new", "dst": KNOWN_B, "type": "FRIEND"}]},
    )
    again = api.post(RISK, "payment", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api.post(
        RISK, "payment", json={**body, "amount": 43}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "conflict"
    # Keys are per API key: another payment key may use the same Idempotency-Key.
    key2 = create_key(api.settings, "payment", "second")
    r = api.client.post(
        RISK, json={**body, "amount": 43}, headers={**bearer(key2), "Idempotency-Key": "k-1"}
    )
    assert r.status_code == 200


# -- account scores -------------------------------------------------------------------------------


def test_account_score(api: ApiClient) -> None:
    r = api.get(f"/v1/accounts/{KNOWN_A}/score", "payment")
    assert r.status_code == 200
    body = r.json()
    assert body["account_id"] == KNOWN_A
    assert 0 <= body["fraud_probability"] <= 1
    assert body["model_version"] == "v0001"
    assert body["reasons"]
    assert body["source"] == "table"
    purpose = {"X-Purpose": "case 1"}
    assert api.get("/v1/accounts/nobody/score", "investigator", headers=purpose).status_code == 404
    actions = [x["action"] for x in audit_lines(api.settings)]
    assert actions.count("account.score") == 2


def test_audit_log_records_who_what_result_and_never_keys(api: ApiClient) -> None:
    api.post(RISK, "payment", json={"src": KNOWN_A, "dst": KNOWN_B, "amount": 3})
    api.get(f"/v1/accounts/{KNOWN_B}/score", "investigator", headers={"X-Purpose": "case 1"})
    lines = audit_lines(api.settings)
    lookup = next(x for x in lines if x["action"] == "account.score")
    assert lookup["target"] == KNOWN_B
    assert lookup["role"] == "investigator"
    assert lookup["key_id"] == api.keys["investigator"].split("_")[1]
    assert isinstance(lookup["ts"], float)
    # A decision is recorded once, in the decision log, with the key that asked.
    decision = next(
        x for x in audit_entries(api.settings, "decisions") if x["kind"] == "risk.transfer"
    )
    assert decision["subjects"] == [KNOWN_A, KNOWN_B]
    assert decision["key_id"] == api.keys["payment"].split("_")[1]
    assert decision["decision"] in ("allow", "review", "block")
    raw = api.settings.audit_log_path.read_text() + api.settings.decision_log_path.read_text()
    # Account ids are written as pseudonyms only (erasure unlinks them; see test_subjects).
    assert KNOWN_A not in raw
    assert KNOWN_B not in raw
    for key in api.keys.values():
        assert key not in raw
        assert key.split("_", 2)[2] not in raw


# -- ingest ----------------------------------------------------------------------------------------


def serving_of(api: ApiClient) -> Serving:
    serving = api.client.app.state.api.serving  # type: ignore[attr-defined]
    assert isinstance(serving, Serving)
    return serving


@pytest.mark.parametrize("mode", ["sync", "background"])
def test_new_transfer_changes_the_next_decision(api_settings: Settings, mode: str) -> None:
    with api_client(api_settings.model_copy(update={"rescore_mode": mode})) as api:
        _new_transfer_changes_the_next_decision(api, mode)


def _new_transfer_changes_the_next_decision(api: ApiClient, mode: str) -> None:
    a, b = unrelated_pair(api)
    before = api.post(RISK, "payment", json={"src": a, "dst": b, "amount": 10}).json()
    assert "ACCOUNTS_UNRELATED" in [x["code"] for x in before["reasons"]]
    item = {
        "transfer_id": "api-t-1",
        "src": a,
        "dst": b,
        "amount": 10.0,
        "timestamp": "2026-11-24T10:00:00Z",
        "currency": "EUR",
    }
    r = api.post("/v1/transfers", "payment", json={"items": [item]})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 1
    # sync: both ends rescored before the answer; background: queued for the rescorer.
    assert (r.json()["rescored"], r.json()["queued"]) == ((2, 0) if mode == "sync" else (0, 2))
    # The pair's new tie counts at once in both modes.
    after = api.post(RISK, "payment", json={"src": a, "dst": b, "amount": 10}).json()
    related = next(x for x in after["reasons"] if x["code"] == "ACCOUNTS_RELATED")
    assert "earlier transfers" in related["evidence"]["relations"]
    receiver = next(x for x in after["reasons"] if x["code"] == "RECEIVER_RISK")
    if mode == "background":
        # Before the worker has it: the table score, said to be pending; after: live.
        assert receiver["evidence"]["source"] in ("table", "live")
        assert receiver["evidence"].get("pending", False) == (
            receiver["evidence"]["source"] == "table"
        )
        assert serving_of(api).flush_rescoring(timeout=60)
        after = api.post(RISK, "payment", json={"src": a, "dst": b, "amount": 10}).json()
        receiver = next(x for x in after["reasons"] if x["code"] == "RECEIVER_RISK")
    else:
        assert not serving_of(api).rescorer.running  # sync mode starts no worker
    assert receiver["evidence"]["source"] == "live"
    assert "pending" not in receiver["evidence"]
    # Idempotent by id: the same batch again changes nothing.
    again = api.post("/v1/transfers", "payment", json={"items": [item]})
    assert again.json()["changed"] == 0


def test_links_accounts_labels(api: ApiClient) -> None:
    base = counts(api.settings)
    r = api.post(
        "/v1/accounts",
        "payment",
        json={
            "items": [
                {"account_id": "N1", "created_at": "2026-11-01", "features": {"kyc_level": 2}},
                {"account_id": "N2", "properties": {"country": "DE"}},
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 2
    r = api.post(
        "/v1/links",
        "payment",
        json={
            "items": [
                {"src": "N1", "dst": KNOWN_A, "type": "FRIEND", "since": "2026-11-02"},
                {"src": "N2", "dst": "N1", "type": "SHARES_DEVICE"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 2
    # Three distinct accounts touched, queued for the background rescorer (the default).
    assert (r.json()["rescored"], r.json()["queued"]) == (0, 3)
    friends = api.post(RISK, "payment", json={"src": KNOWN_A, "dst": "N1", "amount": 5}).json()
    related = next(x for x in friends["reasons"] if x["code"] == "ACCOUNTS_RELATED")
    assert "friends" in related["evidence"]["relations"]
    device = api.post(RISK, "payment", json={"src": "N2", "dst": "N1", "amount": 5}).json()
    codes = [x["code"] for x in device["reasons"]]
    assert "SHARED_IDENTITY" in codes
    assert "ACCOUNTS_RELATED" not in codes  # a shared device is no sign of trust
    r = api.post(
        "/v1/labels",
        "investigator",
        json={"items": [{"account_id": "N1", "label": "fraud", "source": "investigation"}]},
    )
    assert r.status_code == 200, r.text
    after = counts(api.settings)
    assert after == (base[0] + 2, base[1], base[2] + 2, base[3] + 1)


@pytest.mark.parametrize(
    ("url", "items", "loc"),
    [
        (
            "/v1/transfers",
            [
                {
                    "transfer_id": "bad",
                    "src": KNOWN_A,
                    "dst": KNOWN_B,
                    "amount": -1,
                    "timestamp": "2026-01-01",
                }
            ],
            "amount",
        ),
        (
            "/v1/transfers",
            [
                {
                    "transfer_id": "bad",
                    "src": KNOWN_A,
                    "dst": KNOWN_B,
                    "amount": 1,
                    "timestamp": "yesterday",
                }
            ],
            "timestamp",
        ),
        (
            "/v1/transfers",
            [
                {
                    "transfer_id": "bad",
                    "src": KNOWN_A,
                    "dst": "ghost",
                    "amount": 1,
                    "timestamp": "2026-01-01",
                }
            ],
            "dst",
        ),
        ("/v1/links", [{"src": KNOWN_A, "dst": KNOWN_A, "type": "FRIEND"}], "dst"),
        ("/v1/links", [{"src": KNOWN_A, "dst": KNOWN_B, "type": "friend"}], "type"),
        ("/v1/accounts", [{"account_id": "ok-1"}, {"account_id": "ok-1"}], "account_id"),
        ("/v1/labels", [{"account_id": KNOWN_A, "label": "maybe"}], "label"),
    ],
)
def test_bad_batches_write_nothing(
    api: ApiClient, url: str, items: list[dict[str, object]], loc: str
) -> None:
    before = counts(api.settings)
    good = {
        "/v1/transfers": {
            "transfer_id": "good",
            "src": KNOWN_A,
            "dst": KNOWN_B,
            "amount": 1,
            "timestamp": "2026-01-01",
        },
        "/v1/links": {"src": KNOWN_A, "dst": "A0000500", "type": "SHARES_DEVICE"},
        "/v1/accounts": {"account_id": "fine"},
        "/v1/labels": {"account_id": KNOWN_B, "label": "legit"},
    }[url]
    role = "investigator" if url == "/v1/labels" else "payment"
    r = api.post(url, role, json={"items": [good, *items]})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_input"
    assert any(f["loc"][-1] == loc and f["loc"][2] >= 1 for f in err["fields"]), err
    assert counts(api.settings) == before


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"src": KNOWN_A, "amount": 1}, "dst"),
        ({"src": KNOWN_A, "dst": KNOWN_B, "amount": -1}, "amount"),
        ({"src": KNOWN_A, "dst": KNOWN_B, "amount": "lots"}, "amount"),
        ({"src": "", "dst": KNOWN_B, "amount": 1}, "src"),
        ({"src": KNOWN_A, "dst": KNOWN_B, "amount": 1, "extra": 1}, "extra"),
    ],
)
def test_bad_risk_requests(api: ApiClient, body: dict[str, object], loc: str) -> None:
    r = api.post(RISK, "payment", json=body)
    assert r.status_code == 422
    fields = r.json()["error"]["fields"]
    assert any(f["loc"][-1] == loc for f in fields), fields


# -- models ---------------------------------------------------------------------------------------


def test_models_promote_and_reload(api: ApiClient) -> None:
    models = api.get("/v1/models", "admin").json()
    assert [m["version"] for m in models] == ["v0001"]
    assert models[0]["champion"]
    assert models[0]["serving"]
    assert api.post("/v1/models/v0099/promote", "admin").status_code == 404
    r = api.post("/v1/models/v0001/promote", "admin", json={"reason": "test"})
    assert r.status_code == 200
    assert r.json()["model_version"] == "v0001"
    r = api.post("/v1/admin/reload", "admin")
    assert r.status_code == 200
    assert r.json()["accounts"] == len(engine_of(api).account_ids)


# -- keys and secrets -----------------------------------------------------------------------


def test_keys_are_stored_hashed(api: ApiClient) -> None:
    raw = api.settings.api_keys_path.read_bytes()
    db = sqlite3.connect(api.settings.api_keys_path)
    rows = db.execute("SELECT key_id, role, secret_sha256 FROM api_keys").fetchall()
    db.close()
    assert {r[1] for r in rows} >= {"payment", "investigator", "admin"}
    for key in api.keys.values():
        assert key.split("_", 2)[2].encode() not in raw


def test_default_secrets_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite's own Neo4j password may be in the environment: test the default itself.
    monkeypatch.delenv("CREDITGRAPH_NEO4J_PASSWORD", raising=False)
    for env in ("production", "test"):
        with pytest.raises(ValueError, match="development default"):
            Settings(env=env, store="neo4j")
    Settings(env="production", store="neo4j", neo4j_password="a-real-secret")  # type: ignore[arg-type]
    Settings(env="production", store="embedded")
    Settings(env="development", store="neo4j")


def test_missing_account_message_names_the_http_option(api: ApiClient) -> None:
    item = {
        "transfer_id": "g1",
        "src": KNOWN_A,
        "dst": "ghost",
        "amount": 1,
        "timestamp": "2026-01-01",
    }
    r = api.post("/v1/transfers", "payment", json={"items": [item]})
    assert r.status_code == 422
    assert "create_missing_accounts=true" in r.json()["error"]["fields"][0]["message"]
    ok = api.post("/v1/transfers?create_missing_accounts=true", "payment", json={"items": [item]})
    assert ok.status_code == 200
    assert ok.json()["created_accounts"] == 1


def _has_example(schema: dict[str, object], components: dict[str, dict[str, object]]) -> bool:
    if "example" in schema or "examples" in schema:
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _has_example(components[ref.rsplit("/", 1)[1]], components)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and any(_has_example(o, components) for o in options):
            return True
    items = schema.get("items")
    return isinstance(items, dict) and _has_example(items, components)


def test_openapi_has_examples_for_every_endpoint(api: ApiClient) -> None:
    spec = api.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    operations = [(p, m, op) for p, ops in spec["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 12
    for path, method, op in operations:
        ok: dict[str, Any] = next(iter(op["responses"]["200"].get("content", {}).values()), {})
        assert "example" in ok or _has_example(ok.get("schema", {}), components), (method, path)
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            assert _has_example(body["schema"], components), (method, path)
    risk = spec["paths"]["/v1/risk/transfer"]["post"]
    assert risk["security"] == [{"HTTPBearer": []}]
    assert risk["parameters"][0]["name"] == "Idempotency-Key"


@pytest.mark.parametrize("mode", ["sync", "background"])
def test_ingest_during_a_reload_reaches_the_new_engine(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    with api_client(api_settings.model_copy(update={"rescore_mode": mode})) as api:
        _ingest_during_a_reload_reaches_the_new_engine(api, monkeypatch, mode)


def _ingest_during_a_reload_reaches_the_new_engine(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    a, b = unrelated_pair(api)
    load = RiskEngine.load

    def load_then_ingest(*args: object, **kwargs: object) -> RiskEngine:
        engine = load(*args, **kwargs)  # type: ignore[arg-type]
        # The snapshot is taken: this transfer lands after it, while the old engine serves.
        item = {
            "transfer_id": "during-reload",
            "src": a,
            "dst": b,
            "amount": 7.0,
            "timestamp": "2026-11-24T11:00:00Z",
        }
        r = api.post("/v1/transfers", "payment", json={"items": [item]})
        assert r.status_code == 200
        return engine

    monkeypatch.setattr(RiskEngine, "load", load_then_ingest)
    assert api.post("/v1/admin/reload", "admin").status_code == 200
    engine = engine_of(api)
    assert "earlier transfers" in engine.relation(a, b)
    if mode == "background":
        assert serving_of(api).flush_rescoring(timeout=60)
    assert engine_of(api) is engine
    assert engine.account_risk(b, None).source == "live"


def test_shutdown_waits_for_a_probe_in_flight(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is closed only after the background probe's thread is done with it (a
    probe cut off by cancellation once wrote on a Neo4j connection the close was tearing
    down)."""
    events: list[str] = []
    real_probe, real_close = Serving.probe, Serving.close

    def slow_probe(self: Serving) -> bool:
        events.append("probe")
        time.sleep(0.4)
        ok = real_probe(self)
        events.append("probed")
        return ok

    def close(self: Serving) -> None:
        events.append("close")
        real_close(self)

    monkeypatch.setattr(Serving, "probe", slow_probe)
    monkeypatch.setattr(Serving, "close", close)
    with api_client(api_settings):
        deadline = time.monotonic() + 5
        while events.count("probe") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # the first is the startup probe; wait for a background one
    assert events.count("probe") >= 2
    assert events[-2:] == ["probed", "close"], events


def test_the_loaded_engine_is_kept_out_of_full_collections(api_settings: Settings) -> None:
    gc.unfreeze()
    with api_client(api_settings) as api:
        assert gc.get_freeze_count() > 0  # the lifespan froze what the load left alive
        gc.unfreeze()
        r = api.post("/v1/admin/reload", "admin")
        assert r.status_code == 200, r.text
        assert gc.get_freeze_count() > 0  # and a reload does it again
