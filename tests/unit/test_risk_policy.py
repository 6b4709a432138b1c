"""Pure parts of the risk API: the decision thresholds and the idempotency cache."""

from __future__ import annotations

import time

import pytest

from creditgraph.api.state import IdempotencyCache
from creditgraph.config import RiskSettings, Settings
from creditgraph.errors import Conflict
from creditgraph.services.risk import band


def test_thresholds_come_from_settings() -> None:
    policy = Settings(
        risk=RiskSettings(review_threshold=0.3, block_threshold=0.7, unknown_policy="block")
    ).risk
    assert band(0.29, policy) == "allow"
    assert band(0.3, policy) == "review"
    assert band(0.69, policy) == "review"
    assert band(0.7, policy) == "block"
    assert policy.unknown_policy == "block"


def test_idempotency_cache_replays_conflicts_expires_and_evicts() -> None:
    cache = IdempotencyCache(ttl_s=0.2, max_entries=2)
    fp = cache.fingerprint(b"body")
    cache.put("key-a", "k1", fp, b"answer")
    assert cache.get("key-a", "k1", fp) == b"answer"
    assert cache.get("key-b", "k1", fp) is None  # per API key
    with pytest.raises(Conflict):
        cache.get("key-a", "k1", cache.fingerprint(b"other"))
    cache.put("key-a", "k2", fp, b"2")
    cache.put("key-a", "k3", fp, b"3")
    assert cache.get("key-a", "k1", fp) is None  # oldest evicted
    time.sleep(0.25)
    assert cache.get("key-a", "k3", fp) is None  # expired
