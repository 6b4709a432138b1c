"""Group commit for the review queue: ``ReviewWriter``, one thread writing the review items
of concurrent ``review`` answers together, one store transaction (one fsync) per batch.

A ``review`` answer is given only once its item is committed (the item is durable before
the answer says review): the route awaits the future ``submit`` returns, which the writer
completes after its batch's ``commit``. Items that arrive while a batch commits form the
next batch, so under load the fsync cost is shared and with one request at a time a batch
is one item (no waiting for company: no added latency). A commit that fails fails every
answer of its batch with the error (``ReviewQueueFailed``), never a silent answer.

``close`` signals the thread and joins it after it committed what was submitted; a submit
after ``close`` raises. Futures are marked running when submitted, so a caller that goes
away (a cancelled request) cannot withdraw its item from a batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from creditgraph.errors import StoreUnavailable
from creditgraph.outcomes import ReviewItem

log = logging.getLogger("creditgraph.api")

#: Most items one transaction takes (a bound on one commit's time, not a wait).
MAX_BATCH = 256


class ReviewQueueFailed(StoreUnavailable):
    """The batch holding this review item could not be committed; the answer was not given."""


class ReviewWriter:
    """See the module docstring. ``commit(items)`` writes one batch (all or nothing) and
    returns each item's review id, or None for an item not queued (queue off, store down)."""

    def __init__(
        self,
        commit: Callable[[Sequence[ReviewItem]], Sequence[str | None]],
        *,
        max_batch: int = MAX_BATCH,
        name: str = "review-writer",
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._pending: list[tuple[ReviewItem, Future[str | None]]] = []
        self._stopping = False
        self.batches = 0  # committed batches (tests, benchmarks)
        self.items = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: ReviewItem) -> Future[str | None]:
        """Queue ``item`` for the next batch; the future gives its review id once committed."""
        fut: Future[str | None] = Future()
        fut.set_running_or_notify_cancel()  # not cancellable: the item stays in its batch
        with self._cond:
            if self._stopping:
                raise ReviewQueueFailed("the review queue is closed: the server is stopping")
            self._pending.append((item, fut))
            self._cond.notify()
        return fut

    def close(self) -> None:
        """Commit what was submitted, then stop the thread (signal and join)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return  # stopping, and everything submitted is committed
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            self._write(batch)

    def _write(self, batch: list[tuple[ReviewItem, Future[str | None]]]) -> None:
        try:
            ids = list(self._commit([item for item, _ in batch]))
            if len(ids) != len(batch):
                raise RuntimeError(f"commit returned {len(ids)} ids for {len(batch)} items")
        except BaseException as e:  # every answer of the batch fails, with the reason
            log.warning("review queue commit failed", extra={"error": str(e), "n": len(batch)})
            message = (
                f"the review queue could not commit a batch of {len(batch)} item(s): {e}; "
                "the transfer was not answered"
            )
            for _, fut in batch:  # one exception each: each is raised in its own request
                err = ReviewQueueFailed(message)
                err.__cause__ = e
                fut.set_exception(err)
            if not isinstance(e, Exception):
                raise
            return
        self.batches += 1
        self.items += len(batch)
        for (_, fut), review_id in zip(batch, ids, strict=True):
            fut.set_result(review_id)
