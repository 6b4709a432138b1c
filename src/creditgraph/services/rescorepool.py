"""The background rescorer's scoring in a worker process, so its CPU and GIL leave the API's.

Rescoring an account is ~14-30 ms of GNN work over its sampled neighbourhood. In a thread of
the API process it holds the GIL for much of that, so the event loop answering risk checks
waits: under the soak's mixed traffic the API process sat at one core and answered ~480 of
500 req/s with the rescorer capped at 0.2 of a core (docs/benchmarks.md). ``RescorePool``
runs the batches in one spawned, niced worker process instead (``rescore_processes``, default
1; 0 keeps them in a thread of the API process): the API's rescorer thread only waits on a
pipe, holding no GIL.

Same answers as in-process: the worker scores with the serving engine's own
``InductiveScorer`` (pickled to it once per engine, so the snapshot it scores over is the
engine's, not a newer one) from its own store connection, which reads what the API process
has committed (ingest answers after its write commits). It returns the scores; keeping them
(and every rule about reloads, erasure and touches meanwhile) stays with the ``Rescorer`` in
the API process.

Failures: a store error in the worker crosses back as the same ``CreditGraphError`` (a
``StoreUnavailable`` marks the store down, as in-process); a worker that dies (killed, out of
memory) raises ``RetryLater``: the batch goes back to the queue and the next one starts a
fresh worker. ``close`` shuts the worker down after the batch in flight (never cancelled).
"""

from __future__ import annotations

import pickle
import time
import weakref
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from creditgraph.config import Settings
from creditgraph.errors import CreditGraphError
from creditgraph.services.inductive import InductiveScorer
from creditgraph.services.rescorer import RetryLater, Scored
from creditgraph.services.risk import RiskEngine
from creditgraph.services.viewpool import SpawnedPool, init_worker, raise_again, worker_store
from creditgraph.store.base import GraphStore

# -- the worker side --------------------------------------------------------------------------
_scorer: InductiveScorer | None = None
_token = -1
_NEED_MODEL = "need-model"


def _init(settings: Settings, nice: int, parent: int) -> None:
    init_worker(settings, nice, parent)
    from creditgraph.ml.threads import use_threads

    use_threads(1)  # one small neighbourhood at a time: more threads only add contention


def _score(token: int, blob: bytes | None, ids: list[str]) -> Any:
    """Score ``ids`` with the scorer ``token`` (``blob``: that scorer, pickled, when sent)."""
    global _scorer, _token
    if blob is not None:
        _scorer, _token = pickle.loads(blob), token
    if _scorer is None or _token != token:
        return _NEED_MODEL
    cpu0 = time.process_time()
    try:
        scores = _scorer.score_many(ids, worker_store())
    except CreditGraphError as e:
        return (type(e).__name__, str(e), getattr(e, "cap", None))
    return list(zip(ids, scores, strict=True)), time.process_time() - cpu0


# -- the API side -----------------------------------------------------------------------------
class RescorePool(SpawnedPool):
    """One spawned worker that scores the ``Rescorer``'s batches (started on first use)."""

    def __init__(self, settings: Settings, nice: int = 0) -> None:
        super().__init__(settings, 1, nice, _init)
        #: The scorer the worker was last sent (weakly: a replaced engine's model is not kept
        #: alive here until the next batch), and its token (a new one per engine).
        self._sent: weakref.ref[InductiveScorer] | None = None
        self._token = 0
        self.batches = 0  # batches scored by a worker (for tests)
        self.models_sent = 0

    def _closing(self) -> Exception:
        return RetryLater("the server is shutting down")

    def __call__(
        self, engine: RiskEngine, account_ids: list[str], store: GraphStore
    ) -> tuple[Scored, float]:
        """``engine.score_accounts(account_ids, store)`` computed in the worker (from its own
        store connection), with the worker's CPU seconds. Called from the rescorer thread."""
        del store  # the worker reads through its own connection
        ids = list(dict.fromkeys(account_ids))
        pool = self._executor()
        if self._sent is None or self._sent() is not engine.scorer:
            self._sent, self._token = weakref.ref(engine.scorer), self._token + 1
        try:
            out = pool.submit(_score, self._token, None, ids).result()
            if out == _NEED_MODEL:  # a fresh worker, or a new engine since the last batch
                blob = pickle.dumps(engine.scorer, protocol=pickle.HIGHEST_PROTOCOL)
                out = pool.submit(_score, self._token, blob, ids).result()
                self.models_sent += 1
        except BrokenProcessPool as e:
            self._broken(pool)
            raise RetryLater(f"the rescoring worker process died ({e})") from e
        if isinstance(out, tuple) and len(out) == 3:
            raise raise_again(*out)
        scored, cpu = out
        self.batches += 1
        return scored, float(cpu)
