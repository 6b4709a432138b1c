"""What the API keeps in memory between requests, built in the lifespan (never at import)."""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from anyio import CapacityLimiter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from creditgraph.api.audit import AuditLog
from creditgraph.api.keys import KeyRing
from creditgraph.config import Settings
from creditgraph.errors import Conflict, CreditGraphError, ModelNotReady, StoreUnavailable
from creditgraph.registry import ModelRegistry
from creditgraph.services.risk import RiskEngine, RiskPolicy, check_store
from creditgraph.store.base import GraphStore
from creditgraph.store.factory import open_store

log = logging.getLogger("creditgraph.api")


class Metrics:
    """Prometheus metrics in a registry of this app (two apps in one process do not clash)."""

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
        self.degraded = Gauge(
            "creditgraph_degraded", "1 while the store is unreachable", registry=self.registry
        )
        self.reloads = Counter(
            "creditgraph_model_reloads_total",
            "Model hot swaps",
            ["result"],
            registry=self.registry,
        )


class IdempotencyCache:
    """Answers by (key id, Idempotency-Key), in memory, for ``ttl_s`` and at most
    ``max_entries`` (oldest evicted first). Per process: not shared between workers and lost
    on restart (documented in the README)."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, str], tuple[float, bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(body: bytes) -> bytes:
        return hashlib.sha256(body).digest()

    def get(self, owner: str, key: str, fingerprint: bytes) -> bytes | None:
        """The stored answer, None if absent; ``Conflict`` if the key was used for another
        request body."""
        now = time.monotonic()
        with self._lock:
            item = self._items.get((owner, key))
            if item is None:
                return None
            expires, fp, answer = item
            if expires < now:
                del self._items[(owner, key)]
                return None
        if fp != fingerprint:
            raise Conflict(f"Idempotency-Key {key!r} was used for a different request")
        return answer

    def put(self, owner: str, key: str, fingerprint: bytes, answer: bytes) -> None:
        with self._lock:
            self._items[(owner, key)] = (time.monotonic() + self.ttl_s, fingerprint, answer)
            self._items.move_to_end((owner, key))
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


@dataclass
class StoreHealth:
    """Whether the store answers; flipped by failed calls and by the background probe."""

    degraded: bool = False
    since: float | None = None
    last_error: str | None = None
    metrics: Metrics | None = field(default=None, repr=False)

    def down(self, error: BaseException) -> None:
        if not self.degraded:
            log.warning("store unreachable, degraded mode", extra={"error": str(error)})
            self.since = time.time()
        self.degraded = True
        self.last_error = str(error)
        if self.metrics is not None:
            self.metrics.degraded.set(1)

    def up(self) -> None:
        if self.degraded:
            log.warning("store reachable again, leaving degraded mode")
        self.degraded = False
        self.since = None
        self.last_error = None
        if self.metrics is not None:
            self.metrics.degraded.set(0)


class ApiState:
    """Everything the routes share; one per app, built by the lifespan."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.health = StoreHealth(metrics=self.metrics)
        self.registry = ModelRegistry(settings.models_dir)
        self.keys = KeyRing(settings.api_keys_path)
        self.audit = AuditLog(settings.audit_log_path)
        self.idempotency = IdempotencyCache(
            settings.idempotency_ttl_s, settings.idempotency_max_entries
        )
        self.policy = RiskPolicy.from_settings(settings)
        self._store: GraphStore | None = None
        self.engine: RiskEngine | None = None
        self.load_error: str | None = None
        self._reload_lock = threading.Lock()
        # Serialises live updates with the end of a reload (see ``apply_live``).
        self._live_lock = threading.Lock()
        self._journal: (
            list[tuple[list[tuple[str, str, float]], list[tuple[str, str, str]], list[str]]] | None
        ) = None
        # Inductive scoring is CPU work (torch, one thread): more of it at once than there are
        # cores only adds GIL and cache contention, so requests queue here instead.
        self.scoring_limiter = CapacityLimiter(max(1, (os.cpu_count() or 2) - 1))
        self._store_lock = threading.Lock()

    # -- the store -------------------------------------------------------------------------------
    @property
    def store(self) -> GraphStore:
        """The open store; ``StoreUnavailable`` while degraded or not opened."""
        if self._store is None or self.health.degraded:
            raise StoreUnavailable(
                "the graph store is unreachable"
                + (f": {self.health.last_error}" if self.health.last_error else "")
            )
        return self._store

    def live_store(self) -> GraphStore | None:
        """The store for the hot path, or None in degraded mode (answer from memory)."""
        if self._store is None or self.health.degraded:
            return None
        return self._store

    def open_store(self) -> None:
        with self._store_lock:
            if self._store is None:
                self._store = open_store(self.settings, fail_fast=True)

    def probe(self) -> bool:
        """One round trip to the store (opening it if needed); updates ``health``."""
        try:
            self.open_store()
            assert self._store is not None
            check_store(self._store)
        except StoreUnavailable as e:
            self.health.down(e)
            return False
        self.health.up()
        return True

    # -- the model -------------------------------------------------------------------------------
    def reload(self) -> RiskEngine:
        """Build a new engine from the champion and a fresh snapshot, then swap it in.

        Requests in flight keep the engine they started with; one reload at a time."""
        with self._reload_lock:
            with self._live_lock:
                self._journal = []  # live data written from here on is replayed below
            try:
                engine = RiskEngine.load(self.store, self.registry, self.policy)
            except CreditGraphError as e:
                with self._live_lock:
                    self._journal = None
                self.metrics.reloads.labels("failed").inc()
                if isinstance(e, StoreUnavailable):
                    self.health.down(e)
                self.load_error = str(e)
                raise
            with self._live_lock:
                # Ingest that ran while the snapshot was taken may be missing from it.
                for transfers, links, touched in self._journal or []:
                    engine.record_ties(transfers=transfers, links=links)
                    engine.rescore(touched, self.store)
                self._journal = None
                previous, self.engine = self.engine, engine
            _settle_heap(first=previous is None)
            self.load_error = None
            self.metrics.reloads.labels("ok").inc()
            self.metrics.model.info({"version": engine.model_version})
            log.info(
                "model loaded",
                extra={"model_version": engine.model_version, "accounts": len(engine.account_ids)},
            )
            return engine

    def apply_live(
        self,
        transfers: list[tuple[str, str, float]],
        links: list[tuple[str, str, str]],
        touched: list[str],
    ) -> int:
        """After an HTTP ingest batch was written: add its ties to the serving engine and
        rescore ``touched``; journaled while a reload runs so the new engine gets them too.
        Returns how many accounts were rescored."""
        with self._live_lock:
            if self._journal is not None:
                self._journal.append((transfers, links, touched))
            engine = self.engine
            if engine is None:
                return 0
            engine.record_ties(transfers=transfers, links=links)
            rescored = len(engine.rescore(touched, self.store))
        self.metrics.inductive.inc(rescored)
        return rescored

    def require_engine(self) -> RiskEngine:
        engine = self.engine
        if engine is None:
            raise ModelNotReady(self.load_error or "the model is not loaded yet")
        return engine

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self.audit.close()


def _settle_heap(*, first: bool) -> None:
    """Move every object alive now (the engine's millions of table entries included) out of
    the cyclic collector's sight; after a reload, collect the replaced engine first.

    Without this each full collection walks the whole engine: ~200 ms at 1M accounts, paid
    by whichever requests are in flight, whenever enough objects (cached inductive scores,
    idempotency answers) have survived to trigger one. On a reload, unfreezing lets the
    previous engine's reference cycles be freed; that one collection pauses serving once."""
    if not first:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
