"""The transfer model's serving state in arrays: ``ColumnarHistory`` and ``ColumnarPairs``.

The same request-time features as ``features.HistoryState`` over ``features.PairContext``
(the reference, fed transfer by transfer; ``tests/unit/test_transfer_columnar.py`` checks
both give the same numbers), built from ``GraphStore.transfer_arrays`` and the snapshot's
link arrays without a Python object per transfer, account or pair:

- per account (by code, the snapshot's order first): counts, sums, maxima and log-amount
  moments of outflows and inflows, and the time it was first seen or created, as arrays;
- the last day's event seconds per account (outflows, inflows, inflows from new payers) as
  CSR arrays (offsets plus one value array, each account's slice ascending, capped at the
  last 512 as the reference);
- per ordered pair, the transfer count as sorted ``src << 32 | dst`` keys with counts;
- friends as a CSR adjacency of sorted codes, identity links as sorted pair keys.

``add`` (HTTP ingest) updates the arrays in place; the recent-events lists of an account an
ingest touched move into a small dict (copied from its CSR slice on first touch), new pairs
into another, accounts never seen before get the next codes (arrays grow by doubling).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from creditgraph.domain import FRIEND, TRANSFER, Ring, Snapshot
from creditgraph.outcomes import TransferArrays
from creditgraph.services.transfers.features import (
    _T0,
    DAY,
    F64,
    HOUR,
    I64,
    NEW_ACCOUNT_S,
    FeatureRows,
    _push,
    _seconds,
)

#: Per-account recent-events lists keep at most this many (as ``features._push``).
RECENT_CAP = 512
_PAIR_SHIFT = np.int64(32)


def _f64(x: Any) -> F64:
    out: F64 = np.asarray(x, np.float64)
    return out


def _csr(group: I64, values: F64, m: int, cap: int) -> tuple[I64, F64]:
    """Offsets (m + 1) and values of ``values`` grouped by ``group`` (stable: each group's
    values keep their order), keeping each group's last ``cap``."""
    order = np.argsort(group, kind="stable")
    g, v = group[order], values[order]
    counts = np.bincount(g, minlength=m)
    ends = np.cumsum(counts)
    # Position from each group's end: keep the last ``cap`` of each.
    from_end = ends[g] - np.arange(len(g)) - 1
    keep = from_end < cap
    g, v = g[keep], v[keep]
    ptr: I64 = np.zeros(m + 1, np.int64)
    np.cumsum(np.bincount(g, minlength=m), out=ptr[1:])
    return ptr, v


def _window(seq: Any, sec: float) -> tuple[float, float, float]:
    """Events in the hour and the day strictly before second ``sec``, and the count in the
    hour for the same list: (1 h, 24 h) from one ascending list of whole seconds."""
    hi = bisect.bisect_left(seq, sec)
    lo_h = bisect.bisect_right(seq, sec - HOUR)
    lo_d = bisect.bisect_right(seq, sec - DAY)
    return float(max(hi - lo_h, 0)), float(max(hi - lo_d, 0)), float(hi)


def _common(a: I64, b: I64) -> int:
    """How many ids two sorted lists of unique ids share. Short lists through Python sets;
    with a hub's list (thousands of friends) the short side is looked up in the long one,
    O(short x log long), instead of building a set of the hub's whole list per request."""
    if len(a) > len(b):
        a, b = b, a
    if not len(a):
        return 0
    if len(b) < _SET_LIMIT:
        return len(set(a.tolist()).intersection(b.tolist()))
    at = b.searchsorted(a)
    at[at == len(b)] = 0  # past the end: compared with b[0], which is smaller, so no match
    return int(np.count_nonzero(b[at] == a))


#: The longer list's length from which ``_common`` searches instead of building sets.
_SET_LIMIT = 64


class ColumnarPairs:
    """Relationship evidence and account scores in arrays; ``pair`` as ``PairContext.pair``."""

    def __init__(
        self,
        index: dict[str, int],
        friend_ptr: I64,
        friend_nbr: I64,
        identity_keys: I64,
        identity_counts: I64,
        rings: dict[str, list[tuple[str, float]]],
        fraud_p: Mapping[str, float],
    ) -> None:
        self.index = index
        self.friend_ptr = friend_ptr
        self.friend_nbr = friend_nbr
        self.identity_keys = identity_keys
        self.identity_counts = identity_counts
        self.rings = rings
        self.fraud_p = fraud_p

    @classmethod
    def build(
        cls,
        snapshot: Snapshot,
        rings: Sequence[Ring],
        fraud_p: Mapping[str, float],
        index: dict[str, int],
    ) -> ColumnarPairs:
        """From the snapshot's link arrays; ``index`` codes the snapshot's accounts by
        position (and may hold more after them: the log's accounts the snapshot lacks)."""
        m = snapshot.num_accounts
        fa: list[I64] = []
        fb: list[I64] = []
        ia: list[I64] = []
        ib: list[I64] = []
        for rel, es in snapshot.edges.items():
            if rel == TRANSFER:
                continue
            a, b = es.src.astype(np.int64), es.dst.astype(np.int64)
            if rel == FRIEND:
                fa += [a, b]
                fb += [b, a]
            else:
                ia.append(np.minimum(a, b))
                ib.append(np.maximum(a, b))
        src = np.concatenate(fa) if fa else np.zeros(0, np.int64)
        nbr = np.concatenate(fb) if fb else np.zeros(0, np.int64)
        # Unique neighbours, sorted within each account: one sort of the pair keys.
        keys = np.sort((src << _PAIR_SHIFT) | nbr)
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
        src, nbr = keys >> _PAIR_SHIFT, keys & np.int64(0xFFFFFFFF)
        ptr: I64 = np.zeros(m + 1, np.int64)
        np.cumsum(np.bincount(src, minlength=m), out=ptr[1:])
        ikeys = (
            (np.concatenate(ia) << _PAIR_SHIFT) | np.concatenate(ib)
            if ia
            else np.zeros(0, np.int64)
        )
        ukeys, icounts = np.unique(ikeys, return_counts=True)
        by_account: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for r in rings:
            if r.status == "dismissed":
                continue
            for member in r.members:
                by_account[member].append((r.ring_id, float(r.score)))
        return cls(index, ptr, nbr, ukeys, icounts.astype(np.int64), dict(by_account), fraud_p)

    def _friends(self, code: int | None) -> I64:
        if code is None or code + 1 >= len(self.friend_ptr):
            return self.friend_nbr[:0]
        out: I64 = self.friend_nbr[self.friend_ptr[code] : self.friend_ptr[code + 1]]
        return out

    def pair(self, src: str, dst: str) -> tuple[float, float, float, float, float]:
        """(friends, identity links, common friends, same ring, receiver's ring score)."""
        i, j = self.index.get(src), self.index.get(dst)
        fs, fd = self._friends(i), self._friends(j)
        friends = 0.0
        identity = 0.0
        if i is not None and j is not None:
            k = int(fs.searchsorted(j))
            friends = float(k < len(fs) and int(fs[k]) == j)
            key = (min(i, j) << 32) | max(i, j)
            at = int(self.identity_keys.searchsorted(key))
            if at < len(self.identity_keys) and int(self.identity_keys[at]) == key:
                identity = float(self.identity_counts[at])
        common = float(_common(fs, fd))
        rs = {r for r, _ in self.rings.get(src, ())}
        rd = self.rings.get(dst, [])
        return (
            friends,
            identity,
            common,
            float(any(r in rs for r, _ in rd)),
            max((s for _, s in rd), default=0.0),
        )


class ColumnarHistory:
    """Per-account and per-pair aggregates after the stored log, in arrays (module doc)."""

    _FIELDS: ClassVar[dict[str, float]] = {
        "out_n": 0.0,
        "out_sum": 0.0,
        "out_max": -1.0,
        "out_lsum": 0.0,
        "out_lsq": 0.0,
        "in_n": 0.0,
        "in_sum": 0.0,
        "in_max": -1.0,
        "created": math.inf,
    }

    def __init__(
        self,
        context: ColumnarPairs,
        categorical: Sequence[str],
        account_ids: list[str],
        index: dict[str, int],
        arrays: dict[str, F64],
        recent: dict[str, tuple[I64, F64]],
        pair_keys: I64,
        pair_counts: I64,
    ) -> None:
        self.context = context
        self.categorical = list(categorical)
        self.account_ids = account_ids
        self.index = index
        self._a = arrays
        self._recent = recent
        self._pair_keys = pair_keys
        self._pair_counts = pair_counts
        #: Recent-events lists of accounts touched since the build, by (kind, code).
        self._live: dict[tuple[str, int], list[float]] = {}
        #: Transfers per ordered pair recorded since the build.
        self._pairs_live: dict[int, int] = defaultdict(int)

    @classmethod
    def build(
        cls,
        arrays: TransferArrays,
        context: ColumnarPairs,
        categorical: Sequence[str],
        created_at: F64,
    ) -> ColumnarHistory:
        """The state after every transfer of ``arrays``; ``created_at`` (NaN: unknown) per
        code of ``arrays.account_ids``' first ``len(created_at)`` (the snapshot's)."""
        ids = list(arrays.account_ids)
        m = len(ids)
        index = context.index  # shared: codes the history adds are the pairs' codes too
        if len(index) != m:
            raise ValueError("the pair context is not coded like the transfer arrays")
        src, dst, amount, ts = arrays.src, arrays.dst, arrays.amount, arrays.ts
        la = np.log1p(np.minimum(amount, 1e300))
        a: dict[str, F64] = {
            "out_n": np.bincount(src, minlength=m).astype(np.float64),
            "out_sum": _f64(np.bincount(src, amount, minlength=m)),
            "out_lsum": _f64(np.bincount(src, la, minlength=m)),
            "out_lsq": _f64(np.bincount(src, la * la, minlength=m)),
            "in_n": np.bincount(dst, minlength=m).astype(np.float64),
            "in_sum": _f64(np.bincount(dst, amount, minlength=m)),
            "out_max": np.full(m, -1.0),
            "in_max": np.full(m, -1.0),
        }
        np.maximum.at(a["out_max"], src, amount)
        np.maximum.at(a["in_max"], dst, amount)
        first = np.full(m, np.inf)
        np.minimum.at(first, src, ts)
        np.minimum.at(first, dst, ts)
        created = first.copy()
        c = np.asarray(created_at, np.float64)[:m]
        known = ~np.isnan(c)
        created[: len(c)][known] = np.minimum(c[known], created[: len(c)][known])
        a["created"] = created
        recent: dict[str, tuple[I64, F64]] = {}
        n = len(src)
        if n:
            # A sender's first outflow in log order, or a young sender: a new payer.
            first_out = np.zeros(n, bool)
            first_out[np.unique(src, return_index=True)[1]] = True
            sender_new = first_out | (ts - created[src] < NEW_ACCOUNT_S)
            sec = _seconds(ts).astype(np.float64)
            rows = np.flatnonzero(sec > sec.max() - DAY)  # log order is time order
            rsec = sec[rows]
            recent["out"] = _csr(src[rows], rsec, m, RECENT_CAP)
            recent["in"] = _csr(dst[rows], rsec, m, RECENT_CAP)
            new = sender_new[rows]
            recent["new_in"] = _csr(dst[rows][new], rsec[new], m, RECENT_CAP)
            keys, counts = np.unique((src << _PAIR_SHIFT) | dst, return_counts=True)
        else:
            empty = (np.zeros(m + 1, np.int64), np.zeros(0))
            recent = {"out": empty, "in": empty, "new_in": empty}
            keys, counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
        return cls(context, categorical, ids, index, a, recent, keys, counts.astype(np.int64))

    # -- reading ---------------------------------------------------------------------------------
    def _seq(self, kind: str, code: int | None) -> Any:
        """The ascending recent-event seconds of ``kind`` for ``code`` (list or array)."""
        if code is None:
            return ()
        live = self._live.get((kind, code))
        if live is not None:
            return live
        ptr, values = self._recent[kind]
        if code + 1 >= len(ptr):
            return ()
        return values[ptr[code] : ptr[code + 1]].tolist()

    def pair_count(self, i: int | None, j: int | None) -> int:
        if i is None or j is None:
            return 0
        key = (i << 32) | j
        at = int(self._pair_keys.searchsorted(key))
        base = (
            int(self._pair_counts[at])
            if at < len(self._pair_keys) and int(self._pair_keys[at]) == key
            else 0
        )
        return base + self._pairs_live.get(key, 0)

    def features(
        self,
        src: str,
        dst: str,
        amount: float,
        ts: float,
        channel: str | None,
        attributes: Mapping[str, str],
    ) -> FeatureRows:
        """The features of a transfer about to be made at ``ts`` (as ``HistoryState``).

        The row is assembled as Python floats in ``NUMERIC`` order and made an array once:
        this runs on every payment request, where item-by-item array writes cost more
        than the arithmetic."""
        nan = math.nan
        i, j = self.index.get(src), self.index.get(dst)
        a = self._a
        la = math.log1p(min(amount, 1e300))
        sec = float(math.floor(ts - _T0))
        s_over_mean = s_over_max = s_z = nan
        if i is not None:
            so = int(a["out_n"][i])
            if so:
                out_sum, out_max = float(a["out_sum"][i]), float(a["out_max"][i])
                mean_out = out_sum / so if out_sum > 0 else nan
                s_over_mean = amount / mean_out
                s_over_max = amount / out_max if out_max > 0 else nan
                if so >= 2:
                    mean = float(a["out_lsum"][i]) / so
                    var = max(float(a["out_lsq"][i]) / so - mean * mean, 0.0)
                    s_z = (la - mean) / (math.sqrt(var) + 0.1)
            s_1h, s_24h, _ = _window(self._seq("out", i), sec)
            s_in = float(a["in_n"][i])
            created_s = float(a["created"][i])
        else:
            so, s_1h, s_24h, s_in, created_s = 0, 0.0, 0.0, 0.0, math.inf
        r_over_mean = r_over_max = nan
        if j is not None:
            ri = int(a["in_n"][j])
            if ri:
                in_sum, in_max = float(a["in_sum"][j]), float(a["in_max"][j])
                mean_in = in_sum / ri if in_sum > 0 else nan
                r_over_mean = amount / mean_in
                r_over_max = amount / in_max if in_max > 0 else nan
            r_1h, r_24h, _ = _window(self._seq("in", j), sec)
            r_new = _window(self._seq("new_in", j), sec)[0]
            r_out = float(a["out_n"][j])
            created_r = float(a["created"][j])
        else:
            ri, r_1h, r_24h, r_new, r_out, created_r = 0, 0.0, 0.0, 0.0, 0.0, math.inf
        fwd = self.pair_count(i, j)
        ctx = self.context
        f, idl, cf, same, ring = ctx.pair(src, dst)
        fraud_p = ctx.fraud_p
        x = np.array(
            [
                [
                    la,
                    (ts % DAY) / HOUR,
                    so,
                    s_over_mean,
                    s_over_max,
                    s_z,
                    s_1h,
                    s_24h,
                    s_in,
                    (ts - min(created_s, ts)) / DAY,
                    ri,
                    r_over_mean,
                    r_over_max,
                    r_1h,
                    r_24h,
                    r_new,
                    r_out,
                    (ts - min(created_r, ts)) / DAY,
                    fwd,
                    self.pair_count(j, i),
                    float(fwd == 0),
                    f,
                    idl,
                    cf,
                    same,
                    ring,
                    fraud_p.get(src, nan),
                    fraud_p.get(dst, nan),
                ]
            ],
            dtype=np.float64,
        )
        cats = {c: [channel if c == "channel" else attributes.get(c)] for c in self.categorical}
        return FeatureRows(x, cats)

    # -- recording -------------------------------------------------------------------------------
    def _code(self, account_id: str) -> int:
        c = self.index.get(account_id)
        if c is not None:
            return c
        c = len(self.account_ids)
        size = len(self._a["out_n"])
        if c >= size:
            grow = max(size, 1024)
            for name, fill in self._FIELDS.items():
                self._a[name] = np.concatenate([self._a[name], np.full(grow, fill)])
        # Published last: a request reading concurrently never sees a code without its rows.
        self.account_ids.append(account_id)
        self.index[account_id] = c
        return c

    def _push(self, kind: str, code: int, sec: float) -> None:
        live = self._live.get((kind, code))
        if live is None:
            live = self._live[(kind, code)] = list(self._seq(kind, code))
        _push(live, sec)

    def add(self, src: str, dst: str, amount: float, ts: float) -> None:
        """Record one transfer that happened (after every one recorded so far)."""
        i, j = self._code(src), self._code(dst)
        a = self._a
        sender_new = a["out_n"][i] == 0 or ts - float(a["created"][i]) < NEW_ACCOUNT_S
        la = math.log1p(min(amount, 1e300))
        a["out_n"][i] += 1
        a["out_sum"][i] += amount
        a["out_max"][i] = max(float(a["out_max"][i]), amount)
        a["out_lsum"][i] += la
        a["out_lsq"][i] += la * la
        a["in_n"][j] += 1
        a["in_sum"][j] += amount
        a["in_max"][j] = max(float(a["in_max"][j]), amount)
        a["created"][i] = min(float(a["created"][i]), ts)
        a["created"][j] = min(float(a["created"][j]), ts)
        sec = float(math.floor(ts - _T0))
        self._push("out", i, sec)
        self._push("in", j, sec)
        if sender_new:
            self._push("new_in", j, sec)
        self._pairs_live[(i << 32) | j] += 1

    @property
    def transfers(self) -> int:
        """Transfers the state holds (the log's plus those recorded since)."""
        return int(self._a["out_n"].sum())
