"""HTTP ingest's background rescorer (``services/rescorer.py``): the touched accounts are
rescored after the answer, coalesced, on the engine serving by then, never an erased person,
and the worker is joined when the app stops. ``rescore_mode=sync`` is in test_api.py.

The worker is held at a gate (``RiskEngine.score_accounts`` waits on an event) so each test
sees the queue in a known state; every wait has a timeout. A gate needs the batches scored in
the API process (``rescore_processes=0``); the worker process that scores them by default
(``services/rescorepool.py``) is tested at the end."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from creditgraph.config import Settings
from creditgraph.errors import StoreUnavailable
from creditgraph.services.inductive import InductiveScore
from creditgraph.services.risk import RiskEngine
from creditgraph.services.serving import Serving
from creditgraph.store.base import GraphStore
from tests.apitools import ApiClient, api_client

RISK = "/v1/risk/transfer"


class Gate:
    """Holds every background batch until ``open`` is set; records the ids of each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.calls: list[list[str]] = []
        real = RiskEngine.score_accounts
        gate = self

        def held(
            engine: RiskEngine, account_ids: Sequence[str], store: GraphStore
        ) -> list[tuple[str, InductiveScore]]:
            gate.calls.append(list(account_ids))
            gate.entered.set()
            assert gate.open.wait(60), "the test never opened the gate"
            return real(engine, account_ids, store)

        monkeypatch.setattr(RiskEngine, "score_accounts", held)

    def scored(self, account_id: str) -> int:
        return sum(c.count(account_id) for c in self.calls)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """List it after the app's fixture: opened at teardown, before the app stops."""
    g = Gate(monkeypatch)
    yield g
    g.open.set()


@pytest.fixture
def bg(api_settings: Settings) -> Iterator[ApiClient]:
    settings = api_settings.model_copy(
        update={"rescore_mode": "background", "rescore_batch": 64, "rescore_processes": 0}
    )
    with api_client(settings) as api:
        yield api


def serving_of(api: ApiClient) -> Serving:
    serving = api.client.app.state.api.serving  # type: ignore[attr-defined]
    assert isinstance(serving, Serving)
    return serving


def engine_of(api: ApiClient) -> RiskEngine:
    engine = serving_of(api).engine
    assert engine is not None
    return engine


def transfer(api: ApiClient, tid: str, src: str, dst: str) -> dict[str, Any]:
    item = {"transfer_id": tid, "src": src, "dst": dst, "amount": 25.0, "timestamp": "2026-11-24"}
    r = api.post("/v1/transfers", "payment", json={"items": [item]})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def receiver_reason(api: ApiClient, src: str, dst: str) -> dict[str, Any]:
    r = api.post(RISK, "payment", json={"src": src, "dst": dst, "amount": 10})
    assert r.status_code == 200, r.text
    reason: dict[str, Any] = next(x for x in r.json()["reasons"] if x["code"] == "RECEIVER_RISK")
    return reason


def metric(api: ApiClient, name: str) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_ingest_answers_first_then_the_worker_rescores_coalesced(bg: ApiClient, gate: Gate) -> None:
    serving, engine = serving_of(bg), engine_of(bg)
    ids = engine.account_ids
    x, y, b = ids[10], ids[11], ids[12]
    senders = ids[20:30]
    assert transfer(bg, "c-0", x, y)["queued"] == 2
    assert gate.entered.wait(60)  # the worker holds [x, y]
    # Ten batches touching b while the worker is busy: b is pending once.
    for i, a in enumerate(senders):
        out = transfer(bg, f"c-{i + 1}", a, b)
        assert (out["rescored"], out["queued"]) == (0, 2)
    assert serving.rescorer.depth() == 2 + len(senders) + 1
    # Meanwhile: the new tie counts (pair evidence), the score is the table's, said pending.
    r = bg.post(RISK, "payment", json={"src": senders[0], "dst": b, "amount": 10}).json()
    related = next(x for x in r["reasons"] if x["code"] == "ACCOUNTS_RELATED")
    assert "earlier transfers" in related["evidence"]["relations"]
    receiver = next(x for x in r["reasons"] if x["code"] == "RECEIVER_RISK")
    assert receiver["evidence"]["source"] == "table"
    assert receiver["evidence"]["pending"] is True
    assert "queued for rescoring" in receiver["message"]
    score = bg.get(f"/v1/accounts/{b}/score", "payment").json()
    assert (score["source"], score["pending"]) == ("table", True)
    assert metric(bg, "creditgraph_rescore_pending") >= 1

    gate.open.set()
    assert serving.flush_rescoring(timeout=60)
    assert gate.scored(b) == 1  # ten touches, one rescoring
    assert len(gate.calls) == 2
    score = bg.get(f"/v1/accounts/{b}/score", "payment").json()
    assert (score["source"], score["pending"]) == ("live", False)
    # The coalesced score holds all ten new ties: it equals scoring b from the store now.
    fresh = engine.scorer.score_new(b, serving.store)
    assert score["fraud_probability"] == fresh.fraud_probability
    assert "pending" not in receiver_reason(bg, senders[0], b)["evidence"]
    assert metric(bg, "creditgraph_rescored_accounts_total") == 2 + len(senders) + 1
    assert metric(bg, "creditgraph_rescore_pending") == 0
    assert metric(bg, "creditgraph_rescore_lag_seconds_count") == 2 + len(senders) + 1
    assert metric(bg, "creditgraph_rescore_cpu_seconds_total") > 0


def test_a_batch_in_flight_during_a_reload_is_rescored_on_the_new_engine(
    bg: ApiClient, gate: Gate
) -> None:
    serving, old = serving_of(bg), engine_of(bg)
    a, b = old.account_ids[40], old.account_ids[41]
    transfer(bg, "r-1", a, b)
    assert gate.entered.wait(60)  # [a, b] scored on the old engine, held
    assert bg.post("/v1/admin/reload", "admin").status_code == 200
    new = engine_of(bg)
    assert new is not old
    assert b in serving.rescorer  # still pending: not lost with the old engine
    assert new.account_risk(b, None).pending
    gate.open.set()
    assert serving.flush_rescoring(timeout=60)
    # The old engine's scores were not kept; the batch went back and ran on the new one.
    assert gate.scored(b) == 2
    assert new.account_risk(b, None).source == "live"
    assert old.account_risk(b, None).source == "table"


def test_an_erased_person_pending_rescoring_is_not_scored_back_in(
    bg: ApiClient, gate: Gate
) -> None:
    serving, engine = serving_of(bg), engine_of(bg)
    x, y, c, d = engine.account_ids[50:54]
    transfer(bg, "e-1", x, y)
    assert gate.entered.wait(60)  # [x, y] in flight
    transfer(bg, "e-2", c, d)  # [c, d] pending
    for person in (y, d):  # one in flight, one waiting
        r = bg.client.delete(
            f"/v1/subjects/{person}",
            headers={**bg.as_role("admin"), "X-Purpose": "erasure request"},
        )
        assert r.status_code == 200, r.text
        assert person not in serving.rescorer
    gate.open.set()
    assert serving.flush_rescoring(timeout=60)
    assert gate.scored(d) == 0  # removed from the queue before the worker took it
    held = set(serving.held_ids())
    assert y not in held
    assert d not in held
    assert not engine.knows(y)
    assert not engine.knows(d)
    assert engine.account_risk(x, None).source == "live"
    assert engine.account_risk(c, None).source == "live"


def test_the_app_stopping_joins_the_worker_after_its_batch(
    api_settings: Settings, gate: Gate
) -> None:
    settings = api_settings.model_copy(update={"rescore_processes": 0})  # gated in-process
    with api_client(settings) as api:  # background is the default
        serving = serving_of(api)
        assert not serving.rescorer.running  # started by the first ingest only
        ids = engine_of(api).account_ids
        transfer(api, "s-1", ids[60], ids[61])
        assert gate.entered.wait(60)
        worker = serving.rescorer._thread
        assert worker is not None
        assert worker.is_alive()
        # Shutdown signals the worker and waits for the batch in flight (never cancels it).
        threading.Timer(0.5, gate.open.set).start()
    assert not worker.is_alive()
    assert "rescorer" not in {t.name for t in threading.enumerate()}
    assert serving.rescorer.rescored_total == 2  # the batch finished before the join


def test_score_many_equals_score_new_per_account(bg: ApiClient) -> None:
    serving, engine = serving_of(bg), engine_of(bg)
    ids = engine.account_ids
    transfer(bg, "m-1", ids[70], ids[71])
    r = bg.post(
        "/v1/links?create_missing_accounts=true",
        "payment",
        json={"items": [{"src": "NEW-1", "dst": ids[70], "type": "FRIEND"}]},
    )
    assert r.status_code == 200, r.text
    assert serving.flush_rescoring(timeout=60)
    store = serving.store
    # Snapshot accounts (two tied to each other), a new one, an unknown id, a duplicate.
    wanted = [ids[70], ids[71], ids[3], "NEW-1", "nobody-at-all", ids[70]]
    many = engine.scorer.score_many(wanted, store)
    one = [engine.scorer.score_new(a, store) for a in dict.fromkeys(wanted)]
    assert [s.account_id for s in many] == list(dict.fromkeys(wanted))
    assert many == one


def test_while_the_store_is_unreachable_the_queue_waits_and_recovers(
    bg: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    serving, engine = serving_of(bg), engine_of(bg)
    a = engine.account_ids[80]
    # Degraded until the test says otherwise (the app's probe would find the store up).
    monkeypatch.setattr(Serving, "probe", lambda self: False)
    serving.health.down(StoreUnavailable("test: store down"))
    try:
        assert serving.rescorer.touch(engine, [a]) == 1
        # Degraded: nothing is scored, nothing is lost.
        assert not serving.flush_rescoring(timeout=1.0)
        assert a in serving.rescorer
        assert engine.account_risk(a, None).pending
    finally:
        serving.health.up()
    assert serving.flush_rescoring(timeout=60)  # retried after store_probe_interval_s
    assert engine.account_risk(a, None).source == "live"


# -- the worker process (the default) ---------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_a_worker_process_scores_the_batches_as_the_api_process_would(
    api_settings: Settings,
) -> None:
    with api_client(api_settings) as api:  # rescore_processes=1 is the default
        serving, engine = serving_of(api), engine_of(api)
        pool = serving.rescore_pool
        assert pool is not None
        assert serving.rescorer.duty == 0.5  # the default duty for a worker process
        ids = engine.account_ids
        a, b, c = ids[90], ids[91], ids[92]
        transfer(api, "p-1", a, b)
        r = api.post(
            "/v1/links?create_missing_accounts=true",
            "payment",
            json={"items": [{"src": "NEW-P", "dst": c, "type": "FRIEND"}]},
        )
        assert r.status_code == 200, r.text
        assert serving.flush_rescoring(timeout=120)
        assert pool.batches >= 1
        (worker,) = pool.worker_pids()
        assert worker != os.getpid()
        store = serving.store
        for x in (a, b, c, "NEW-P"):
            live = engine.account_risk(x, None)
            assert live.source == "live", x
            # Scored in the worker, from its own connection: equal to scoring here.
            fresh = engine.scorer.score_new(x, store)
            assert live.fraud_probability == fresh.fraud_probability, x
        assert metric(api, "creditgraph_rescore_cpu_seconds_total") > 0  # the worker's CPU
    assert not _alive(worker)  # stopped with the app, after its batches


def test_a_killed_worker_is_replaced_and_a_reload_sends_the_new_model(
    api_settings: Settings,
) -> None:
    with api_client(api_settings) as api:
        serving = serving_of(api)
        pool = serving.rescore_pool
        assert pool is not None
        ids = engine_of(api).account_ids
        transfer(api, "k-1", ids[100], ids[101])
        assert serving.flush_rescoring(timeout=120)
        (first,) = pool.worker_pids()
        assert pool.models_sent == 1
        os.kill(first, signal.SIGKILL)
        # The next batch finds the worker dead: it goes back to the queue, is not lost, the
        # store is not marked down, and a fresh worker (sent the model again) scores it.
        transfer(api, "k-2", ids[102], ids[103])
        assert serving.flush_rescoring(timeout=120)
        assert not serving.health.degraded
        (second,) = pool.worker_pids()
        assert second != first
        assert pool.models_sent == 2
        assert engine_of(api).account_risk(ids[103], None).source == "live"
        # A reload serves a new engine: its scorer goes to the worker before its batches.
        assert api.post("/v1/admin/reload", "admin").status_code == 200
        new = engine_of(api)
        transfer(api, "k-3", ids[104], ids[105])
        assert serving.flush_rescoring(timeout=120)
        assert pool.models_sent == 3
        live = new.account_risk(ids[105], None)
        assert live.source == "live"
        fresh = new.scorer.score_new(ids[105], serving.store)
        assert live.fraud_probability == fresh.fraud_probability
