"""What changed since the snapshot: live overlays of new ties, and a small TTL cache.

``Overlay`` holds the ties HTTP ingest added (small; a reload builds a new engine from a
snapshot that already holds them). ``TtlCache`` keeps values for a while and at most so many;
the engine keeps request-time inductive scores in one, the API its idempotent answers.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from creditgraph.domain import FRIEND, canonical_pair
from creditgraph.ml.scorer import InductiveScore

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Values by key for ``ttl_s()`` seconds, at most ``max_entries()`` of them, oldest
    evicted first; thread-safe.

    ``ttl_s`` and ``max_entries`` are read on every call, so the owner's settings may change
    underneath (a TTL of 0 switches the cache off). Entries are ``(time stored, value)``
    tuples in insertion order (a re-put moves a key last), so eviction drops the entry
    closest to expiry; with values of atoms (bytes, numbers) they are invisible to the cyclic
    garbage collector, which matters at tens of thousands of entries.
    """

    def __init__(self, ttl_s: Callable[[], float], max_entries: Callable[[], int]) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._items: dict[object, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: object) -> V | None:
        """The value, or None when absent or expired (an expired entry is dropped)."""
        ttl = self._ttl_s()
        if ttl <= 0:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if time.monotonic() - item[0] >= ttl:
                del self._items[key]
                return None
        return item[1]

    def put(self, key: object, value: V) -> None:
        """Keep ``value`` (a no-op while the TTL is 0); evicts the oldest beyond the bound."""
        if self._ttl_s() <= 0:
            return
        with self._lock:
            self._items.pop(key, None)  # re-inserted last: the newest entry
            self._items[key] = (time.monotonic(), value)
            limit = self._max_entries()
            while len(self._items) > limit:
                del self._items[next(iter(self._items))]

    def discard(self, keys: Iterable[object]) -> None:
        with self._lock:
            for k in keys:
                self._items.pop(k, None)

    def __iter__(self) -> Iterator[object]:
        return iter(list(self._items))

    def values(self) -> list[tuple[float, V]]:
        return list(self._items.values())


@dataclass
class Overlay:
    """Ties HTTP ingest added since the snapshot, and the accounts it rescored."""

    scores: dict[str, InductiveScore] = field(default_factory=dict)
    friends: set[tuple[str, str]] = field(default_factory=set)
    identity: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    transfers: set[tuple[str, str]] = field(default_factory=set)
    neighbours: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sent: dict[str, tuple[float, int]] = field(default_factory=dict)

    def add(
        self, transfers: Iterable[tuple[str, str, float]], links: Iterable[tuple[str, str, str]]
    ) -> None:
        """Transfers as (src, dst, amount); links as (a, b, type). Caller holds the lock."""
        for src, dst, amount in transfers:
            self.transfers.add((src, dst))
            total, count = self.sent.get(src, (0.0, 0))
            self.sent[src] = (total + amount, count + 1)
            self.neighbours[src].add(dst)
            self.neighbours[dst].add(src)
        for a, b, kind in links:
            if kind != FRIEND:
                self.identity[canonical_pair(a, b)].add(kind)
                continue
            self.friends.add(canonical_pair(a, b))
            self.neighbours[a].add(b)
            self.neighbours[b].add(a)

    def forget(self, account_id: str) -> None:
        """Drop every tie and score of ``account_id`` (an erased person). Caller holds the lock."""
        self.scores.pop(account_id, None)
        self.sent.pop(account_id, None)
        for other in self.neighbours.pop(account_id, set()):
            self.neighbours.get(other, set()).discard(account_id)
        for pairs in (self.friends, self.transfers):
            pairs.difference_update({p for p in pairs if account_id in p})
        for pair in [p for p in self.identity if account_id in p]:
            del self.identity[pair]

    def identity_links(self, a: str, b: str) -> set[str]:
        return set(self.identity.get(canonical_pair(a, b), ()))

    def friends_of(self, a: str, b: str) -> bool:
        return canonical_pair(a, b) in self.friends

    def transferred(self, a: str, b: str) -> bool:
        """Whether either sent the other money since the snapshot."""
        return (a, b) in self.transfers or (b, a) in self.transfers
