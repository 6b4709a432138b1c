"""What the API keeps between requests beside ``Serving``: keys, audit, idempotency, metrics.

Built in the lifespan (never at import). The store, the model and live ingest belong to
``services.serving.Serving``; this module holds only what exists because of HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from creditgraph.api.audit import AuditLog
from creditgraph.api.keys import KeyRing
from creditgraph.config import Settings
from creditgraph.errors import Conflict
from creditgraph.ledger import Ledger
from creditgraph.ledger.decisions import DecisionLog
from creditgraph.services.credit import CreditService
from creditgraph.services.risk import TtlCache
from creditgraph.services.serving import Serving
from creditgraph.services.subjects import ErasureWatch, erasures_path
from creditgraph.services.viewpool import ViewPool
from creditgraph.store.base import tombstone_of


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
        self._decided: dict[tuple[str, bool], Any] = {}
        # The background rescorer of HTTP ingest (``services/rescorer.py``).
        self.rescore_queue = Gauge(
            "creditgraph_rescore_pending",
            "Accounts ingested over HTTP waiting for the background rescorer",
            registry=self.registry,
        )
        self.rescore_lag = Histogram(
            "creditgraph_rescore_lag_seconds",
            "From an account's first ingest not yet in its score to its rescored score kept",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=self.registry,
        )
        self.rescored_accounts = Counter(
            "creditgraph_rescored_accounts_total",
            "Accounts the background rescorer scored and kept",
            registry=self.registry,
        )
        self.rescore_cpu = Counter(
            "creditgraph_rescore_cpu_seconds_total",
            "CPU seconds of the background rescorer's thread",
            registry=self.registry,
        )
        self.reloads = Counter(
            "creditgraph_model_reloads_total",
            "Model hot swaps",
            ["result"],
            registry=self.registry,
        )

    def decided(self, decision: str, degraded: bool) -> None:
        """Count one risk decision (the counter's child kept per label pair: ``labels()``
        costs a lock and a tuple build per call)."""
        key = (decision, degraded)
        child = self._decided.get(key)
        if child is None:
            child = self._decided[key] = self.decisions.labels(
                decision, "true" if degraded else "false"
            )
        child.inc()

    # -- ServingEvents ---------------------------------------------------------------------------
    def degraded(self, flag: bool) -> None:
        self.degraded_gauge.set(1 if flag else 0)

    def reloaded(self, ok: bool, version: str | None) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()
        if ok and version is not None:
            self.model.info({"version": version})

    def scored_inductively(self, accounts: int) -> None:
        self.inductive.inc(accounts)

    def rescore_pending(self, depth: int) -> None:
        self.rescore_queue.set(depth)

    def rescored(self, accounts: int, lags_s: Sequence[float], cpu_s: float) -> None:
        self.inductive.inc(accounts)
        self.rescored_accounts.inc(accounts)
        self.rescore_cpu.inc(cpu_s)
        for lag in lags_s:
            self.rescore_lag.observe(lag)


class IdempotencyCache:
    """Answers by (key id, Idempotency-Key), in memory, for ``ttl_s`` and at most
    ``max_entries`` (oldest evicted first). Per process: not shared between workers and lost
    on restart (documented in the README).

    ``reserve`` is get-or-reserve in one step (no await between the look and the mark, on
    the one event loop), so two concurrent requests with one key cannot both be decided: the
    second waits for the first's answer, or is a 409 if its body differs."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._cache: TtlCache[tuple[bytes, bytes | asyncio.Future[bytes]]] = TtlCache(
            lambda: ttl_s, lambda: max_entries
        )

    @staticmethod
    def fingerprint(body: bytes) -> bytes:
        return hashlib.sha256(body).digest()

    def _check(self, key: str, item: tuple[bytes, object], fingerprint: bytes) -> None:
        if item[0] != fingerprint:
            raise Conflict(f"Idempotency-Key {key!r} was used for a different request")

    def get(self, owner: str, key: str, fingerprint: bytes) -> bytes | None:
        """The stored answer, None if absent or still being decided; ``Conflict`` if the
        key was used for another request body."""
        item = self._cache.get((owner, key))
        if item is None:
            return None
        self._check(key, item, fingerprint)
        return item[1] if isinstance(item[1], bytes) else None

    def reserve(
        self, owner: str, key: str, fingerprint: bytes
    ) -> bytes | asyncio.Future[bytes] | None:
        """None: the caller now owns the key and must ``put`` or ``release`` it; bytes: the
        stored answer; a future: the same request is being decided, await its answer.
        ``Conflict`` if the key was used (or is in use) for another request body."""
        item = self._cache.get((owner, key))
        if item is None:
            self._cache.put((owner, key), (fingerprint, asyncio.get_running_loop().create_future()))
            return None
        self._check(key, item, fingerprint)
        return item[1]

    def put(self, owner: str, key: str, fingerprint: bytes, answer: bytes) -> None:
        item = self._cache.get((owner, key))
        self._cache.put((owner, key), (fingerprint, answer))
        if item is not None and isinstance(item[1], asyncio.Future) and not item[1].done():
            item[1].set_result(answer)

    def release(self, owner: str, key: str, error: BaseException) -> None:
        """The reserved request failed: forget the key (a retry decides afresh); requests
        waiting on it get the same error."""
        item = self._cache.get((owner, key))
        self._cache.discard([(owner, key)])
        if item is not None and isinstance(item[1], asyncio.Future) and not item[1].done():
            item[1].set_exception(error)
            item[1].exception()  # retrieved: no "never retrieved" warning without waiters


class ApiState:
    """Everything the routes share; one per app, built by the lifespan."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.serving = Serving(settings, self.metrics)
        self.keys = KeyRing(settings.api_keys_path)
        self.ledger = Ledger.from_settings(settings)
        self.audit = AuditLog(self.ledger)
        self.decisions = DecisionLog(self.ledger, ack=settings.decision_ack)
        self.erasures = ErasureWatch(erasures_path(self.ledger))
        self.credit = CreditService(settings.models_dir)
        self.idempotency = IdempotencyCache(
            settings.idempotency_ttl_s, settings.idempotency_max_entries
        )
        self.views = (
            ViewPool(settings, settings.investigate_processes, settings.investigate_process_nice)
            if settings.investigate_processes
            else None
        )

    def forget_erased(self, account_ids: Sequence[str]) -> list[str]:
        """Drop erased people from memory: the engine's tables and caches and the cached
        pseudonyms. Returns the ids the engine knew."""
        self.ledger.pseudonyms.drop_cached(account_ids)
        return self.serving.forget(account_ids)

    def apply_erasures(self) -> list[str]:
        """Act on erasures other processes announced (``creditgraph subject erase``): match
        their digests against the ids held in memory and forget those. One ``stat`` when
        there are none."""
        digests = self.erasures.new_digests()
        if not digests:
            return []
        held = [*self.ledger.pseudonyms.cached_ids(), *self.serving.held_ids()]
        erased = sorted({a for a in held if tombstone_of(a) in digests})
        self.forget_erased(erased)
        return erased

    def close(self) -> None:
        if self.views is not None:
            self.views.close()  # waits for the views in flight, before the store closes
        self.serving.close()
        self.ledger.close()  # fsyncs the logs and stops their writer threads
