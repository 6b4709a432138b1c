"""Snapshot → node features and typed edge tensors, plus the fitted ``Standardizer``.

Relations: an undirected link type keeps its name and gets both directions; a directed
relation (``TRANSFER``) becomes two relations, ``<REL>_out`` (the accounts it pays, each
receiving node summarising its payees) and ``<REL>_in`` (its payers), so "who I pay" and
"who pays me" have separate weights in the model. Transfer edges weigh ``log1p(count)``
(repeated payments are stronger ties); link edges weigh 1. Self-loops are dropped.

Features are kept in natural units (counts, euros, days) so that explanations can quote
them; the ``Standardizer`` applies ``log1p`` to the heavy-tailed ones, then robust scaling.
Everything is vectorised numpy (bincount / ufunc.at): no Python loop per account or edge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from creditgraph.domain import EdgeSet, FloatArray, IntArray, Snapshot
from creditgraph.errors import InvalidInput

F32Array = npt.NDArray[np.float32]
DAY = 86_400.0
#: Standardised values are clipped to this many robust units: one outlier cannot saturate
#: the network or dominate gradient-boosted splits.
CLIP = 10.0


@dataclass(frozen=True)
class FeatureSet:
    """Raw node features and per-relation edges of one snapshot.

    ``x`` is ``[n_accounts, n_features]`` float32 in natural units with NaN for missing;
    ``edge_index[rel]`` is ``[2, E]`` int64 with row 0 the neighbour (sender of the message)
    and row 1 the account receiving it; ``edge_weight[rel]`` is ``[E]`` float32.
    """

    account_ids: list[str]
    names: list[str]
    x: F32Array
    #: Non-negative heavy-tailed columns the standardizer puts on a log scale.
    log_columns: frozenset[str]
    edge_index: dict[str, Tensor]
    edge_weight: dict[str, Tensor]

    @property
    def num_accounts(self) -> int:
        return len(self.account_ids)

    @property
    def relations(self) -> list[str]:
        return list(self.edge_index)


def build_features(
    snapshot: Snapshot, sensitive: Collection[str], *, as_of: float | None = None
) -> FeatureSet:
    """Features and typed edges of ``snapshot``; columns named in ``sensitive`` never appear.

    ``as_of`` (UNIX seconds) anchors ages and recency; by default the latest transfer (or
    account creation) in the snapshot.
    """
    n = snapshot.num_accounts
    if as_of is None:
        as_of = _latest_time(snapshot)
    keep = [j for j, name in enumerate(snapshot.feature_names) if name not in sensitive]
    columns: dict[str, FloatArray] = {
        snapshot.feature_names[j]: snapshot.features[:, j].astype(np.float64) for j in keep
    }
    log_columns: set[str] = set()

    def add(name: str, values: FloatArray, *, log: bool) -> None:
        if name in columns:
            raise InvalidInput(f"account column {name!r} clashes with an engineered feature")
        columns[name] = values
        if log:
            log_columns.add(name)

    add("account_age_days", (as_of - snapshot.created_at) / DAY, log=True)
    edge_index: dict[str, Tensor] = {}
    edge_weight: dict[str, Tensor] = {}
    for rel in sorted(snapshot.edges):
        es = snapshot.edges[rel]
        loop = es.src == es.dst
        src, dst = es.src[~loop], es.dst[~loop]
        if es.directed:
            w = np.ones(len(src)) if es.count is None else np.log1p(es.count[~loop])
            _put(edge_index, edge_weight, f"{rel}_out", dst, src, w)
            _put(edge_index, edge_weight, f"{rel}_in", src, dst, w)
            for name, values, log in _directed_features(es, ~loop, n, as_of, snapshot.created_at):
                add(f"{rel.lower()}_{name}", values, log=log)
        else:
            w = np.ones(2 * len(src))
            _put(edge_index, edge_weight, rel, np.r_[src, dst], np.r_[dst, src], w)
            add(f"degree_{rel}", _sum(np.r_[src, dst], w, n), log=True)
    names = list(columns)
    x = np.empty((n, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        x[:, j] = columns[name]
    return FeatureSet(
        account_ids=list(snapshot.account_ids),
        names=names,
        x=x,
        log_columns=frozenset(log_columns),
        edge_index=edge_index,
        edge_weight=edge_weight,
    )


def _latest_time(snapshot: Snapshot) -> float:
    times = [es.last_ts for es in snapshot.edges.values() if es.last_ts is not None]
    times.append(snapshot.created_at)
    finite = [t[np.isfinite(t)] for t in times]
    return max((float(t.max()) for t in finite if t.size), default=0.0)


def _put(
    edge_index: dict[str, Tensor],
    edge_weight: dict[str, Tensor],
    rel: str,
    sender: IntArray,
    receiver: IntArray,
    weight: FloatArray,
) -> None:
    edge_index[rel] = torch.from_numpy(np.stack([sender, receiver]).astype(np.int64))
    edge_weight[rel] = torch.from_numpy(np.asarray(weight, dtype=np.float32))


def _directed_features(
    es: EdgeSet, keep: npt.NDArray[np.bool_], n: int, as_of: float, created_at: FloatArray
) -> list[tuple[str, FloatArray, bool]]:
    """Counts, volumes, distinct counterparties, reciprocity, flow balance and velocity.

    ``es`` is aggregated per ordered pair (one row per payer → payee), so partner counts are
    row counts. Accounts without any such edge get 0 for counts and NaN for times.
    """
    src, dst = es.src[keep], es.dst[keep]
    count = np.ones(len(src)) if es.count is None else es.count[keep].astype(np.float64)
    amount = np.zeros(len(src)) if es.total_amount is None else es.total_amount[keep]
    ones = np.ones(len(src))
    out_count, in_count = _sum(src, count, n), _sum(dst, count, n)
    out_amount, in_amount = _sum(src, amount, n), _sum(dst, amount, n)
    out_partners, in_partners = _sum(src, ones, n), _sum(dst, ones, n)
    # A pair is mutual when the reverse ordered pair exists too; keys are unique per pair.
    mutual_edge = np.isin(dst * n + src, src * n + dst, assume_unique=True)
    mutual = _sum(src, mutual_edge.astype(np.float64), n)
    partners = out_partners + in_partners - mutual
    volume = out_amount + in_amount
    out = [
        ("out_count", out_count, True),
        ("in_count", in_count, True),
        ("out_amount", out_amount, True),
        ("in_amount", in_amount, True),
        ("out_partners", out_partners, True),
        ("in_partners", in_partners, True),
        ("partners", partners, True),
        ("reciprocity", _ratio(mutual, partners), False),
        ("flow_balance", _ratio(out_amount - in_amount, volume), False),
    ]
    if es.first_ts is not None and es.last_ts is not None:
        first = np.full(n, np.inf)
        last = np.full(n, -np.inf)
        for end in (src, dst):
            np.minimum.at(first, end, es.first_ts[keep])
            np.maximum.at(last, end, es.last_ts[keep])
        seen = np.isfinite(first)
        first[~seen] = np.nan
        last[~seen] = np.nan
        active_days = (last - first) / DAY
        out += [
            ("active_days", active_days, True),
            # Transfers per active day: a burst of payments in a few days reads as velocity.
            ("per_day", (out_count + in_count) / np.maximum(active_days, 1.0), True),
            ("recency_days", (as_of - last) / DAY, True),
            ("first_after_open_days", (first - created_at) / DAY, True),
        ]
    return out


def _sum(index: IntArray, weight: FloatArray, n: int) -> FloatArray:
    return np.bincount(index, weight, minlength=n).astype(np.float64)


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclass(frozen=True)
class Standardizer:
    """Signed log1p on heavy-tailed columns, then (x - median) / IQR, clipped to ±``CLIP``.

    A column with a zero IQR (mostly one value) falls back to its standard deviation, then 1.
    Missing values become 0 (the median) and every column that had a missing value when
    fitted gets a ``<name>_missing`` indicator. Columns are matched by name at transform time:
    an absent column reads as missing, an unknown one is ignored, so a snapshot with a new
    relation can still be scored. ``state()`` is plain JSON for the model artifact.
    """

    names: list[str]
    log_columns: list[str]
    center: list[float]
    scale: list[float]
    missing: list[str]

    @classmethod
    def fit(cls, features: FeatureSet, rows: IntArray | None = None) -> Standardizer:
        """Statistics over ``rows`` (default: every account; no labels are used)."""
        x = features.x if rows is None else features.x[rows]
        log_columns = [c for c in features.names if c in features.log_columns]
        z = _log_scale(x.astype(np.float64), features.names, set(log_columns))
        center, scale, missing = [], [], []
        for j, name in enumerate(features.names):
            col = z[:, j][np.isfinite(z[:, j])]
            if len(col) < len(z):
                missing.append(name)
            if not len(col):
                center.append(0.0)
                scale.append(1.0)
                continue
            q1, med, q3 = np.percentile(col, [25, 50, 75])
            spread = q3 - q1 if q3 - q1 > 1e-9 else float(col.std())
            center.append(float(med))
            scale.append(float(spread) if spread > 1e-9 else 1.0)
        return cls(list(features.names), log_columns, center, scale, missing)

    @property
    def output_names(self) -> list[str]:
        return [*self.names, *(f"{c}_missing" for c in self.missing)]

    def transform(self, x: F32Array, names: Sequence[str]) -> F32Array:
        """``[n, len(output_names)]`` float32, finite, in the fitted column order."""
        col = {name: j for j, name in enumerate(names)}
        raw = np.full((len(x), len(self.names)), np.nan)
        for j, name in enumerate(self.names):
            if name in col:
                raw[:, j] = x[:, col[name]]
        z = _log_scale(raw, self.names, set(self.log_columns))
        missing = ~np.isfinite(z)
        z = np.clip((z - np.asarray(self.center)) / np.asarray(self.scale), -CLIP, CLIP)
        z[missing] = 0.0
        which = [self.names.index(c) for c in self.missing]
        return np.concatenate([z, missing[:, which]], axis=1).astype(np.float32)

    def state(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "log_columns": self.log_columns,
            "center": self.center,
            "scale": self.scale,
            "missing": self.missing,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Standardizer:
        return cls(
            names=list(state["names"]),
            log_columns=list(state["log_columns"]),
            center=[float(v) for v in state["center"]],
            scale=[float(v) for v in state["scale"]],
            missing=list(state["missing"]),
        )


def _log_scale(x: FloatArray, names: Sequence[str], log_columns: set[str]) -> FloatArray:
    idx = [j for j, name in enumerate(names) if name in log_columns]
    out = x.copy()
    out[:, idx] = np.sign(out[:, idx]) * np.log1p(np.abs(out[:, idx]))
    # Infinite inputs are as unusable as missing ones.
    out[~np.isfinite(out)] = np.nan
    return out
