"""From candidates to rings: merge overlapping candidates, measure, score, type, and gather
the evidence an investigator sees.

Score: a weighted mean ``core`` of features in [0, 1] (``WEIGHTS``), raised towards 1 by
specific evidence, shared identifiers or a verified money cycle:
``core + (1 - core) * SPECIFIC_BONUS * max(shared, cycle)``. Such evidence is hard to explain
innocently when present but is not required (money cycles rarely share a phone). Member risk joins
only when some member has a label or a score, so the detector works on a store that was never
scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from creditgraph.domain import FloatArray, IntArray, RingKind, Snapshot
from creditgraph.rings import candidates as cand
from creditgraph.rings.candidates import Candidate, DetectConfig
from creditgraph.rings.graph import RingGraph

DAY = 86_400.0
#: Feature weights of the ring score. ``risk`` is left out (and the rest renormalised) when no
#: member has a label or a stored score.
WEIGHTS: dict[str, float] = {
    "risk": 2.0,
    "pattern": 1.5,
    "density": 0.5,
    "amount": 3.0,
    "burst": 1.0,
}
SPECIFIC_BONUS = 0.5
#: Evidence lists are capped so that a ring stays a readable document.
MAX_EVIDENCE = 200
GENERATORS: dict[str, Callable[[RingGraph, DetectConfig], list[Candidate]]] = {
    "shared_links": cand.shared_identity,
    "cycles": cand.cycles,
    "fan_in": cand.mule_fan_in,
    "fan_out": cand.mule_fan_out,
    "dense_transfers": cand.collusion,
    "communities": cand.communities,
}


@dataclass(frozen=True)
class DetectedRing:
    """A ring as detection sees it: members by account id, score, kind and evidence."""

    members: list[str]
    kind: RingKind
    score: float
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Detection:
    """All rings found, with per-stage timings and candidate counts."""

    rings: list[DetectedRing]
    timings: dict[str, float]
    candidates: dict[str, int]


def detect(
    snap: Snapshot,
    risk: FloatArray | None = None,
    config: DetectConfig | None = None,
    generators: Sequence[str] | None = None,
) -> Detection:
    """Find rings in ``snap``. ``risk`` is a per-account fraud probability (NaN unknown)."""
    cfg = config or DetectConfig()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    g = RingGraph.build(snap, risk)
    timings["index"] = time.perf_counter() - t
    found: list[Candidate] = []
    counts: dict[str, int] = {}
    for name in generators or list(GENERATORS):
        t = time.perf_counter()
        got = GENERATORS[name](g, cfg)
        timings[name] = time.perf_counter() - t
        counts[name] = len(got)
        found.extend(got)
    t = time.perf_counter()
    rings = []
    for group in merge(found, g.n, cfg):
        ring = assess(g, group, cfg)
        if ring is not None and ring.score >= cfg.min_score:
            rings.append(ring)
    rings.sort(key=lambda r: (-r.score, r.members))
    timings["merge_score"] = time.perf_counter() - t
    return Detection(rings, timings, counts)


def merge(found: Sequence[Candidate], n: int, cfg: DetectConfig) -> list[list[Candidate]]:
    """Groups of candidates describing the same ring: two candidates join when their overlap
    is at least half of the smaller one, unless the union would exceed ``max_members``."""
    if not found:
        return []
    rows = np.repeat(np.arange(len(found)), [len(c.members) for c in found])
    cols = np.concatenate([c.members for c in found])
    inc = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(found), n))
    overlap = (inc @ inc.T).tocoo()
    sizes = np.array([len(c.members) for c in found])
    small = np.minimum(sizes[overlap.row], sizes[overlap.col])
    link = (overlap.row < overlap.col) & (overlap.data >= 0.5 * small)
    union = sizes[overlap.row] + sizes[overlap.col] - overlap.data
    link &= union <= cfg.max_members
    adj = sp.coo_matrix(
        (np.ones(int(link.sum())), (overlap.row[link], overlap.col[link])),
        shape=(len(found), len(found)),
    )
    _, labels = connected_components(adj, directed=False)
    groups: dict[int, list[Candidate]] = {}
    for c, lab in zip(found, labels.tolist(), strict=True):
        groups.setdefault(lab, []).append(c)
    out = []
    for group in groups.values():
        members = np.unique(np.concatenate([c.members for c in group]))
        if len(members) > cfg.max_members:
            # Chained overlaps grew too large: keep the strongest candidate alone.
            group = [max(group, key=lambda c: (c.strength, -len(c.members)))]
        out.append(group)
    return out


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def assess(g: RingGraph, group: Sequence[Candidate], cfg: DetectConfig) -> DetectedRing | None:
    """Features, score, kind and evidence of one merged group; None if too small."""
    members = np.unique(np.concatenate([c.members for c in group]))
    k = len(members)
    if k < cfg.min_members:
        return None
    pairs = g.internal_pairs(members)
    links = g.internal_links(members)
    features = _features(g, members, pairs, links, group)
    weights = {f: w for f, w in WEIGHTS.items() if not np.isnan(features[f])}
    core = sum(w * features[f] for f, w in weights.items()) / sum(weights.values())
    specific = max(features["shared"], features["cycle"])
    score = core + (1.0 - core) * SPECIFIC_BONUS * specific
    kind = _kind(g, members, pairs, links, group)
    return DetectedRing(
        members=[g.account_ids[i] for i in members.tolist()],
        kind=kind,
        score=round(float(score), 4),
        evidence=_evidence(g, members, pairs, links, group, features),
    )


def _features(
    g: RingGraph,
    members: IntArray,
    pairs: IntArray,
    links: IntArray,
    group: Sequence[Candidate],
) -> dict[str, float]:
    k = len(members)
    lab = g.labels[members].astype(np.float64)
    member_risk = np.where(lab >= 0, lab, g.risk[members])
    known = ~np.isnan(member_risk)
    risk = float(member_risk[known].mean()) if known.any() else float("nan")
    # Directed pairs present among the members, against a sparse ring's 2 per member.
    density = _clip(len(pairs) / (2.0 * k)) if k else 0.0
    amount = float(g.amount[pairs].sum())
    # Money moved inside the group against the network's typical pair total, on a log scale:
    # full weight at ~300 times the typical pair (currency and scale free).
    amount_f = _clip(np.log10(max(amount, 1e-9) / g.typical_pair_amount) / 2.5)
    in_link = np.union1d(g.link_a[links], g.link_b[links])
    shared = len(in_link) / k
    created = g.created_at[members]
    created = created[~np.isnan(created)]
    burst_created = (
        float(np.mean(np.abs(created - np.median(created)) <= 15 * DAY)) if len(created) else 0.0
    )
    if len(pairs) >= 3:
        # Fewer pairs say nothing about a burst: one payment is always "sudden".
        span = float(g.last_ts[pairs].max() - g.first_ts[pairs].min())
        burst_tx = _clip(1.0 - span / (180 * DAY))
    else:
        burst_tx = 0.0
    on_cycle = {v for c in group for cyc_ in c.cycles for v in cyc_}
    cycle_strength = max((c.strength for c in group if c.cycles), default=0.0)
    return {
        "risk": risk,
        "cycle": len(on_cycle) / k * cycle_strength,
        "pattern": max(c.strength for c in group),
        "density": density,
        "amount": amount_f,
        "shared": shared,
        "burst": max(burst_created, burst_tx),
        "internal_amount": round(amount, 2),
        "internal_pairs": float(len(pairs)),
        "shared_links": float(len(links)),
    }


def _kind(
    g: RingGraph,
    members: IntArray,
    pairs: IntArray,
    links: IntArray,
    group: Sequence[Candidate],
) -> RingKind:
    """The pattern with the clearest evidence: shared identifiers covering most members, then
    dense mutual payments (a dense group holds many cycles, so this comes before cycles), then
    a cycle covering most members, then a fan hub, then the structure itself."""
    k = len(members)
    if len(np.union1d(g.link_a[links], g.link_b[links])) >= 0.5 * k:
        return "shared_identity"
    if any(c.pattern == "collusion" for c in group) or _dense_and_mutual(g, members, pairs):
        return "collusion"
    cyc = [c for c in group if c.pattern == "cycle"]
    if cyc and max(len(c.members) for c in cyc) >= 0.5 * k:
        return "cycle"
    fans = [c for c in group if c.pattern in ("mule_fan_in", "mule_fan_out")]
    if fans:
        best = max(fans, key=lambda c: len(c.members))
        assert best.pattern is not None
        return best.pattern
    if not len(pairs):
        return "collusion"
    # Without a generator's verdict: one member receiving from (or paying) most others while
    # the rest do not is a fan; otherwise the group is a dense collusion.
    ins = np.sort(np.bincount(np.searchsorted(members, g.dst[pairs]), minlength=k))
    outs = np.sort(np.bincount(np.searchsorted(members, g.src[pairs]), minlength=k))
    fan_kinds: tuple[tuple[IntArray, RingKind], ...] = (
        (ins, "mule_fan_in"),
        (outs, "mule_fan_out"),
    )
    for degrees, kind in fan_kinds:
        if degrees[-1] >= 0.6 * (k - 1) and (k < 2 or degrees[-2] <= 0.3 * (k - 1)):
            return kind
    return "collusion"


def _dense_and_mutual(g: RingGraph, members: IntArray, pairs: IntArray) -> bool:
    """Most ordered member pairs carry money and most of those are paid back: collusion, not
    a cycle (where money goes one way round)."""
    k = len(members)
    if k < 3 or not len(pairs):
        return False
    key = g.src[pairs] * g.n + g.dst[pairs]
    back = np.isin(g.dst[pairs] * g.n + g.src[pairs], key)
    return len(pairs) >= 0.4 * k * (k - 1) and float(back.mean()) >= 0.5


def _evidence(
    g: RingGraph,
    members: IntArray,
    pairs: IntArray,
    links: IntArray,
    group: Sequence[Candidate],
    features: dict[str, float],
) -> dict[str, Any]:
    ids = g.account_ids
    top = pairs[np.argsort(-g.amount[pairs], kind="stable")][:MAX_EVIDENCE]
    cycles = sorted({c for cand_ in group for c in cand_.cycles}, key=len)[:20]
    hubs = sorted({c.hub for c in group if c.hub >= 0})
    return {
        "patterns": sorted({c.source for c in group}),
        "features": {f: (None if np.isnan(v) else round(float(v), 4)) for f, v in features.items()},
        "transfers": [
            {
                "src": ids[int(g.src[p])],
                "dst": ids[int(g.dst[p])],
                "count": int(g.count[p]),
                "amount": round(float(g.amount[p]), 2),
                "first_ts": float(g.first_ts[p]),
                "last_ts": float(g.last_ts[p]),
            }
            for p in top.tolist()
        ],
        "shared_links": [
            {
                "a": ids[int(g.link_a[p])],
                "b": ids[int(g.link_b[p])],
                "type": g.link_types[int(g.link_type[p])],
            }
            for p in links[:MAX_EVIDENCE].tolist()
        ],
        "cycles": [[ids[v] for v in c] for c in cycles],
        "hubs": [ids[h] for h in hubs],
    }
