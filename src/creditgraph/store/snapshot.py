"""Assemble a ``Snapshot`` from rows streamed by a backend; both backends share this code so
that the same graph gives the same arrays whichever store holds it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from creditgraph.domain import TRANSFER, EdgeSet, FloatArray, IntArray, Snapshot, index_of

_LABEL_CODE = {"legit": 0, "fraud": 1}
# Per ordered pair: src index, dst index, count, total amount, first ts, last ts.
_Pairs = tuple[IntArray, IntArray, IntArray, FloatArray, FloatArray, FloatArray]


def _pairs_from_columns(*cols: Sequence[Any]) -> _Pairs:
    s, d, n, total, first, last = cols
    return (
        np.asarray(s, dtype=np.int64),
        np.asarray(d, dtype=np.int64),
        np.asarray(n, dtype=np.int64),
        np.asarray(total, dtype=np.float64),
        np.asarray(first, dtype=np.float64),
        np.asarray(last, dtype=np.float64),
    )


class SnapshotBuilder:
    """Accounts first (any order; they are sorted by id), then labels and edges."""

    def __init__(
        self,
        account_ids: Sequence[str],
        created_at: Sequence[float | None],
        features: Sequence[Mapping[str, float]],
    ) -> None:
        order = sorted(range(len(account_ids)), key=account_ids.__getitem__)
        self.account_ids = [account_ids[i] for i in order]
        self._index = index_of(self.account_ids)
        self.feature_names = sorted({k for f in features for k in f})
        col = {name: j for j, name in enumerate(self.feature_names)}
        self.features = np.full((len(order), len(self.feature_names)), np.nan)
        for row, i in enumerate(order):
            for k, v in features[i].items():
                self.features[row, col[k]] = v
        self.created_at = np.array(
            [np.nan if created_at[i] is None else created_at[i] for i in order], dtype=np.float64
        )
        self.labels = np.full(len(order), -1, dtype=np.int8)
        self._pairs: list[_Pairs] = []
        self._links: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def set_labels(self, rows: Iterable[tuple[str, str]]) -> None:
        for account_id, label in rows:
            self.labels[self._index[account_id]] = _LABEL_CODE[label]

    def add_transfers(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of (src, dst, count, total_amount, first_ts, last_ts), one per ordered pair."""
        ix = self._index
        cols: list[list[Any]] = [[], [], [], [], [], []]
        for s, d, n, t, f, la in rows:
            for col, v in zip(cols, (ix[s], ix[d], n, t, f, la), strict=True):
                col.append(v)
        self._pairs.append(_pairs_from_columns(*cols))

    def add_raw_transfers(
        self,
        src: Sequence[str],
        dst: Sequence[str],
        amount: Sequence[float],
        ts: Sequence[float],
    ) -> None:
        """One row per transfer; aggregated here per ordered pair with numpy."""
        ix = self._index
        s = np.fromiter((ix[a] for a in src), dtype=np.int64, count=len(src))
        d = np.fromiter((ix[a] for a in dst), dtype=np.int64, count=len(dst))
        amt = np.asarray(amount, dtype=np.float64)
        t = np.asarray(ts, dtype=np.float64)
        if len(s) == 0:
            return
        order = np.lexsort((d, s))
        s, d, amt, t = s[order], d[order], amt[order], t[order]
        starts = np.flatnonzero(np.r_[True, (s[1:] != s[:-1]) | (d[1:] != d[:-1])])
        self._pairs.append(
            (
                s[starts],
                d[starts],
                np.diff(np.r_[starts, len(s)]).astype(np.int64),
                np.add.reduceat(amt, starts),
                np.minimum.reduceat(t, starts),
                np.maximum.reduceat(t, starts),
            )
        )

    def add_links(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of (src, dst, type) with ``src < dst``."""
        ix = self._index
        for s, d, t in rows:
            self._links[t].append((ix[s], ix[d]))

    def build(self, revision: str | None = None) -> Snapshot:
        edges: dict[str, EdgeSet] = {}
        parts = self._pairs or [_pairs_from_columns([], [], [], [], [], [])]
        s, d, n, total, first, last = (np.concatenate(c) for c in zip(*parts, strict=True))
        order = np.lexsort((d, s))
        edges[TRANSFER] = EdgeSet(
            relation=TRANSFER,
            directed=True,
            src=s[order],
            dst=d[order],
            count=n[order],
            total_amount=total[order],
            first_ts=first[order],
            last_ts=last[order],
        )
        for rel in sorted(self._links):
            pairs = np.array(sorted(self._links[rel]), dtype=np.int64).reshape(-1, 2)
            edges[rel] = EdgeSet(
                relation=rel, directed=False, src=pairs[:, 0].copy(), dst=pairs[:, 1].copy()
            )
        return Snapshot(
            account_ids=self.account_ids,
            feature_names=self.feature_names,
            features=self.features,
            created_at=self.created_at,
            labels=self.labels,
            edges=edges,
            revision=revision,
        )
