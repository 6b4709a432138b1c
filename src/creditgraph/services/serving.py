"""``Serving``: what a long-running server holds between requests, and its operations.

One object owns the store (opened with short timeouts), its health (degraded mode), the
serving ``RiskEngine``, the reload journal and live ingest. Entry points (the HTTP API) call
one method per request: ``decide``, ``account_score``, ``ingest``, ``reload``, ``promote``,
``models``, ``readiness``. The degraded fallback lives here once: a store call that fails
flips ``health`` and the answer comes from memory where one can. Ingest's rescoring runs in
the background ``Rescorer`` (``services/rescorer.py``) unless ``rescore_mode`` is ``sync``.

Nothing here knows HTTP; counters go to an optional ``ServingEvents`` (the API's metrics).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from anyio import CapacityLimiter, to_thread

from creditgraph.batching import PassBatch
from creditgraph.config import Settings
from creditgraph.domain import AccountColumns, LinkColumns, Reason, TransferColumns
from creditgraph.errors import CreditGraphError, ModelNotReady, NotFound, StoreUnavailable
from creditgraph.ingest.csvfile import Kind
from creditgraph.outcomes import ReviewItem
from creditgraph.registry import ModelRegistry
from creditgraph.services.inductive import InductiveScorer
from creditgraph.services.ingest import import_records
from creditgraph.services.rescorepool import RescorePool
from creditgraph.services.rescorer import Rescorer, score_in_thread
from creditgraph.services.retrain import promote_version
from creditgraph.services.review_writer import ReviewWriter
from creditgraph.services.reviews import review_item
from creditgraph.services.risk import (
    AccountRisk,
    PendingDecision,
    RiskDecision,
    RiskEngine,
    TransferCheck,
    check_store,
)
from creditgraph.store.base import GraphStore, Revision
from creditgraph.store.factory import open_store

log = logging.getLogger("creditgraph.api")

T = TypeVar("T")
Transfers = list[tuple[str, str, float]]
Links = list[tuple[str, str, str]]


class ServingEvents(Protocol):
    """Where ``Serving`` reports what a metrics system counts."""

    def degraded(self, flag: bool) -> None: ...
    def reloaded(self, ok: bool, version: str | None) -> None: ...
    def scored_inductively(self, accounts: int) -> None: ...
    def rescore_pending(self, depth: int) -> None: ...
    def rescored(self, accounts: int, lags_s: Sequence[float], cpu_s: float) -> None: ...


class _NoEvents:
    def degraded(self, flag: bool) -> None:
        pass

    def reloaded(self, ok: bool, version: str | None) -> None:
        pass

    def scored_inductively(self, accounts: int) -> None:
        pass

    def rescore_pending(self, depth: int) -> None:
        pass

    def rescored(self, accounts: int, lags_s: Sequence[float], cpu_s: float) -> None:
        pass


@dataclass
class StoreHealth:
    """Whether the store answers; flipped by failed calls and by the background probe."""

    degraded: bool = False
    since: float | None = None
    last_error: str | None = None
    events: ServingEvents = field(default_factory=_NoEvents, repr=False)

    def down(self, error: BaseException) -> None:
        if not self.degraded:
            log.warning("store unreachable, degraded mode", extra={"error": str(error)})
            self.since = time.time()
        self.degraded = True
        self.last_error = str(error)
        self.events.degraded(True)

    def up(self) -> None:
        if self.degraded:
            log.warning("store reachable again, leaving degraded mode")
        self.degraded = False
        self.since = None
        self.last_error = None
        self.events.degraded(False)


@dataclass(frozen=True)
class AccountScore:
    """One account's scores as the serving model gives them now."""

    account_id: str
    fraud_probability: float
    social_credit: float
    reasons: list[Reason]
    model_version: str
    source: Literal["table", "live", "inductive"]
    degraded: bool
    #: New ties of the account wait for the background rescorer (the score predates them).
    pending: bool = False


@dataclass(frozen=True)
class IngestResult:
    """What one live ingest batch did."""

    kind: Kind
    received: int
    changed: int
    created_accounts: int
    #: Accounts rescored inside the request (``rescore_mode=sync``).
    rescored: int
    model_version: str | None
    #: Accounts handed to the background rescorer (``rescore_mode=background``).
    queued: int = 0


@dataclass(frozen=True)
class Reloaded:
    model_version: str
    accounts: int
    seconds: float


class Serving:
    """Store, health, engine, reload journal and live ingest of one server process."""

    def __init__(self, settings: Settings, events: ServingEvents | None = None) -> None:
        self.settings = settings
        self.events: ServingEvents = events or _NoEvents()
        self.health = StoreHealth(events=self.events)
        self.registry = ModelRegistry(settings.models_dir)
        self.policy = settings.risk
        self._store: GraphStore | None = None
        self.engine: RiskEngine | None = None
        self.load_error: str | None = None
        self._reload_lock = threading.Lock()
        # Serialises live updates with the end of a reload (see ``_apply_live``).
        self._live_lock = threading.Lock()
        self._journal: list[tuple[Transfers, Links, list[str]]] | None = None
        # Inductive scoring is CPU work (torch, one thread): more of it at once than there are
        # cores only adds GIL and cache contention, so requests queue here instead.
        self.scoring_limiter = CapacityLimiter(max(1, (os.cpu_count() or 2) - 1))
        # Investigators' score look-ups get a slot of their own: the payment path's scoring
        # never queues behind investigator work (the bulkhead of issue 15).
        self.investigate_limiter = CapacityLimiter(1)
        self._store_lock = threading.Lock()
        in_worker = settings.rescore_processes > 0
        #: Where the rescorer's batches are scored: a worker process, or its own thread.
        self.rescore_pool = (
            RescorePool(settings, settings.rescore_process_nice) if in_worker else None
        )
        duty = settings.rescore_duty
        self.rescorer = Rescorer(
            lambda: self.engine,
            self.live_store,
            batch=settings.rescore_batch,
            duty=duty if duty is not None else (0.5 if in_worker else 0.2),
            events=self.events,
            on_store_down=self.health.down,
            retry_s=settings.store_probe_interval_s,
            score=self.rescore_pool or score_in_thread,
        )
        self._reviews: ReviewWriter | None = None  # started by the first review answer
        self._decide_batch: PassBatch[tuple[RiskEngine, TransferCheck], RiskDecision] = PassBatch(
            self._decide_all
        )

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

    def close(self) -> None:
        self.rescorer.close()  # joins the worker before the store it reads closes
        if self.rescore_pool is not None:
            self.rescore_pool.close()  # after the thread: no batch is sent to it any more
        if self._reviews is not None:
            self._reviews.close()  # commits what was submitted, before the store closes
        if self._store is not None:
            self._store.close()

    def flush_rescoring(self, timeout: float = 30.0) -> bool:
        """Wait until the background rescorer has scored every account ingested so far
        (True), or ``timeout`` seconds (False)."""
        return self.rescorer.flush(timeout)

    def forget(self, account_ids: Sequence[str]) -> list[str]:
        """Drop erased people from memory: the engine's tables, overlays and caches, and the
        rescorer's queue (so none is scored back in). Returns the ids the engine knew."""
        return self.rescorer.forget(self.engine, account_ids)

    def held_ids(self) -> list[str]:
        """Every account id held in memory: the engine's and those queued for rescoring."""
        engine = self.engine
        return [*([] if engine is None else engine.held_ids()), *self.rescorer.pending_ids()]

    # -- the model -------------------------------------------------------------------------------
    def require_engine(self) -> RiskEngine:
        engine = self.engine
        if engine is None:
            raise ModelNotReady(self.load_error or "the model is not loaded yet")
        return engine

    @property
    def scorer(self) -> InductiveScorer | None:
        """The serving model's one-account scorer (None while no model is loaded)."""
        return None if self.engine is None else self.engine.scorer

    def reload(self) -> Reloaded:
        """Build a new engine from the champion and a fresh snapshot, then swap it in.

        Requests in flight keep the engine they started with; one reload at a time."""
        t0 = time.perf_counter()
        with self._reload_lock:
            with self._live_lock:
                self._journal = []  # live data written from here on is replayed below
            try:
                engine = RiskEngine.load(self.store, self.registry, self.policy)
            except CreditGraphError as e:
                with self._live_lock:
                    self._journal = None
                self.events.reloaded(False, None)
                if isinstance(e, StoreUnavailable):
                    self.health.down(e)
                self.load_error = str(e)
                raise
            with self._live_lock:
                # Ingest that ran while the snapshot was taken may be missing from it.
                journal, self._journal = self._journal or [], None
                for transfers, links, _touched in journal:
                    engine.record_ties(transfers=transfers, links=links)
                touched = list(dict.fromkeys(a for *_, t in journal for a in t))
                if self.settings.rescore_mode == "sync":
                    engine.rescore(touched, self.store)
                with self.rescorer.swap():
                    # Accounts still pending (or scored on the old engine meanwhile) are
                    # scored on this one; a batch in flight is put back (``Rescorer``).
                    engine.pending = self.rescorer
                    previous, self.engine = self.engine, engine
                if self.settings.rescore_mode == "background":
                    self.rescorer.touch(engine, touched)
            _settle_heap(first=previous is None)
            self.load_error = None
            self.events.reloaded(True, engine.model_version)
            log.info(
                "model loaded",
                extra={"model_version": engine.model_version, "accounts": len(engine.account_ids)},
            )
        return Reloaded(
            engine.model_version, len(engine.account_ids), round(time.perf_counter() - t0, 3)
        )

    def promote(self, version: str, reason: str) -> Reloaded:
        """Make ``version`` the champion (no gate: that is the retraining job's) and serve it."""
        promote_version(self.registry, version, reason=reason)
        return self.reload()

    def models(self) -> list[dict[str, Any]]:
        """Registered versions, oldest first, with the champion and the serving one marked."""
        champion = self.registry.champion_version()
        serving = None if self.engine is None else self.engine.model_version
        return [
            {
                "version": r.version,
                "champion": r.version == champion,
                "serving": r.version == serving,
                "created_at": r.created_at,
                "metrics": r.metrics,
            }
            for r in self.registry.records()
        ]

    def readiness(self) -> dict[str, Any]:
        """Ready once a model is loaded, also while degraded (answers come from memory)."""
        engine = self.engine
        return {
            "ready": engine is not None,
            "model_loaded": engine is not None,
            "model_version": None if engine is None else engine.model_version,
            "store_reachable": not self.health.degraded,
            "degraded": self.health.degraded,
            "degraded_since": self.health.since,
            "error": self.health.last_error or self.load_error,
        }

    # -- answers from the store, or from memory -------------------------------------------------
    def _with_store(self, fn: Callable[[GraphStore | None], T]) -> T:
        """``fn(store)``, or ``fn(None)`` (answer from memory) while the store is unreachable:
        the one place degraded mode is entered from a request."""
        store = self.live_store()
        try:
            return fn(store)
        except StoreUnavailable as e:
            if store is None:
                raise
            self.health.down(e)
            return fn(None)

    # -- the payment path --------------------------------------------------------------------
    async def decide(self, check: TransferCheck) -> RiskDecision:
        """The decision on ``check``; from memory alone while the store is unreachable.

        Two known accounts are decided inline (microseconds); an account to score from the
        store sends the work to a thread, at most ``scoring_limiter`` at once."""
        engine = self.require_engine()
        unknown = int(not engine.knows(check.src)) + int(not engine.knows(check.dst))

        def decide(store: GraphStore | None) -> RiskDecision:
            return engine.decide(check, store)

        if unknown and self.live_store() is not None:
            self.events.scored_inductively(unknown)
            return await to_thread.run_sync(self._with_store, decide, limiter=self.scoring_limiter)
        # Known accounts: decided with the other checks of this event-loop pass, one after
        # another, so each reads the trees and tables warm (``batching``). The same call
        # per check as alone: the answers do not depend on the batch.
        return await self._decide_batch.submit((engine, check))

    def _decide_all(
        self, items: list[tuple[RiskEngine, TransferCheck]]
    ) -> list[RiskDecision | BaseException]:
        """The checks of one pass: each begun alone, the learned ones' boosters run in one
        call per scorer (rows back to back: the trees stay in the CPU caches), then each
        finished alone. Every answer is the one ``RiskEngine.decide`` gives for it alone."""
        out: list[RiskDecision | PendingDecision | BaseException] = []
        for engine, check in items:
            try:
                out.append(self._begin(engine, check))
            except Exception as e:  # that check's answer (a 503, say), not the batch's
                out.append(e)
        pending: dict[int, list[int]] = {}
        for k, r in enumerate(out):
            if isinstance(r, PendingDecision):
                pending.setdefault(id(r.scorer), []).append(k)
        for ks in pending.values():
            first = out[ks[0]]
            assert isinstance(first, PendingDecision)
            try:
                rows = [p.prepared for k in ks if isinstance(p := out[k], PendingDecision)]
                margins = first.scorer.margins(rows)
            except Exception as e:
                for k in ks:
                    out[k] = e
                continue
            for k, margin in zip(ks, margins, strict=True):
                p = out[k]
                assert isinstance(p, PendingDecision)
                try:
                    out[k] = items[k][0].finish(p, margin)
                except Exception as e:
                    out[k] = e
        return [RuntimeError("not finished") if isinstance(r, PendingDecision) else r for r in out]

    def _begin(self, engine: RiskEngine, check: TransferCheck) -> RiskDecision | PendingDecision:
        return self._with_store(lambda store: engine.begin(check, store))

    async def queue_review(self, check: TransferCheck, decision: RiskDecision) -> str | None:
        """Put a ``review`` answer in the store-backed review queue and wait until its batch
        is committed (``ReviewWriter``: concurrent answers share one transaction); its id,
        or None when the queue is off or the decision is degraded (made from memory with
        the store unreachable). A commit that fails raises ``ReviewQueueFailed`` (a 503):
        the answer is not given without its item."""
        if not self.policy.review_queue or decision.degraded:
            return None
        item = review_item(check, decision)
        return await asyncio.wrap_future(self._review_writer().submit(item))

    def _review_writer(self) -> ReviewWriter:
        writer = self._reviews
        if writer is None:
            with self._store_lock:
                if self._reviews is None:
                    self._reviews = ReviewWriter(self._commit_reviews)
                writer = self._reviews
        return writer

    def _commit_reviews(self, items: Sequence[ReviewItem]) -> list[str | None]:
        """One batch of review items in one store transaction (the writer thread's work)."""
        store = self.live_store()
        if store is None:
            raise StoreUnavailable("the graph store became unreachable")
        try:
            store.add_reviews(items)
        except StoreUnavailable as e:
            self.health.down(e)
            raise
        return [i.review_id for i in items]

    async def account_score(
        self, account_id: str, *, lane: Literal["payment", "investigator"] = "payment"
    ) -> AccountScore:
        """The serving model's scores of one account with reasons; ``NotFound`` for an account
        neither the model nor the store knows. ``lane`` picks the scoring slot: the payment
        path's, or the investigators' own."""
        limiter = self.scoring_limiter if lane == "payment" else self.investigate_limiter
        return await to_thread.run_sync(self._account_score, account_id, limiter=limiter)

    def _account_score(self, account_id: str) -> AccountScore:
        engine = self.require_engine()

        def look_up(store: GraphStore | None) -> tuple[AccountRisk, bool]:
            if (
                store is not None
                and not engine.knows(account_id)
                and store.missing_accounts([account_id])
            ):
                raise NotFound(f"account {account_id!r} not found")
            return engine.account_risk(account_id, store), store is None

        risk, degraded = self._with_store(look_up)
        if risk.fraud_probability is None or risk.social_credit is None:
            raise StoreUnavailable(
                f"account {account_id!r} is not in memory and the store is unreachable"
            )
        reasons: list[Reason] = []
        if risk.inductive is not None:
            reasons = risk.inductive.reasons
        else:
            # Batch reasons when the store has them for this model, else attributed now.
            if not degraded:
                stored = self._with_store(
                    lambda st: [] if st is None else st.get_scores([account_id])
                )
                if stored and stored[0].model_version == engine.model_version:
                    reasons = stored[0].reasons  # type: ignore[assignment]
            if not reasons:
                reasons = engine.scorer.score(account_id).reasons
        assert risk.source != "unavailable"
        return AccountScore(
            account_id=account_id,
            fraud_probability=risk.fraud_probability,
            social_credit=risk.social_credit,
            reasons=reasons,
            model_version=engine.model_version,
            source=risk.source,
            degraded=degraded,
            pending=risk.pending,
        )

    # -- live ingest -----------------------------------------------------------------------------
    def ingest(
        self,
        kind: Kind,
        records: Sequence[Mapping[str, str | None]],
        *,
        create_missing: bool,
        revision: Revision | None = None,
    ) -> IngestResult:
        """Write one batch (checked exactly like a CSV file, all or nothing, idempotent by id)
        and let the serving model see it: its ties join the engine's overlays at once, and
        up to ``rescore_limit`` touched accounts are rescored inside the call
        (``rescore_mode=sync``) or queued for the background rescorer."""
        done = import_records(
            self.store, kind, records, create_missing_accounts=create_missing, revision=revision
        )
        batch = done.batch
        transfers: Transfers = []
        links: Links = []
        touched: list[str] = []
        if isinstance(batch, TransferColumns):
            transfers = list(zip(batch.src, batch.dst, batch.amount, strict=True))
            touched = list(dict.fromkeys([*batch.src, *batch.dst]))
        elif isinstance(batch, LinkColumns):
            links = list(zip(batch.src, batch.dst, batch.type, strict=True))
            touched = list(dict.fromkeys([*batch.src, *batch.dst]))
        elif isinstance(batch, AccountColumns):
            touched = list(dict.fromkeys(batch.account_id))
        rescored = queued = 0
        if done.report.changed:
            rescored, queued = self._apply_live(
                transfers, links, touched[: self.settings.rescore_limit]
            )
            if isinstance(batch, TransferColumns) and self.engine is not None:
                self.engine.record_transfers(
                    zip(batch.src, batch.dst, batch.amount, batch.timestamp, strict=True)
                )
        engine = self.engine
        return IngestResult(
            kind=kind,
            received=len(records),
            changed=done.report.changed,
            created_accounts=done.report.created_accounts,
            rescored=rescored,
            model_version=None if engine is None else engine.model_version,
            queued=queued,
        )

    def _apply_live(
        self, transfers: Transfers, links: Links, touched: list[str]
    ) -> tuple[int, int]:
        """Add a written batch's ties to the serving engine, then rescore ``touched`` (sync)
        or queue them for the background rescorer; journaled while a reload runs so the new
        engine gets them too. Returns (accounts rescored, accounts queued)."""
        with self._live_lock:
            if self._journal is not None:
                self._journal.append((transfers, links, touched))
            engine = self.engine
            if engine is None:
                return 0, 0
            if self.settings.rescore_mode == "background":
                # Pending (earlier live scores dropped) before the ties show: no answer pairs
                # a new tie with a "live" score that predates it.
                queued = self.rescorer.touch(engine, touched)
                engine.record_ties(transfers=transfers, links=links)
                return 0, queued
            engine.record_ties(transfers=transfers, links=links)
            rescored = len(engine.rescore(touched, self.store))
        self.events.scored_inductively(rescored)
        return rescored, 0


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
