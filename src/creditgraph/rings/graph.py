"""A snapshot's transfers and shared identifiers as flat arrays indexed for ring detection.

Everything here is whole-graph numpy / scipy work (no per-account Python loops), so it scales
to millions of accounts. Transfers stay aggregated per ordered pair as in ``EdgeSet``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from creditgraph.domain import FRIEND, TRANSFER, FloatArray, IntArray, Snapshot

#: Link types that say "these people know each other", not "they share an identifier".
SOCIAL_LINK_TYPES: frozenset[str] = frozenset({FRIEND})


def _segment(op: np.ufunc, values: FloatArray, ptr: IntArray) -> FloatArray:
    """``op.reduce`` over each CSR segment of ``values`` (NaN for empty segments)."""
    out = np.full(len(ptr) - 1, np.nan)
    nonempty = np.flatnonzero(np.diff(ptr) > 0)
    if len(nonempty):
        out[nonempty] = op.reduceat(values, ptr[nonempty])
    return out


def _csr_pointer(keys: IntArray, n: int) -> IntArray:
    """Offsets into ``keys`` (sorted) where each of ``0..n-1`` starts; length ``n + 1``."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr


@dataclass(frozen=True)
class RingGraph:
    """Transfer pairs (sorted by source then destination) with CSR access both ways, and the
    undirected shared-identifier links (every link type not in ``SOCIAL_LINK_TYPES``)."""

    account_ids: list[str]
    src: IntArray
    dst: IntArray
    count: IntArray
    amount: FloatArray
    first_ts: FloatArray
    last_ts: FloatArray
    #: Pair positions of account ``v``'s outgoing pairs: ``out_ptr[v]:out_ptr[v + 1]``.
    out_ptr: IntArray
    #: Pair positions sorted by destination, and the offsets of each destination.
    in_order: IntArray
    in_ptr: IntArray
    out_total: FloatArray
    in_total: FloatArray
    link_a: IntArray
    link_b: IntArray
    link_type: IntArray
    link_types: list[str]
    #: Links of account ``v`` (both ends): ``link_pos[link_ptr[v]:link_ptr[v + 1]]``.
    link_ptr: IntArray
    link_pos: IntArray
    created_at: FloatArray
    #: Per-account fraud probability; NaN where unknown (no stored score).
    risk: FloatArray
    #: -1 unknown, 0 legit, 1 fraud (confirmed outcomes from the snapshot).
    labels: IntArray
    #: Median total amount of a transfer pair (1.0 without transfers): the money scale.
    typical_pair_amount: float
    #: Sorted keys ``min * n + max`` of social (FRIEND) pairs, for "are these two friends".
    friend_keys: IntArray
    #: Per account: earliest / latest time money arrived and left (NaN without such pairs).
    first_in: FloatArray
    last_in: FloatArray
    first_out: FloatArray
    last_out: FloatArray
    #: Per account: incoming pairs paid exactly once (one-off senders).
    one_off_in: IntArray
    #: A per-account boolean scratch mask (all False between calls) for membership tests.
    scratch: npt.NDArray[np.bool_]

    @property
    def n(self) -> int:
        return len(self.account_ids)

    @classmethod
    def build(
        cls,
        snap: Snapshot,
        risk: FloatArray | None = None,
        social_types: Iterable[str] = SOCIAL_LINK_TYPES,
    ) -> RingGraph:
        """Index ``snap``; ``risk`` (one value per account, NaN unknown) is optional."""
        n = snap.num_accounts
        t = snap.edges.get(TRANSFER)
        if t is None or len(t) == 0 or t.count is None:
            empty_i = np.zeros(0, dtype=np.int64)
            empty_f = np.zeros(0, dtype=np.float64)
            src, dst, cnt = empty_i, empty_i, empty_i
            amt, first, last = empty_f, empty_f, empty_f
        else:
            assert t.total_amount is not None
            assert t.first_ts is not None
            assert t.last_ts is not None
            order = np.lexsort((t.dst, t.src))
            src, dst, cnt = t.src[order], t.dst[order], t.count[order]
            amt, first, last = t.total_amount[order], t.first_ts[order], t.last_ts[order]
        in_order = np.argsort(dst, kind="stable").astype(np.int64)
        social = frozenset(social_types)
        types = sorted(r for r, e in snap.edges.items() if not e.directed and r not in social)
        a_parts, b_parts, t_parts = [], [], []
        for code, rel in enumerate(types):
            e = snap.edges[rel]
            a_parts.append(e.src)
            b_parts.append(e.dst)
            t_parts.append(np.full(len(e), code, dtype=np.int64))
        empty = np.zeros(0, dtype=np.int64)
        link_a = np.concatenate(a_parts).astype(np.int64) if a_parts else empty
        link_b = np.concatenate(b_parts).astype(np.int64) if b_parts else empty
        link_type = np.concatenate(t_parts) if t_parts else empty
        ends = np.concatenate([link_a, link_b])
        pos = np.tile(np.arange(len(link_a), dtype=np.int64), 2)
        by_end = np.argsort(ends, kind="stable")
        if risk is None:
            risk = np.full(n, np.nan)
        f_parts = [
            np.minimum(e.src, e.dst).astype(np.int64) * n + np.maximum(e.src, e.dst)
            for r, e in snap.edges.items()
            if not e.directed and r in social
        ]
        out_ptr = _csr_pointer(src, n)
        in_ptr = _csr_pointer(dst[in_order], n)
        # Links are one row per pair already: a sort makes the keys searchable.
        friend_keys = np.sort(np.concatenate(f_parts), kind="stable") if f_parts else empty
        return cls(
            account_ids=snap.account_ids,
            src=src,
            dst=dst,
            count=cnt,
            amount=amt,
            first_ts=first,
            last_ts=last,
            out_ptr=out_ptr,
            in_order=in_order,
            in_ptr=in_ptr,
            out_total=np.bincount(src, weights=amt, minlength=n).astype(np.float64),
            in_total=np.bincount(dst, weights=amt, minlength=n).astype(np.float64),
            link_a=link_a,
            link_b=link_b,
            link_type=link_type,
            link_types=types,
            link_ptr=_csr_pointer(ends[by_end], n),
            link_pos=pos[by_end],
            created_at=snap.created_at,
            risk=np.asarray(risk, dtype=np.float64),
            labels=snap.labels.astype(np.int64),
            typical_pair_amount=float(np.median(amt)) if len(amt) else 1.0,
            friend_keys=friend_keys,
            first_in=_segment(np.minimum, first[in_order], in_ptr),
            last_in=_segment(np.maximum, last[in_order], in_ptr),
            first_out=_segment(np.minimum, first, out_ptr),
            last_out=_segment(np.maximum, last, out_ptr),
            one_off_in=np.bincount(dst[cnt == 1], minlength=n).astype(np.int64),
            scratch=np.zeros(n, dtype=bool),
        )

    def are_friends(self, a: IntArray, b: IntArray) -> npt.NDArray[np.bool_]:
        """Whether each (a, b) pair is a social link."""
        key = np.minimum(a, b) * self.n + np.maximum(a, b)
        if len(self.friend_keys) == 0:
            return np.zeros(len(key), dtype=bool)
        pos = np.minimum(np.searchsorted(self.friend_keys, key), len(self.friend_keys) - 1)
        return np.asarray(self.friend_keys[pos] == key)

    def out_pairs(self, v: int) -> IntArray:
        """Positions of ``v``'s outgoing pairs."""
        return np.arange(self.out_ptr[v], self.out_ptr[v + 1])

    def in_pairs(self, v: int) -> IntArray:
        """Positions of ``v``'s incoming pairs."""
        return self.in_order[self.in_ptr[v] : self.in_ptr[v + 1]]

    def internal_pairs(self, members: IntArray) -> IntArray:
        """Positions of transfer pairs with both ends in ``members`` (sorted, unique)."""
        if len(members) == 0:
            return members
        out = _ranges(self.out_ptr[members], self.out_ptr[members + 1])
        mask = self.scratch
        mask[members] = True
        try:
            return out[mask[self.dst[out]]]
        finally:
            mask[members] = False

    def internal_links(self, members: IntArray) -> IntArray:
        """Positions of shared-identifier links with both ends in ``members``."""
        if len(members) == 0 or len(self.link_a) == 0:
            return members[:0]
        pos = self.link_pos[_ranges(self.link_ptr[members], self.link_ptr[members + 1])]
        mask = self.scratch
        mask[members] = True
        try:
            return np.unique(pos[mask[self.link_a[pos]] & mask[self.link_b[pos]]])
        finally:
            mask[members] = False


def _ranges(starts: IntArray, stops: IntArray) -> IntArray:
    """The concatenation of ``arange(start, stop)`` for each pair, without a Python loop."""
    lens = stops - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lens) + lens, lens)
    return np.asarray(offsets + np.arange(total), dtype=np.int64)
