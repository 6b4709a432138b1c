"""SIGKILL of the API while clients send HTTP ingest batches, at random points, then a
restart: the store holds every acknowledged batch in full, an unacknowledged one in full or
not at all, and after the clients re-send what was not acknowledged, exactly the batches
sent (embedded store; the Neo4j half is ``test_neo4j_kill.py``)."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from creditgraph.api.keys import create_key
from creditgraph.config import Settings
from creditgraph.domain import AccountColumns
from creditgraph.store.embedded import EmbeddedStore
from tests.apitools import bearer
from tests.reliability.procs import serve

pytestmark = pytest.mark.slow

ACCOUNTS = [f"K{i:03d}" for i in range(300)]
PER_BATCH = 150
CLIENTS = 3
KILLS = 2


def batch_items(client: int, n: int) -> list[dict[str, object]]:
    rng = random.Random(client * 100_000 + n)
    items: list[dict[str, object]] = []
    for j in range(PER_BATCH):
        src, dst = rng.sample(ACCOUNTS, 2)
        items.append(
            {
                "transfer_id": f"c{client}-b{n}-{j}",
                "src": src,
                "dst": dst,
                "amount": round(rng.uniform(1, 900), 2),
                "timestamp": "2026-11-30T12:00:00Z",
            }
        )
    return items


def stored_ids(path: Path) -> set[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {r[0] for r in db.execute("SELECT transfer_id FROM transfers")}
    finally:
        db.close()


def test_sigkill_during_http_ingest_keeps_exactly_the_acknowledged_batches(
    tmp_path: Path,
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    settings = Settings(data_dir=tmp_path / "data")
    store = EmbeddedStore(settings.embedded_path)
    try:
        store.apply_schema()
        n = len(ACCOUNTS)
        store.upsert_accounts(AccountColumns(ACCOUNTS, [None] * n, [{}] * n, [{}] * n))
    finally:
        store.close()
    key = create_key(settings, "payment", "feeder")
    env = {"CREDITGRAPH_DATA_DIR": str(settings.data_dir), "CREDITGRAPH_STORE": "embedded"}
    acked: set[tuple[int, int]] = set()
    sent: set[tuple[int, int]] = set()
    next_batch = [0] * CLIENTS
    lock = threading.Lock()
    failures: list[str] = []
    log = tmp_path / "serve.log"

    def feed(url: str, client: int, stop: threading.Event) -> None:
        with httpx.Client(base_url=url, headers=bearer(key), timeout=30) as c:
            while not stop.is_set():
                n = next_batch[client]
                with lock:
                    sent.add((client, n))
                try:
                    r = c.post("/v1/transfers", json={"items": batch_items(client, n)})
                except httpx.HTTPError:
                    return  # the server died under us: this batch is unacknowledged
                if r.status_code != 200:
                    failures.append(f"{client}/{n}: {r.status_code} {r.text[:200]}")
                    return
                with lock:
                    acked.add((client, n))
                next_batch[client] = n + 1

    for kill in range(KILLS):
        server = serve(env, log)
        stop = threading.Event()
        feeders = [
            threading.Thread(target=feed, args=(server.url, c, stop)) for c in range(CLIENTS)
        ]
        for f in feeders:
            f.start()
        # A random point of the ingest stream, once it flows: on a loaded machine the first
        # acknowledgements can take seconds, and a kill before them tests nothing.
        flowing = len(acked) + CLIENTS
        deadline = time.monotonic() + 120
        while len(acked) < flowing and time.monotonic() < deadline and not failures:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.0))
        server.kill()
        stop.set()
        for f in feeders:
            f.join(timeout=60)
        assert not failures, failures
        ids = stored_ids(settings.embedded_path)
        for client, n in sent:
            wanted = {str(i["transfer_id"]) for i in batch_items(client, n)}
            present = wanted & ids
            if (client, n) in acked:
                assert present == wanted, f"seed {seed}: acknowledged batch {client}/{n} lost"
            else:  # in flight when killed: all or nothing
                assert present in (set(), wanted), (
                    f"seed {seed}, kill {kill}: batch {client}/{n} half-written "
                    f"({len(present)} of {len(wanted)})"
                )
    assert len(acked) >= CLIENTS * KILLS, f"seed {seed}: too few batches acknowledged"

    # A restarted server; the clients re-send what was never acknowledged (idempotent by id).
    server = serve(env, log)
    try:
        with httpx.Client(base_url=server.url, headers=bearer(key), timeout=30) as c:
            for client, n in sorted(sent - acked):
                r = c.post("/v1/transfers", json={"items": batch_items(client, n)})
                assert r.status_code == 200, r.text
            assert c.get("/healthz").status_code == 200
    finally:
        server.stop()
    expected = {str(i["transfer_id"]) for client, n in sent for i in batch_items(client, n)}
    assert stored_ids(settings.embedded_path) == expected, f"seed {seed}"
