"""Heavy investigator views in worker processes, so the API process stays free for payments.

A two- or three-hop neighbourhood or a path search is seconds of pure Python. In a thread of
the API process it holds the GIL for most of that time, and the event loop answering risk
checks waits for it: the bulkhead (``api/bulkheads.py``) bounds how many run at once, not the
CPU and GIL they take (risk p99 7 ms alone, 176-360 ms beside four 3-hop views at 200k,
docs/benchmarks.md). ``ViewPool`` runs those views in ``investigate_processes`` spawned
worker processes instead (default 1; 0 keeps them in the API process). Each worker opens its
own store connection on first use and reads what the API process has committed, so answers
are the same as in-process; it lowers its own CPU priority by ``investigate_process_nice``, so
on a busy machine the payment path is scheduled first.

A worker returns the answer already serialised (orjson bytes) with the ids it shows and its
audit summary, so the API process neither unpickles nor serialises the large view: its share
is a copy of bytes. Errors cross the process boundary as (class name, message, cap) and are
raised again as the same ``CreditGraphError`` (``TooExpensive`` keeps its ``cap``: the 422
names it as before). A worker that dies (killed, out of memory) fails the requests it held
with ``StoreUnavailable`` (503) and the pool is rebuilt for the next request.

``close`` shuts the pool down by signalling the workers and waiting for the views in flight
to finish (``shutdown(wait=True)``, nothing cancelled).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import util as mp_util
from typing import Any

import orjson

from creditgraph import errors
from creditgraph.config import Settings
from creditgraph.errors import CreditGraphError, StoreUnavailable, TooExpensive
from creditgraph.services import investigate
from creditgraph.store.base import GraphStore

#: The views a worker serves: name -> (function of the store, audit summary).
VIEWS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "neighbourhood": (
        investigate.neighbourhood_graph,
        lambda v: f"nodes={len(v['nodes'])} edges={len(v['edges'])} truncated={v['truncated']}",
    ),
    "paths": (
        investigate.paths_view,
        lambda v: f"paths={len(v['paths'])} length={v['length']} complete={v['complete']}",
    ),
}


@dataclass(frozen=True, slots=True)
class View:
    """A view computed by a worker: the JSON body, every account it shows, its summary."""

    body: bytes
    shown: list[str]
    summary: str
    pid: int


# -- the worker side --------------------------------------------------------------------------
_settings: Settings | None = None
_store: GraphStore | None = None
_WATCH_S = 0.5  # how often a worker checks that the API process is still there


def init_worker(settings: Settings, nice: int, parent: int) -> None:
    global _settings
    _settings = settings
    _exit_with(parent)
    if nice:
        os.nice(nice)


def _exit_with(parent: int) -> None:
    """Exit when the API process is gone. A SIGKILLed (or OOM-killed) API process runs no
    shutdown, and its worker would live on as an orphan holding a store connection. A
    watchdog thread, not ``PR_SET_PDEATHSIG``: that signal follows the *thread* that spawned
    the worker (a request's pool thread, which may idle out), not the process."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_S)
        os._exit(0)  # nothing of the API's to flush here: the worker only reads

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def worker_store() -> GraphStore:
    global _store
    if _store is None:
        from creditgraph.store.factory import open_store  # the worker's own connection

        assert _settings is not None
        _store = open_store(_settings, fail_fast=True)
        # Workers end through multiprocessing's exit path, which runs finalizers (not atexit).
        mp_util.Finalize(None, _store.close, exitpriority=10)
    return _store


def _run(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> View | tuple[str, str, Any]:
    fn, summary = VIEWS[name]
    try:
        out = fn(worker_store(), *args, **kwargs)
    except CreditGraphError as e:
        return (type(e).__name__, str(e), getattr(e, "cap", None))
    return View(orjson.dumps(out), [n["id"] for n in out["nodes"]], summary(out), os.getpid())


def raise_again(kind: str, message: str, cap: Any) -> CreditGraphError:
    cls = getattr(errors, kind, None)
    if cls is TooExpensive:
        return TooExpensive(message, str(cap))
    if isinstance(cls, type) and issubclass(cls, CreditGraphError):
        try:
            return cls(message)
        except TypeError:  # an error with a richer constructor: keep its family's status
            pass
    return CreditGraphError(message)


# -- the API side -----------------------------------------------------------------------------
class SpawnedPool:
    """Spawned, niced worker processes (started on first use) and their shutdown; shared by
    ``ViewPool`` and the rescorer's ``RescorePool``."""

    def __init__(
        self,
        settings: Settings,
        processes: int,
        nice: int = 0,
        initializer: Callable[[Settings, int, int], None] = init_worker,
    ) -> None:
        self.settings = settings
        self.processes = processes
        self.nice = nice
        self._initializer = initializer
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def _closing(self) -> Exception:
        """What a call after ``close`` raises."""
        return StoreUnavailable("the server is shutting down")

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise self._closing()
            if self._pool is None:
                # spawn, not fork: the API process has threads (uvicorn, the ledger's writers,
                # torch), and a forked child may inherit a lock some thread held.
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=self._initializer,
                    initargs=(self.settings, self.nice, os.getpid()),
                )
            return self._pool

    def _broken(self, pool: ProcessPoolExecutor) -> None:
        """``pool`` lost a worker: the next call starts fresh workers."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False)

    def worker_pids(self) -> list[int]:
        """The pids of the running workers (none before the first call)."""
        pool = self._pool
        procs = getattr(pool, "_processes", None) or {}
        return sorted(procs)

    def close(self) -> None:
        """Signal the workers to stop and wait for the calls in flight (none is cancelled)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)


class ViewPool(SpawnedPool):
    """``processes`` spawned workers for the heavy views (started on first use)."""

    def __init__(self, settings: Settings, processes: int, nice: int = 0) -> None:
        super().__init__(settings, processes, nice)
        self.served = 0  # views answered by a worker (for tests and /metrics readers)

    def call(self, name: str, *args: Any, **kwargs: Any) -> View:
        """Compute view ``name`` in a worker and wait for it (call from a thread, not the
        event loop: the wait holds no GIL). Raises what the view raised."""
        pool = self._executor()
        try:
            out = pool.submit(_run, name, args, kwargs).result()
        except BrokenProcessPool as e:
            self._broken(pool)
            raise StoreUnavailable(f"the investigator worker process died ({e}); retry") from e
        if isinstance(out, tuple):
            raise raise_again(*out)
        self.served += 1
        return out
