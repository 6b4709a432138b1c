"""What the decision reads about snapshot accounts, built once per engine from a snapshot.

- a sorted table of ordered pair keys (``i * n + j``) with a bit per kind of tie, so "friends?
  earlier transfers either way? which identity links?" is one binary search;
- an undirected adjacency (CSR of friendships and transfers) for "do the two share a
  neighbour?";
- each sender's transfer history (count and total amount);
- which detected rings each account belongs to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from creditgraph.domain import FRIEND, TRANSFER, IntArray, Ring, Snapshot
from creditgraph.errors import ModelNotReady

#: Rows longer than this are sampled (their CSR order) for the common-neighbour check.
NEIGHBOUR_CAP = 2_000
#: Ring statuses that do not count against the receiver.
IGNORED_RING_STATUSES = frozenset({"dismissed"})
#: Bits of the pair table; identity link types take the bits from ``FIRST_IDENTITY`` up, one
#: per type.
FRIENDS, SENT, RECEIVED, FIRST_IDENTITY = 1, 2, 4, 8
_MAX_IDENTITY_TYPES = 58  # bits 3..60 of an int64

I64Array = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class RingInfo:
    ring_id: str
    kind: str
    score: float
    status: str


class SnapshotTables:
    """Lookup tables over one snapshot's accounts (positions in ``account_ids``)."""

    def __init__(self, snapshot: Snapshot, rings: Sequence[Ring]) -> None:
        self.account_ids = list(snapshot.account_ids)
        self.index = {a: i for i, a in enumerate(self.account_ids)}
        n = len(self.account_ids)
        self._n = np.int64(n)
        rows: list[I64Array] = []
        cols: list[I64Array] = []
        keys: list[I64Array] = []
        bits: list[I64Array] = []

        def tie(src: IntArray, dst: IntArray, forward: int, backward: int) -> None:
            keys.extend([src * n + dst, dst * n + src])
            bits.extend([np.full(len(src), forward), np.full(len(src), backward)])

        self.identity_bits: dict[str, int] = {}
        for rel, es in sorted(snapshot.edges.items()):
            if not len(es):
                continue
            if rel == FRIEND:
                tie(es.src, es.dst, FRIENDS, FRIENDS)
            elif rel == TRANSFER:
                tie(es.src, es.dst, SENT, RECEIVED)
            else:
                if len(self.identity_bits) == _MAX_IDENTITY_TYPES:
                    raise ModelNotReady("more than 58 identity link types: pair table is full")
                bit = self.identity_bits[rel] = FIRST_IDENTITY << len(self.identity_bits)
                tie(es.src, es.dst, bit, bit)
                continue  # a shared device is no sign of trust: not a social neighbour
            rows += [es.src, es.dst]
            cols += [es.dst, es.src]
        self._pair_keys, self._pair_bits = _pair_table(keys, bits)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        adj = sp.csr_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n))
        adj.sum_duplicates()
        self._indptr = adj.indptr.astype(np.int64)
        self._indices = adj.indices.astype(np.int64)
        tr = snapshot.edges.get(TRANSFER)
        if tr is not None and len(tr) and tr.count is not None and tr.total_amount is not None:
            self._sent_total = np.bincount(tr.src, tr.total_amount, minlength=n).astype(np.float64)
            self._sent_count = np.bincount(tr.src, tr.count, minlength=n).astype(np.int64)
        else:
            self._sent_total = np.zeros(n, np.float64)
            self._sent_count = np.zeros(n, np.int64)
        self.rings: dict[str, list[RingInfo]] = defaultdict(list)
        for ring in rings:
            if ring.status in IGNORED_RING_STATUSES:
                continue
            info = RingInfo(ring.ring_id, ring.kind, float(ring.score), ring.status)
            for m in ring.members:
                self.rings[m].append(info)

    def sent(self, i: int | None) -> tuple[float, int]:
        """(total amount, count) of the transfers snapshot account ``i`` sent."""
        if i is None:
            return 0.0, 0
        return float(self._sent_total[i]), int(self._sent_count[i])

    def ties_between(self, i: int | None, j: int | None) -> int:
        """The pair table's bits for snapshot accounts ``i`` -> ``j`` (0 if either is None)."""
        if i is None or j is None:
            return 0
        key = i * self._n + j
        pos = int(self._pair_keys.searchsorted(key))
        if pos < len(self._pair_keys) and int(self._pair_keys[pos]) == int(key):
            return int(self._pair_bits[pos])
        return 0

    def identity_links(self, bits: int) -> list[str]:
        """The identity link types set in ``bits``."""
        return [rel for rel, bit in self.identity_bits.items() if bits & bit]

    def row(self, i: int) -> I64Array:
        """Snapshot account ``i``'s social neighbours (capped at ``NEIGHBOUR_CAP``)."""
        row: I64Array = self._indices[self._indptr[i] : self._indptr[i + 1]]
        return row[:NEIGHBOUR_CAP]

    def share_neighbour(self, i: int, j: int) -> bool:
        """Whether snapshot accounts ``i`` and ``j`` have a social neighbour in common."""
        ri, rj = self.row(i), self.row(j)
        # Typical rows are a few dozen ids: Python sets beat intersect1d's sort there.
        if len(ri) + len(rj) < 256:
            return not set(ri.tolist()).isdisjoint(rj.tolist())
        return bool(len(np.intersect1d(ri, rj, assume_unique=True)))


def _pair_table(keys: list[I64Array], bits: list[I64Array]) -> tuple[I64Array, I64Array]:
    """Sorted unique pair keys and the OR of the bits given for each."""
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k, b = np.concatenate(keys), np.concatenate(bits)
    order = np.argsort(k, kind="stable")
    k, b = k[order], b[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return k[starts], np.bitwise_or.reduceat(b, starts)
