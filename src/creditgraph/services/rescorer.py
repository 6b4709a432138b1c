"""``Rescorer``: HTTP ingest's account rescoring, off the request path (issue 15's soak).

An ingest request writes its batch, adds the ties to the serving engine's overlays and hands
the touched accounts to ``touch``; it answers without scoring them (~30 ms CPU each at 20k
accounts: the GNN over a sampled neighbourhood). One worker thread takes the pending accounts
oldest first, ``batch`` at a time, scores them from the store (``RiskEngine.score_accounts``:
one read view, one ``adjacent`` call) and keeps the scores as the engine's live overrides.
The scoring itself runs where ``score`` says: by default in a worker process
(``services/rescorepool.py``: the thread then only waits, holding no GIL), else in this thread.

- Coalescing: pending is a set; an account touched ten times before the worker reaches it is
  scored once, from the store's state then (which holds all ten).
- Bounded duty: after a batch busy for t seconds (wall) the worker pauses
  t * (1 - duty) / duty, so it never takes more than ``duty`` of one core's time; under more
  ingest than that the queue grows and the lag with it (``creditgraph_rescore_pending``,
  ``creditgraph_rescore_lag_seconds``), the request path does not slow down.
- Truthful answers meanwhile: ``touch`` drops the accounts' earlier live scores (they predate
  the new tie) and the engine answers their table score marked ``pending``; a score computed
  from a store read that may predate a newer touch is not kept (the account is pending again
  and is scored in a later batch).
- Reloads: a reload swaps engines inside ``swap()`` (this lock), so a batch scored on the
  old engine is put back and scored on the new one; ``Serving.reload`` touches the journal's
  accounts on the new engine.
- Erasure: ``forget`` drops pending ids and marks ids in the batch in flight, whose scores
  are then not kept (an erased person is not scored back in), then forgets them on the engine.
- Stop: ``close`` sets a flag, notifies and joins the thread (never cancelled).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from creditgraph.errors import StoreUnavailable
from creditgraph.services.inductive import InductiveScore
from creditgraph.services.risk import RiskEngine
from creditgraph.store.base import GraphStore

log = logging.getLogger("creditgraph.api")

Scored = list[tuple[str, InductiveScore]]


class RetryLater(Exception):
    """A batch could not be scored for a reason that passes (its worker process died): it
    goes back to the queue, and the store is not marked down."""


class BatchScorer(Protocol):
    """Scores one batch from the store's current state: the scores and the CPU seconds."""

    def __call__(
        self, engine: RiskEngine, account_ids: list[str], store: GraphStore
    ) -> tuple[Scored, float]: ...


def score_in_thread(
    engine: RiskEngine, account_ids: list[str], store: GraphStore
) -> tuple[Scored, float]:
    """The batch scored in the calling thread (``rescore_processes=0``)."""
    cpu0 = time.thread_time()
    scored = engine.score_accounts(account_ids, store)
    return scored, time.thread_time() - cpu0


class RescoreEvents(Protocol):
    """What the rescorer reports to a metrics system."""

    def rescore_pending(self, depth: int) -> None: ...
    def rescored(self, accounts: int, lags_s: Sequence[float], cpu_s: float) -> None: ...


class Rescorer:
    """The coalescing background rescorer of one serving process (see the module docstring)."""

    def __init__(
        self,
        engine: Callable[[], RiskEngine | None],
        store: Callable[[], GraphStore | None],
        *,
        batch: int,
        duty: float,
        events: RescoreEvents,
        on_store_down: Callable[[StoreUnavailable], None] = lambda _e: None,
        retry_s: float = 1.0,
        score: BatchScorer = score_in_thread,
    ) -> None:
        """``engine``: the serving engine now; ``store``: the store, None while it is known
        to be unreachable (degraded: the batch waits ``retry_s`` and is tried again, as after
        a ``StoreUnavailable``, which goes to ``on_store_down``); ``score``: where a batch is
        computed (this thread, or a worker process: ``RescorePool``)."""
        self._engine = engine
        self._score = score
        self._store = store
        self.batch = batch
        self.duty = duty
        self.events = events
        self._on_store_down = on_store_down
        self.retry_s = retry_s
        self._cond = threading.Condition()
        #: Pending id -> monotonic time of its first touch not yet scored (oldest first).
        self._pending: dict[str, float] = {}
        #: The batch being scored, with the same times.
        self._inflight: dict[str, float] = {}
        #: Ids of the batch in flight forgotten (erased) meanwhile.
        self._dropped: set[str] = set()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.rescored_total = 0
        self.cpu_s_total = 0.0

    # -- what ingest, erasure and reload call -------------------------------------------------
    def touch(self, engine: RiskEngine, account_ids: Sequence[str]) -> int:
        """Queue ``account_ids`` (their new ties are written and in ``engine``'s overlays);
        drops their earlier live scores. Returns how many were queued."""
        if not account_ids:
            return 0
        now = time.monotonic()
        with self._cond:
            if self._stop:
                return 0
            engine.pending = self
            engine.drop_live(account_ids)
            for a in account_ids:
                self._pending.setdefault(a, now)
            self._start()
            self.events.rescore_pending(len(self._pending))
            self._cond.notify_all()
        return len(account_ids)

    def forget(self, engine: RiskEngine | None, account_ids: Sequence[str]) -> list[str]:
        """Erased people: no longer pending, their scores in flight not kept, and forgotten
        by ``engine`` (inside this lock, so no batch can keep a score between the two).
        Returns the ids ``engine`` knew."""
        with self._cond:
            for a in account_ids:
                self._pending.pop(a, None)
                if a in self._inflight:
                    self._dropped.add(a)
            known = [] if engine is None else engine.forget(account_ids)
            self._cond.notify_all()
        return known

    @contextmanager
    def swap(self) -> Iterator[None]:
        """Hold while the serving engine is replaced (a batch's keep checks the engine it
        was scored on is still the one serving, under this lock)."""
        with self._cond:
            yield

    # -- what answers and tests read ----------------------------------------------------------
    def __contains__(self, account_id: object) -> bool:
        # Look-ups without the lock: an answer racing a touch may miss it either way.
        return (
            account_id in self._pending or account_id in self._inflight
        ) and account_id not in self._dropped

    def pending_ids(self) -> list[str]:
        with self._cond:
            return [*self._pending, *(a for a in self._inflight if a not in self._dropped)]

    def depth(self) -> int:
        with self._cond:
            return len(self._pending) + len(self._inflight) - len(self._dropped)

    def flush(self, timeout: float) -> bool:
        """Wait until nothing is pending or in flight (True), or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop:
                    return False
                self._cond.wait(left)
        return True

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def close(self) -> None:
        """Stop the worker: flag, notify, join (a batch in flight finishes first). Pending
        accounts stay unscored (the next process's snapshot holds their ties)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    # -- the worker ----------------------------------------------------------------------------
    def _start(self) -> None:
        """Start the worker on first use (caller holds the lock)."""
        if self._thread is None:
            # Daemon only as a safety net for a process that never calls ``close``.
            self._thread = threading.Thread(target=self._run, name="rescorer", daemon=True)
            self._thread.start()

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped (caller holds the lock); True when stopped."""
        deadline = time.monotonic() + seconds
        while not self._stop:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._cond.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                take = list(self._pending)[: self.batch]
                self._inflight = {a: self._pending.pop(a) for a in take}
                engine = self._engine()
            wall0 = time.perf_counter()
            retry = cpu = 0.0
            scored: Scored = []
            store = self._store()
            try:
                if engine is None or store is None:
                    retry = self.retry_s  # no model yet, or degraded: try again later
                else:
                    scored, cpu = self._score(engine, take, store)
            except StoreUnavailable as e:
                self._on_store_down(e)
                retry = self.retry_s
            except RetryLater as e:
                log.warning("background rescoring: %s; retrying", e)
                retry = self.retry_s
            except Exception:
                # One bad batch must not stop the worker; its accounts keep the table score.
                log.exception("background rescoring failed", extra={"accounts": len(take)})
            with self._cond:
                lags = self._keep(engine, scored, retry > 0)
                self._inflight, self._dropped = {}, set()
                self.rescored_total += len(lags)
                self.cpu_s_total += cpu
                # Reported before ``flush`` can return: its callers may read the metrics.
                self.events.rescored(len(lags), lags, cpu)
                self.events.rescore_pending(len(self._pending))
                self._cond.notify_all()
            busy = time.perf_counter() - wall0
            with self._cond:
                if self._wait(max(retry, busy * (1 - self.duty) / self.duty)):
                    return

    def _keep(
        self,
        engine: RiskEngine | None,
        scored: Scored,
        again: bool,
    ) -> list[float]:
        """Keep what may be kept (caller holds the lock); returns the kept accounts' lags
        (first touch to kept). ``again``: the batch failed for a reason that passes, or the
        engine changed meanwhile: its accounts go back to the front of the queue."""
        if again or engine is None or self._engine() is not engine:
            back = {a: t for a, t in self._inflight.items() if a not in self._dropped}
            for a, t in self._pending.items():
                back[a] = min(t, back.get(a, t))
            self._pending = back
            return []
        now = time.monotonic()
        keep = [
            (a, s)
            for a, s in scored
            # Touched again while scored (the read may predate that tie), or erased.
            if a not in self._pending and a not in self._dropped
        ]
        engine.keep_scores(keep)
        return [now - self._inflight[a] for a, _ in keep]
