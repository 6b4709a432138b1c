"""Assemble a ``Snapshot`` from rows streamed by a backend; both backends share this code so
that the same graph gives the same arrays whichever store holds it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from creditgraph.domain import TRANSFER, EdgeSet, Snapshot, index_of

_LABEL_CODE = {"legit": 0, "fraud": 1}


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
        self._transfers: list[tuple[int, int, int, float, float, float]] = []
        self._links: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def set_labels(self, rows: Iterable[tuple[str, str]]) -> None:
        for account_id, label in rows:
            self.labels[self._index[account_id]] = _LABEL_CODE[label]

    def add_transfers(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of (src, dst, count, total_amount, first_ts, last_ts), one per ordered pair."""
        ix = self._index
        self._transfers.extend(
            (ix[s], ix[d], int(n), float(t), float(f), float(la)) for s, d, n, t, f, la in rows
        )

    def add_links(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of (src, dst, type) with ``src < dst``."""
        ix = self._index
        for s, d, t in rows:
            self._links[t].append((ix[s], ix[d]))

    def build(self) -> Snapshot:
        edges: dict[str, EdgeSet] = {}
        tr = sorted(self._transfers)
        arr = np.array(tr, dtype=np.float64).reshape(len(tr), 6)
        edges[TRANSFER] = EdgeSet(
            relation=TRANSFER,
            directed=True,
            src=arr[:, 0].astype(np.int64),
            dst=arr[:, 1].astype(np.int64),
            count=arr[:, 2].astype(np.int64),
            total_amount=arr[:, 3].copy(),
            first_ts=arr[:, 4].copy(),
            last_ts=arr[:, 5].copy(),
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
        )
