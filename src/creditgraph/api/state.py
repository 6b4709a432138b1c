"""What the API keeps between requests beside ``Serving``: keys, audit, idempotency, metrics.

Built in the lifespan (never at import). The store, the model and live ingest belong to
``services.serving.Serving``; this module holds only what exists because of HTTP.
"""

from __future__ import annotations

import hashlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from creditgraph.api.audit import AuditLog
from creditgraph.api.keys import KeyRing
from creditgraph.config import Settings
from creditgraph.errors import Conflict
from creditgraph.services.risk import TtlCache
from creditgraph.services.serving import Serving


class Metrics:
    """Prometheus metrics in a registry of this app (two apps in one process do not clash);
    also ``Serving``'s events."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "creditgraph_http_request_duration_seconds",
            "Request latency by route template, method and status",
            ["method", "route", "status"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.decisions = Counter(
            "creditgraph_risk_decisions_total",
            "Risk decisions by outcome",
            ["decision", "degraded"],
            registry=self.registry,
        )
        self.inductive = Counter(
            "creditgraph_inductive_scores_total",
            "Accounts scored from their neighbourhood on request or after ingest",
            registry=self.registry,
        )
        self.model = Info("creditgraph_model", "The model version serving", registry=self.registry)
        self.degraded_gauge = Gauge(
            "creditgraph_degraded", "1 while the store is unreachable", registry=self.registry
        )
        self.reloads = Counter(
            "creditgraph_model_reloads_total",
            "Model hot swaps",
            ["result"],
            registry=self.registry,
        )

    # -- ServingEvents ---------------------------------------------------------------------------
    def degraded(self, flag: bool) -> None:
        self.degraded_gauge.set(1 if flag else 0)

    def reloaded(self, ok: bool, version: str | None) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()
        if ok and version is not None:
            self.model.info({"version": version})

    def scored_inductively(self, accounts: int) -> None:
        self.inductive.inc(accounts)


class IdempotencyCache:
    """Answers by (key id, Idempotency-Key), in memory, for ``ttl_s`` and at most
    ``max_entries`` (oldest evicted first). Per process: not shared between workers and lost
    on restart (documented in the README)."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._cache: TtlCache[tuple[bytes, bytes]] = TtlCache(lambda: ttl_s, lambda: max_entries)

    @staticmethod
    def fingerprint(body: bytes) -> bytes:
        return hashlib.sha256(body).digest()

    def get(self, owner: str, key: str, fingerprint: bytes) -> bytes | None:
        """The stored answer, None if absent; ``Conflict`` if the key was used for another
        request body."""
        item = self._cache.get((owner, key))
        if item is None:
            return None
        fp, answer = item
        if fp != fingerprint:
            raise Conflict(f"Idempotency-Key {key!r} was used for a different request")
        return answer

    def put(self, owner: str, key: str, fingerprint: bytes, answer: bytes) -> None:
        self._cache.put((owner, key), (fingerprint, answer))


class ApiState:
    """Everything the routes share; one per app, built by the lifespan."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.serving = Serving(settings, self.metrics)
        self.keys = KeyRing(settings.api_keys_path)
        self.audit = AuditLog(settings.audit_log_path)
        self.idempotency = IdempotencyCache(
            settings.idempotency_ttl_s, settings.idempotency_max_entries
        )

    def close(self) -> None:
        self.serving.close()
        self.audit.close()
