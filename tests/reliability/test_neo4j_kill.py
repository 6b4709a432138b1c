"""SIGKILL of Neo4j under load, against this test's own Neo4j (its home under tmp, ports picked
at run time), with the API serving risk checks and HTTP ingest batches at the same time.

- Risk checks keep answering (degraded, from the in-memory table): never a 5xx.
- Ingest answers 200 or 503, never another error; every acknowledged batch is stored in
  full; the batch in flight when Neo4j died is stored in full or not at all (one Neo4j
  transaction per HTTP batch, stub accounts included). The kill is timed to land inside a
  batch: as soon as the first stub account of the batch in flight can be read.
- Once Neo4j is back the API leaves degraded mode by itself and ingest is acknowledged again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from neo4j import GraphDatabase
from pydantic import SecretStr

from creditgraph.config import Settings
from creditgraph.devtools import neo4j_server
from tests.apitools import bearer, build_network, keys_for, running_server
from tests.reliability.procs import free_port

pytestmark = pytest.mark.neo4j

PER_BATCH = 400
KNOWN = [f"A{i:07d}" for i in range(1, 41)]


@pytest.fixture(scope="module")
def own_neo4j(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("neo4j-kill")
    bolt = free_port()
    settings = Settings(
        store="neo4j",
        data_dir=root / "data",
        neo4j_home=root / "neo4j-home",
        neo4j_bolt_port=bolt,
        neo4j_http_port=free_port(),
        neo4j_uri=f"bolt://127.0.0.1:{bolt}",
        neo4j_password=SecretStr("reliability-kill-test"),
        neo4j_heap="512m",
        neo4j_pagecache="64m",
        store_probe_interval_s=0.3,
        # Recovery after a SIGKILL on a loaded 2-core machine can take minutes.
        neo4j_start_timeout_s=300,
        # The batch's stub accounts are new: rescoring them all would read Neo4j for
        # seconds per batch, which this test is not about.
        rescore_limit=20,
    )
    neo4j_server.start(settings)
    try:
        build_network(root, accounts=400, settings=settings)
        yield settings
    finally:
        neo4j_server.stop(settings)


def _items(k: int) -> list[dict[str, Any]]:
    """Batch ``k``: transfers from new accounts (stubs the batch creates) to known ones."""
    return [
        {
            "transfer_id": f"b{k}-{j}",
            "src": f"n{k}-{j}",
            "dst": KNOWN[j % len(KNOWN)],
            "amount": 10 + j % 50,
            "timestamp": "2026-11-30T12:00:00Z",
        }
        for j in range(PER_BATCH)
    ]


def _stored(settings: Settings, k: int) -> tuple[int, int]:
    """(transfers, stub accounts) of batch ``k`` in Neo4j."""
    with (
        GraphDatabase.driver(
            settings.neo4j_uri,
            auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
        ) as driver,
        driver.session(database=settings.neo4j_database) as s,
    ):
        transfers = s.run(
            "MATCH ()-[t:TRANSFERRED]->() WHERE t.transfer_id STARTS WITH $p RETURN count(t)",
            p=f"b{k}-",
        ).single(strict=True)[0]
        stubs = s.run(
            "MATCH (a:Account) WHERE a.account_id STARTS WITH $p RETURN count(a)", p=f"n{k}-"
        ).single(strict=True)[0]
    return int(transfers), int(stubs)


def _visible(driver: Any, database: str, account_id: str) -> bool:
    with driver.session(database=database) as s:
        rec = s.run("MATCH (a:Account {account_id: $id}) RETURN count(a)", id=account_id).single()
        return bool(rec and rec[0])


def test_sigkill_of_neo4j_under_load(own_neo4j: Settings) -> None:
    settings = own_neo4j
    keys = keys_for(settings)
    stop = threading.Event()
    lock = threading.Lock()
    risk: list[tuple[float, int, bool | None]] = []
    ingest: Counter[int] = Counter()
    acked: set[int] = set()
    in_flight: list[int] = []
    sent: set[int] = set()

    def check_risk(url: str) -> None:
        with httpx.Client(base_url=url, headers=bearer(keys["payment"]), timeout=30) as c:
            i = 0
            while not stop.is_set():
                body = {"src": KNOWN[i % 40], "dst": KNOWN[(i * 7 + 1) % 40], "amount": 5 + i}
                r = c.post("/v1/risk/transfer", json=body)
                degraded = r.json().get("degraded") if r.status_code == 200 else None
                with lock:
                    risk.append((time.monotonic(), r.status_code, degraded))
                i += 1
                time.sleep(0.005)

    def feed(url: str) -> None:
        with httpx.Client(base_url=url, headers=bearer(keys["payment"]), timeout=60) as c:
            k = 0
            while not stop.is_set():
                with lock:
                    in_flight[:] = [k]
                    sent.add(k)
                r = c.post(
                    "/v1/transfers",
                    params={"create_missing_accounts": "true"},
                    json={"items": _items(k)},
                )
                with lock:
                    ingest[r.status_code] += 1
                    in_flight.clear()
                if r.status_code == 200:
                    acked.add(k)
                else:
                    # Not re-sent (a retry would fill a half-written batch in and hide it):
                    # the next batch has new ids.
                    time.sleep(0.2)
                k += 1

    auth = (settings.neo4j_user, settings.neo4j_password.get_secret_value())
    with running_server(settings) as url:
        workers = [threading.Thread(target=check_risk, args=(url,)) for _ in range(2)]
        workers.append(threading.Thread(target=feed, args=(url,)))
        for w in workers:
            w.start()
        try:
            deadline = time.monotonic() + 120
            while len(acked) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(acked) >= 2, f"ingest never got going: {ingest}"
            pid = neo4j_server.status(settings).pid  # looked up first: it runs a query
            assert pid is not None
            # Kill at the first sign of the batch in flight: its first stub account readable.
            with GraphDatabase.driver(settings.neo4j_uri, auth=auth) as driver:
                while time.monotonic() < deadline:
                    with lock:
                        k = in_flight[0] if in_flight else None
                    if k is not None and _visible(driver, settings.neo4j_database, f"n{k}-0"):
                        break
                    time.sleep(0.01)
            os.kill(pid, signal.SIGKILL)
            with httpx.Client(base_url=url, timeout=10) as c:
                # The probe (every 0.3 s) notices; on a loaded machine that may take seconds.
                noticed = time.monotonic() + 60
                while time.monotonic() < noticed and c.get("/readyz").json()["degraded"] is False:
                    time.sleep(0.1)
                degraded_at = time.monotonic()
                assert c.get("/readyz").json()["degraded"] is True, "the kill went unnoticed"
                time.sleep(3)  # risk checks and ingest against a dead store
                restarting_at = time.monotonic()
                neo4j_server.start(settings)
                restarted_at = time.monotonic()
                while time.monotonic() < restarted_at + 60:
                    if c.get("/readyz").json()["degraded"] is False:
                        break
                    time.sleep(0.2)
                recovered_at = time.monotonic()
                assert c.get("/readyz").json()["degraded"] is False, "never recovered"
            acked_before = len(acked)
            while len(acked) < acked_before + 1 and time.monotonic() < recovered_at + 60:
                time.sleep(0.05)
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=90)

    statuses = Counter(status for _, status, _ in risk)
    assert set(statuses) == {200}, f"risk checks answered {statuses}"
    during = [d for t, _, d in risk if degraded_at + 0.5 < t < restarting_at]
    assert during, "no risk check while Neo4j was down"
    assert all(during), "risk checks while Neo4j was down were not marked degraded"
    assert [d for t, _, d in risk if t > recovered_at + 0.5][-5:] == [False] * 5
    assert set(ingest) <= {200, 503}, f"ingest answered {ingest}"
    assert ingest[503] >= 1, ingest
    assert len(acked) >= 3, f"ingest did not resume after recovery: {ingest}"
    for k in sorted(sent):
        transfers, stubs = _stored(settings, k)
        if k in acked:
            assert (transfers, stubs) == (PER_BATCH, PER_BATCH), f"acknowledged batch {k} lost"
        else:
            assert (transfers, stubs) in ((0, 0), (PER_BATCH, PER_BATCH)), (
                f"batch {k} half-written: {transfers} transfers, {stubs} stub accounts"
            )
