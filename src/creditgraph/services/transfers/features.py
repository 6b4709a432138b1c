"""Causal features of single transfers: what existed before each transfer, nothing after.

Two doors, one definition:

- ``batch_features(log, rows, context)`` computes the features of the log's transfers at
  ``rows`` from the log's earlier rows only, vectorised (sort by account and time, cumulative
  sums and ``searchsorted`` window counts), so training over ten million transfers is numpy
  work, not a Python loop;
- ``HistoryState`` holds the same aggregates after the whole log (per-account counts, sums,
  maxima, log-amount moments, the last day's timestamps, per-pair counts), built vectorised
  at load and updated incrementally on ingest, so ``HistoryState.features`` answers a
  request in microseconds without scanning anyone's history.

``tests/unit/test_transfer_features.py`` checks that both give the same numbers.

Pair evidence that is a relationship rather than an event (friends, identity links, common
friends, detected rings) comes from ``PairContext``, built from the snapshot's links and the
stored rings: links are not time-stamped reliably, so they count as known before.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from creditgraph.domain import FRIEND, TRANSFER, Ring, Snapshot
from creditgraph.outcomes import TransferLog

F64 = np.ndarray[Any, np.dtype[np.float64]]
I64 = np.ndarray[Any, np.dtype[np.int64]]

HOUR = 3600.0
DAY = 86400.0
#: A sender younger than this (or with no earlier transfer) is a new account.
NEW_ACCOUNT_S = 7 * DAY

#: The numeric features, in the model's column order; categorical ones follow them.
NUMERIC: tuple[str, ...] = (
    "log_amount",
    "hour_of_day",
    "s_out_count",
    "s_amount_over_mean",
    "s_amount_over_max",
    "s_amount_z",
    "s_out_1h",
    "s_out_24h",
    "s_in_count",
    "s_age_days",
    "r_in_count",
    "r_amount_over_in_mean",
    "r_amount_over_in_max",
    "r_in_1h",
    "r_in_24h",
    "r_new_payers_1h",
    "r_out_count",
    "r_age_days",
    "pair_earlier",
    "pair_reverse",
    "first_to_receiver",
    "friends",
    "identity_links",
    "common_friends",
    "same_ring",
    "r_ring_score",
    "s_fraud_p",
    "r_fraud_p",
)
_COL = {name: j for j, name in enumerate(NUMERIC)}


def _ratio(a: F64, b: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F64 = np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)
    return out


@dataclass
class PairContext:
    """Relationship evidence and account scores, keyed by account id."""

    friends: dict[str, set[str]] = field(default_factory=dict)
    identity: dict[tuple[str, str], int] = field(default_factory=dict)
    rings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    fraud_p: Mapping[str, float] = field(default_factory=dict)
    created_at: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def build(
        cls, snapshot: Snapshot, rings: Sequence[Ring], fraud_p: Mapping[str, float]
    ) -> PairContext:
        ids = snapshot.account_ids
        friends: dict[str, set[str]] = defaultdict(set)
        identity: dict[tuple[str, str], int] = defaultdict(int)
        for rel, es in snapshot.edges.items():
            if rel == TRANSFER:
                continue
            for a, b in zip(es.src.tolist(), es.dst.tolist(), strict=True):
                x, y = ids[a], ids[b]
                if rel == FRIEND:
                    friends[x].add(y)
                    friends[y].add(x)
                else:
                    identity[(x, y) if x <= y else (y, x)] += 1
        by_account: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for r in rings:
            if r.status == "dismissed":
                continue
            for m in r.members:
                by_account[m].append((r.ring_id, float(r.score)))
        created = {
            a: float(c) for a, c in zip(ids, snapshot.created_at.tolist(), strict=True) if c == c
        }
        return cls(dict(friends), dict(identity), dict(by_account), fraud_p, created)

    def pair(self, src: str, dst: str) -> tuple[float, float, float, float, float]:
        """(friends, identity links, common friends, same ring, receiver's ring score)."""
        fs, fd = self.friends.get(src, _EMPTY), self.friends.get(dst, _EMPTY)
        key = (src, dst) if src <= dst else (dst, src)
        rs = {r for r, _ in self.rings.get(src, ())}
        rd = self.rings.get(dst, [])
        return (
            float(dst in fs),
            float(self.identity.get(key, 0)),
            float(len(fs & fd) if len(fs) < len(fd) else len(fd & fs)),
            float(any(r in rs for r, _ in rd)),
            max((s for _, s in rd), default=0.0),
        )


_EMPTY: set[str] = set()


@dataclass(frozen=True)
class FeatureRows:
    """Features of some transfers: numeric matrix plus raw categorical text columns."""

    numeric: F64
    categorical: dict[str, list[str | None]]


def categorical_columns(log: TransferLog) -> list[str]:
    """``channel`` plus every property name that appears in the log, sorted."""
    names = sorted({k for p in log.properties for k in p})
    return ["channel", *names]


_SHIFT = 35  # 2**35 seconds: a thousand years of whole seconds under each group's rank


def _seconds(ts: F64) -> I64:
    out: I64 = np.floor(ts - _T0).astype(np.int64)
    return out


_T0 = 946_684_800.0  # 2000-01-01: keeps relative seconds positive for any plausible log


class _Grouped:
    """The log sorted by (group, time, position): prefix sums and window counts per row.

    Windows compare whole seconds: an event counts as earlier when its second is."""

    def __init__(self, group: I64, ts: F64) -> None:
        n = len(group)
        self.uniq, rank = np.unique(group, return_inverse=True)
        self.order = np.lexsort((np.arange(n), ts, rank))
        self.pos = np.empty(n, np.int64)
        self.pos[self.order] = np.arange(n)
        r = rank[self.order]
        starts = np.r_[True, r[1:] != r[:-1]] if n else np.zeros(0, bool)
        start_idx = np.flatnonzero(starts)
        self.first = start_idx[np.cumsum(starts) - 1] if n else np.zeros(0, np.int64)
        self._rank = r
        self.key = (r.astype(np.int64) << _SHIFT) + _seconds(ts[self.order])

    def prior_count(self, rows: I64) -> I64:
        """Earlier events of the same group (by sort order) for log rows ``rows``."""
        p = self.pos[rows]
        out: I64 = p - self.first[p]
        return out

    def prefix(self, values: F64) -> F64:
        """Cumulative sums in sorted order with a leading 0 (length n + 1)."""
        out: F64 = np.r_[0.0, np.cumsum(values[self.order])]
        return out

    def prior_sum(self, csum: F64, rows: I64) -> F64:
        p = self.pos[rows]
        out: F64 = csum[p] - csum[self.first[p]]
        return out

    def window(self, rows: I64, width: float, csum: F64 | None = None) -> F64:
        """Events of the same group in the ``width`` seconds strictly before each row's
        second, counted, or summed over ``csum``'s values."""
        key = self.key[self.pos[rows]]
        lo = np.searchsorted(self.key, key - int(width), side="right")
        hi = np.searchsorted(self.key, key, side="left")
        if csum is None:
            return (hi - lo).astype(np.float64)
        out: F64 = csum[hi] - csum[lo]
        return out

    def count_before(self, group: I64, ts: F64) -> F64:
        """Events of group ``group[k]`` in a second strictly before ``ts[k]``."""
        at = np.searchsorted(self.uniq, group)
        found = (at < len(self.uniq)) & (self.uniq[np.minimum(at, len(self.uniq) - 1)] == group)
        key = (at.astype(np.int64) << _SHIFT) + _seconds(ts)
        start = np.searchsorted(self.key, at.astype(np.int64) << _SHIFT, side="left")
        hi = np.searchsorted(self.key, key, side="left")
        out: F64 = np.where(found, hi - start, 0).astype(np.float64)
        return out

    def prior_max(self, values: F64, rows: I64) -> F64:
        """Largest earlier value of the same group (NaN when none); ``values`` >= 0."""
        v = np.log1p(np.minimum(values[self.order], 1e300))
        # Offsetting each group above every earlier one makes one running max per group.
        off = self._rank.astype(np.float64) * 1000.0
        run = np.maximum.accumulate(off + v) - off
        p = self.pos[rows]
        prev = np.where(p > self.first[p], run[np.maximum(p - 1, 0)], np.nan)
        out: F64 = np.expm1(prev)
        return out


def _index(ids: Sequence[str]) -> tuple[dict[str, int], I64]:
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(a, len(index)) for a in ids), np.int64, len(ids))
    return index, codes


def batch_features(log: TransferLog, rows: I64, context: PairContext) -> FeatureRows:
    """Features of ``log``'s transfers at ``rows``, each from the log's earlier rows only."""
    rows = np.asarray(rows, np.int64)
    index, src = _index(log.src)
    dst = np.fromiter((index.setdefault(a, len(index)) for a in log.dst), np.int64, len(log))
    n_acc = len(index)
    amount, ts = log.amount, log.ts
    la = np.log1p(np.minimum(amount, 1e300))
    out = np.full((len(rows), len(NUMERIC)), np.nan)
    col = _COL
    a, t = amount[rows], ts[rows]
    out[:, col["log_amount"]] = la[rows]
    out[:, col["hour_of_day"]] = (t % DAY) / HOUR

    by_src = _Grouped(src, ts)
    s_count = by_src.prior_count(rows).astype(np.float64)
    s_sum = by_src.prior_sum(by_src.prefix(amount), rows)
    s_lsum = by_src.prior_sum(by_src.prefix(la), rows)
    s_lsq = by_src.prior_sum(by_src.prefix(la * la), rows)
    out[:, col["s_out_count"]] = s_count
    out[:, col["s_amount_over_mean"]] = _ratio(a, _ratio(s_sum, s_count))
    out[:, col["s_amount_over_max"]] = _ratio(a, by_src.prior_max(amount, rows))
    out[:, col["s_amount_z"]] = _zscore(la[rows], s_count, s_lsum, s_lsq)
    out[:, col["s_out_1h"]] = by_src.window(rows, HOUR)
    out[:, col["s_out_24h"]] = by_src.window(rows, DAY)

    by_dst = _Grouped(dst, ts)
    r_count = by_dst.prior_count(rows).astype(np.float64)
    r_sum = by_dst.prior_sum(by_dst.prefix(amount), rows)
    out[:, col["r_in_count"]] = r_count
    out[:, col["r_amount_over_in_mean"]] = _ratio(a, _ratio(r_sum, r_count))
    out[:, col["r_amount_over_in_max"]] = _ratio(a, by_dst.prior_max(amount, rows))
    out[:, col["r_in_1h"]] = by_dst.window(rows, HOUR)
    out[:, col["r_in_24h"]] = by_dst.window(rows, DAY)

    # Accounts' first appearance in the log, and their stated creation time when known.
    first_seen = np.full(n_acc, np.inf)
    np.minimum.at(first_seen, src, ts)
    np.minimum.at(first_seen, dst, ts)
    created = first_seen.copy()
    for acc, j in index.items():
        c = context.created_at.get(acc)
        if c is not None:
            created[j] = min(c, created[j])
    all_rows = np.arange(len(log), dtype=np.int64)
    sender_new = ((by_src.prior_count(all_rows) == 0) | (ts - created[src] < NEW_ACCOUNT_S)).astype(
        np.float64
    )
    out[:, col["r_new_payers_1h"]] = by_dst.window(rows, HOUR, by_dst.prefix(sender_new))
    out[:, col["s_age_days"]] = (t - created[src[rows]]) / DAY
    out[:, col["r_age_days"]] = (t - created[dst[rows]]) / DAY

    # The other direction of each account: inflows of the sender, outflows of the receiver.
    out[:, col["s_in_count"]] = by_dst.count_before(src[rows], t)
    out[:, col["r_out_count"]] = by_src.count_before(dst[rows], t)

    pair = src * np.int64(n_acc) + dst
    by_pair = _Grouped(pair, ts)
    fwd = by_pair.prior_count(rows).astype(np.float64)
    out[:, col["pair_earlier"]] = fwd
    out[:, col["pair_reverse"]] = by_pair.count_before(dst[rows] * np.int64(n_acc) + src[rows], t)
    out[:, col["first_to_receiver"]] = (fwd == 0).astype(np.float64)
    _static(out, [log.src[i] for i in rows.tolist()], [log.dst[i] for i in rows.tolist()], context)
    cats = categorical_columns(log)
    categorical = {
        c: (
            [log.channel[i] for i in rows.tolist()]
            if c == "channel"
            else [log.properties[i].get(c) for i in rows.tolist()]
        )
        for c in cats
    }
    return FeatureRows(out, categorical)


def _zscore(x: F64, n: F64, s: F64, sq: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        var = np.maximum(sq / n - mean * mean, 0.0)
        std = np.sqrt(var) + 0.1  # a floor: a sender who always pays 20.00 is not infinitely sure
        out: F64 = np.where(n >= 2, (x - mean) / std, np.nan)
    return out


def _static(out: F64, src: Sequence[str], dst: Sequence[str], ctx: PairContext) -> None:
    col = _COL
    for k, (s, d) in enumerate(zip(src, dst, strict=True)):
        f, idl, cf, same, ring = ctx.pair(s, d)
        out[k, col["friends"]] = f
        out[k, col["identity_links"]] = idl
        out[k, col["common_friends"]] = cf
        out[k, col["same_ring"]] = same
        out[k, col["r_ring_score"]] = ring
        out[k, col["s_fraud_p"]] = ctx.fraud_p.get(s, math.nan)
        out[k, col["r_fraud_p"]] = ctx.fraud_p.get(d, math.nan)


@dataclass
class _Account:
    out_n: int = 0
    out_sum: float = 0.0
    out_max: float = -1.0
    out_lsum: float = 0.0
    out_lsq: float = 0.0
    in_n: int = 0
    in_sum: float = 0.0
    in_max: float = -1.0
    first_seen: float = math.inf
    #: The last day's timestamps (ascending) of outflows, inflows, inflows from new payers.
    out_recent: list[float] = field(default_factory=list)
    in_recent: list[float] = field(default_factory=list)
    new_in_recent: list[float] = field(default_factory=list)


class HistoryState:
    """Per-account and per-pair aggregates after a log, for request-time features."""

    def __init__(self, context: PairContext, categorical: Sequence[str]) -> None:
        self.context = context
        self.categorical = list(categorical)
        self._acc: dict[str, _Account] = {}
        self._pairs: dict[tuple[str, str], int] = defaultdict(int)

    @classmethod
    def from_log(
        cls, log: TransferLog, context: PairContext, categorical: Sequence[str]
    ) -> HistoryState:
        """The state after every transfer of ``log``, built with numpy (a Python loop of
        ``add`` costs minutes at ten million transfers). The last day's timestamps are kept
        relative to the log's end: request-time windows look back from now."""
        state = cls(context, categorical)
        n = len(log)
        if n == 0:
            return state
        index, src = _index(log.src)
        dst = np.fromiter((index.setdefault(a, len(index)) for a in log.dst), np.int64, n)
        m = len(index)
        amount, ts = log.amount, log.ts
        la = np.log1p(np.minimum(amount, 1e300))
        out_n = np.bincount(src, minlength=m)
        out_sum = np.bincount(src, amount, minlength=m)
        out_lsum = np.bincount(src, la, minlength=m)
        out_lsq = np.bincount(src, la * la, minlength=m)
        in_n = np.bincount(dst, minlength=m)
        in_sum = np.bincount(dst, amount, minlength=m)
        out_max = np.full(m, -1.0)
        np.maximum.at(out_max, src, amount)
        in_max = np.full(m, -1.0)
        np.maximum.at(in_max, dst, amount)
        first = np.full(m, np.inf)
        np.minimum.at(first, src, ts)
        np.minimum.at(first, dst, ts)
        created = first.copy()
        for acc, j in index.items():
            c = context.created_at.get(acc)
            if c is not None:
                created[j] = min(c, created[j])
        rows = np.arange(n, dtype=np.int64)
        by_src = _Grouped(src, ts)
        sender_new = (by_src.prior_count(rows) == 0) | (ts - created[src] < NEW_ACCOUNT_S)
        sec = _seconds(ts).astype(np.float64)
        recent = np.flatnonzero(sec > sec.max() - DAY)
        recent = recent[np.lexsort((recent, ts[recent]))]  # time order, then log order
        out_recent: dict[int, list[float]] = defaultdict(list)
        in_recent: dict[int, list[float]] = defaultdict(list)
        new_in: dict[int, list[float]] = defaultdict(list)
        for i in recent.tolist():
            out_recent[int(src[i])].append(float(sec[i]))
            in_recent[int(dst[i])].append(float(sec[i]))
            if sender_new[i]:
                new_in[int(dst[i])].append(float(sec[i]))
        names = list(index)
        for j, acc in enumerate(names):
            state._acc[acc] = _Account(
                out_n=int(out_n[j]),
                out_sum=float(out_sum[j]),
                out_max=float(out_max[j]),
                out_lsum=float(out_lsum[j]),
                out_lsq=float(out_lsq[j]),
                in_n=int(in_n[j]),
                in_sum=float(in_sum[j]),
                in_max=float(in_max[j]),
                first_seen=float(first[j]),
                out_recent=out_recent.get(j, [])[-512:],
                in_recent=in_recent.get(j, [])[-512:],
                new_in_recent=new_in.get(j, [])[-512:],
            )
        keys, counts = np.unique(src * np.int64(m) + dst, return_counts=True)
        for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
            state._pairs[(names[k // m], names[k % m])] = c
        return state

    def _get(self, a: str) -> _Account:
        acc = self._acc.get(a)
        if acc is None:
            acc = self._acc[a] = _Account()
        return acc

    def _created(self, a: str, acc: _Account | None) -> float:
        c = self.context.created_at.get(a, math.inf)
        return min(c, acc.first_seen if acc is not None else math.inf)

    def add(self, src: str, dst: str, amount: float, ts: float) -> None:
        """Record one transfer that happened (after every one recorded so far)."""
        s, d = self._get(src), self._get(dst)
        sender_new = s.out_n == 0 or ts - self._created(src, s) < NEW_ACCOUNT_S
        la = math.log1p(min(amount, 1e300))
        s.out_n += 1
        s.out_sum += amount
        s.out_max = max(s.out_max, amount)
        s.out_lsum += la
        s.out_lsq += la * la
        d.in_n += 1
        d.in_sum += amount
        d.in_max = max(d.in_max, amount)
        s.first_seen = min(s.first_seen, ts)
        d.first_seen = min(d.first_seen, ts)
        sec = float(math.floor(ts - _T0))
        _push(s.out_recent, sec)
        _push(d.in_recent, sec)
        if sender_new:
            _push(d.new_in_recent, sec)
        self._pairs[(src, dst)] += 1

    def features(
        self,
        src: str,
        dst: str,
        amount: float,
        ts: float,
        channel: str | None,
        attributes: Mapping[str, str],
    ) -> FeatureRows:
        """The features of a transfer about to be made at ``ts``."""
        x = np.full((1, len(NUMERIC)), np.nan)
        row = x[0]
        col = _COL
        s, d = self._acc.get(src), self._acc.get(dst)
        la = math.log1p(min(amount, 1e300))
        row[col["log_amount"]] = la
        row[col["hour_of_day"]] = (ts % DAY) / HOUR
        so = s.out_n if s else 0
        row[col["s_out_count"]] = so
        if s is not None and so:
            row[col["s_amount_over_mean"]] = (
                amount / (s.out_sum / so) if s.out_sum > 0 else math.nan
            )
            row[col["s_amount_over_max"]] = amount / s.out_max if s.out_max > 0 else math.nan
            if so >= 2:
                mean = s.out_lsum / so
                std = math.sqrt(max(s.out_lsq / so - mean * mean, 0.0)) + 0.1
                row[col["s_amount_z"]] = (la - mean) / std
        row[col["s_out_1h"]] = _recent(s.out_recent, ts, HOUR) if s else 0.0
        row[col["s_out_24h"]] = _recent(s.out_recent, ts, DAY) if s else 0.0
        row[col["s_in_count"]] = s.in_n if s else 0
        ri = d.in_n if d else 0
        row[col["r_in_count"]] = ri
        if d is not None and ri:
            row[col["r_amount_over_in_mean"]] = (
                amount / (d.in_sum / ri) if d.in_sum > 0 else math.nan
            )
            row[col["r_amount_over_in_max"]] = amount / d.in_max if d.in_max > 0 else math.nan
        row[col["r_in_1h"]] = _recent(d.in_recent, ts, HOUR) if d else 0.0
        row[col["r_in_24h"]] = _recent(d.in_recent, ts, DAY) if d else 0.0
        row[col["r_new_payers_1h"]] = _recent(d.new_in_recent, ts, HOUR) if d else 0.0
        row[col["r_out_count"]] = d.out_n if d else 0
        row[col["s_age_days"]] = (ts - min(self._created(src, s), ts)) / DAY
        row[col["r_age_days"]] = (ts - min(self._created(dst, d), ts)) / DAY
        fwd = self._pairs.get((src, dst), 0)
        row[col["pair_earlier"]] = fwd
        row[col["pair_reverse"]] = self._pairs.get((dst, src), 0)
        row[col["first_to_receiver"]] = float(fwd == 0)
        _static(x, [src], [dst], self.context)
        cats = {c: [channel if c == "channel" else attributes.get(c)] for c in self.categorical}
        return FeatureRows(x, cats)


def _push(recent: list[float], ts: float) -> None:
    recent.append(ts)
    if len(recent) > 64 and recent[0] < ts - DAY:
        # Keep the last day (plus whatever the cap of 512 leaves): amortised O(1) per event.
        cut = 0
        while cut < len(recent) and recent[cut] <= ts - DAY:
            cut += 1
        del recent[:cut]
    if len(recent) > 512:
        del recent[: len(recent) - 512]


def _recent(recent: list[float], ts: float, width: float) -> float:
    """Events in the ``width`` seconds strictly before ``ts``'s second (as ``_Grouped``)."""
    sec = math.floor(ts - _T0)
    lo = bisect.bisect_right(recent, sec - width)
    hi = bisect.bisect_left(recent, sec)
    return float(max(hi - lo, 0))
