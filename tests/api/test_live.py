"""Against a real uvicorn server: hot model swaps under concurrent load, and the typed client.
The schemathesis run of the OpenAPI spec is tests/reliability/test_schemathesis.py."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest

from creditgraph.client import CreditGraphAPIError, CreditGraphClient
from creditgraph.config import Settings
from creditgraph.registry import ModelRegistry
from creditgraph.services.retrain import retrain
from creditgraph.store.embedded import EmbeddedStore
from tests.apitools import FAST, bearer, keys_for, running_server

A, B = "A0000001", "A0000002"


def test_hot_reload_under_load_drops_nothing(api_settings: Settings) -> None:
    # A second version to swap to and fro (v0002 trained with another seed).
    store = EmbeddedStore(api_settings.embedded_path)
    registry = ModelRegistry(api_settings.models_dir)
    try:
        retrain(store, registry, FAST.model_copy(update={"seed": 1}), force=True)
    finally:
        store.close()
    keys = keys_for(api_settings)
    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def hammer(url: str, n: int) -> None:
        with httpx.Client(base_url=url, headers=bearer(keys["payment"]), timeout=30) as c:
            i = 0
            while not stop.is_set():
                dst = B if i % 3 else f"new-{n}-{i}"  # some requests score inductively
                r = c.post("/v1/risk/transfer", json={"src": A, "dst": dst, "amount": 10 + i})
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        versions[r.json()["model_version"]] += 1
                i += 1

    with running_server(api_settings) as url:
        workers = [threading.Thread(target=hammer, args=(url, n)) for n in range(4)]
        for w in workers:
            w.start()
        admin = httpx.Client(base_url=url, headers=bearer(keys["admin"]), timeout=120)
        swaps = []
        for version in ("v0001", "v0002", "v0001", "v0002"):
            r = admin.post(f"/v1/models/{version}/promote", json={"reason": "swap test"})
            swaps.append((r.status_code, r.json().get("model_version")))
        r = admin.post("/v1/admin/reload")
        swaps.append((r.status_code, r.json().get("model_version")))
        stop.set()
        for w in workers:
            w.join()
        admin.close()
    assert swaps == [(200, "v0001"), (200, "v0002"), (200, "v0001"), (200, "v0002"), (200, "v0002")]
    assert set(statuses) == {200}, statuses
    assert statuses[200] >= 50
    assert set(versions) == {"v0001", "v0002"}


def test_typed_client(api_settings: Settings) -> None:
    keys = keys_for(api_settings)
    with running_server(api_settings) as url, CreditGraphClient(url, keys["payment"]) as cg:
        first = cg.check_transfer(A, B, 12.5, currency="EUR", idempotency_key="c-1")
        assert first.decision in ("allow", "review", "block")
        assert first.reasons[0].code == "RECEIVER_RISK"
        again = cg.check_transfer(A, B, 12.5, currency="EUR", idempotency_key="c-1")
        assert again.replayed
        assert again.risk == first.risk
        score = cg.account_score(A)
        assert score.account_id == A
        assert score.source == "table"
        done = cg.add_links(
            [{"src": "C1", "dst": A, "type": "FRIEND"}], create_missing_accounts=True
        )
        assert done.changed == 1
        assert done.created_accounts == 1
        with pytest.raises(CreditGraphAPIError) as bad:
            cg.add_transfers(
                [{"transfer_id": "x", "src": A, "dst": B, "amount": -1, "timestamp": "2026-01-01"}]
            )
        assert bad.value.status == 422
        assert bad.value.fields[0]["loc"] == ["body", "items", 0, "amount"]
        with pytest.raises(CreditGraphAPIError) as missing:
            cg.account_score("nobody/../x")
        assert missing.value.status == 404
    with running_server(api_settings) as url, CreditGraphClient(url, "cg_bad_key") as cg:
        with pytest.raises(CreditGraphAPIError) as denied:
            cg.check_transfer(A, B, 1)
        assert denied.value.status == 401
