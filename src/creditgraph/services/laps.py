"""Where a batch job's time went: seconds per named step, for its report."""

from __future__ import annotations

import time


class Laps:
    """``lap(name)`` records the seconds since the previous lap (or since creation) under
    ``name`` in ``timings``; ``total(name)`` records the seconds since creation."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 3)
        self._clock = now

    def total(self, name: str) -> None:
        self.timings[name] = round(time.perf_counter() - self._start, 3)
