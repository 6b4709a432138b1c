"""``PassBatch``: work submitted in one event-loop pass, done by one call.

Under load, one pass of the event loop runs many requests' handlers (every connection the
poll found ready). Work they hand to a ``PassBatch`` is done by one callback the loop runs
after them (scheduled with ``call_soon`` at the first submission: no timer, so a lone request
waits one callback, not a delay). Two reasons it pays on the payment path:

- per-call costs are paid once per batch: a log write's lock, ``flock``, tail check and
  ``write`` (``ledger.decisions.LineBatch``);
- the same code and data run back to back: a decision walks ~300 trees and half a dozen
  large tables, and between two requests the HTTP handling in between evicts them from the
  CPU caches; deciding a pass's checks one after another reads them warm
  (``services.serving.Serving.decide``; docs/benchmarks.md, "Session 10").

``run`` gets the items in submission order and returns one result per item: a value, or an
exception for that item alone; an exception ``run`` raises goes to every item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class PassBatch(Generic[T, R]):
    """Items submitted in one event-loop pass, handled by one call of ``run`` (module doc)."""

    def __init__(self, run: Callable[[list[T]], Sequence[R | BaseException]]) -> None:
        self._run = run
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # where the flush is scheduled
        #: Batches run and items handled (items / batches = the mean batch size; bench/).
        self.batches = 0
        self.items = 0

    def submit(self, item: T) -> asyncio.Future[R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if self._pending and self._loop is not loop:
            # A loop stopped before its flush ran (an app restarted in a test): those
            # submitters are gone with it. Never mix two loops' futures in one batch.
            self._pending = []
        if not self._pending:
            self._loop = loop
            loop.call_soon(self._flush)
        self._pending.append((item, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self.batches += 1
        self.items += len(batch)
        try:
            results: Sequence[R | BaseException] = self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} items")
        except Exception as e:
            results = [e] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its request was cancelled meanwhile
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
