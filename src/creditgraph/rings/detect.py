"""From candidates to rings: merge overlapping candidates, measure, score, type, and gather
the evidence an investigator sees.

Score: ``rings.scorer``. Every merged group gets the features of ``scorer.FEATURES``; the
groups that carry weak supervision (a verdict on a matching stored ring, or labelled members)
train a calibrated logistic model that scores all groups, with the features that raised each
score as its reasons. Without enough supervision the documented unsupervised prior scores them.
"""

from __future__ import annotations

import dataclasses
import functools
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
from creditgraph.rings.scorer import FEATURE_NAMES, RingScorer, weak_labels

DAY = 86_400.0
#: Default reporting thresholds: a calibrated probability, or the unsupervised prior's
#: threshold (chosen on the default synthetic network, seed 42, as before the learned scorer).
LEARNED_MIN_SCORE = 0.5
UNSUPERVISED_MIN_SCORE = 0.82
#: A stored ring's verdict labels a candidate whose members overlap it by this Jaccard.
VERDICT_JACCARD = 0.5
#: Evidence lists are capped so that a ring stays a readable document.
MAX_EVIDENCE = 200
GENERATORS: dict[str, Callable[[RingGraph, DetectConfig], list[Candidate]]] = {
    "shared_links": cand.shared_identity,
    "cycles": cand.cycles,
    "fan_in": cand.mule_fan_in,
    "fan_out": cand.mule_fan_out,
    "dense_transfers": cand.collusion,
    "round_night": cand.round_trading,
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
    #: How the rings were scored: mode, weak-label counts, model weights.
    scorer: dict[str, Any] = dataclasses.field(default_factory=dict)


def detect(
    snap: Snapshot,
    risk: FloatArray | None = None,
    config: DetectConfig | None = None,
    generators: Sequence[str] | None = None,
    verdicts: Sequence[tuple[Sequence[str], str]] = (),
) -> Detection:
    """Find rings in ``snap``. ``risk`` is a per-account fraud probability (NaN unknown);
    ``verdicts`` are stored rings' (members, status): confirmed and dismissed ones supervise
    the scorer."""
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
    assessed = []
    for group in merge(found, g.n, cfg):
        members = np.unique(np.concatenate([c.members for c in group]))
        if len(members) < cfg.min_members:
            continue
        pairs = g.internal_pairs(members)
        links = g.internal_links(members)
        assessed.append((members, pairs, links, group, _features(g, members, pairs, links, group)))
    timings["features"] = time.perf_counter() - t
    t = time.perf_counter()
    raw = [a[4] for a in assessed]
    x = np.array([[f[n] for n in FEATURE_NAMES] for f in raw], dtype=np.float64).reshape(
        len(raw), len(FEATURE_NAMES)
    )
    member_sets = [a[0] for a in assessed]
    weak = weak_labels(member_sets, g.labels, _verdict_of(g, member_sets, verdicts), g.risk)
    scorer = RingScorer.fit(x, weak)
    scores = scorer.score(x, raw)
    reasons = scorer.reasons(x)
    floor = cfg.min_score
    if floor is None:
        floor = UNSUPERVISED_MIN_SCORE if scorer.model is None else LEARNED_MIN_SCORE
    timings["score"] = time.perf_counter() - t
    t = time.perf_counter()
    rings = []
    taken = np.zeros(g.n, dtype=bool)
    for i in np.argsort(-scores, kind="stable").tolist():
        members, pairs, links, group, feats = assessed[i]
        if scores[i] < floor:
            break
        # Fragments and near-duplicates of a higher-scored group are the same ring again.
        if taken[members].mean() >= cfg.suppress_overlap:
            continue
        taken[members] = True
        evidence = _evidence(g, members, pairs, links, group, feats)
        evidence["scorer"] = scorer.mode
        evidence["reasons"] = reasons[i]
        evidence["weak_label"] = weak.source[i] if weak.y[i] >= 0 else None
        rings.append(
            DetectedRing(
                members=[g.account_ids[j] for j in members.tolist()],
                kind=_kind(g, members, pairs, links, group),
                score=round(float(scores[i]), 4),
                evidence=evidence,
            )
        )
    rings.sort(key=lambda r: (-r.score, r.members))
    timings["evidence"] = time.perf_counter() - t
    return Detection(rings, timings, counts, {**scorer.describe(), "min_score": floor})


def _verdict_of(
    g: RingGraph, members: Sequence[IntArray], verdicts: Sequence[tuple[Sequence[str], str]]
) -> list[str | None]:
    """Per candidate, the status of the stored ring with a verdict it overlaps best (Jaccard
    >= ``VERDICT_JACCARD``), if any."""
    out: list[str | None] = [None] * len(members)
    judged = [(m, s) for m, s in verdicts if s in ("confirmed", "dismissed")]
    if not judged:
        return out
    pos = {a: i for i, a in enumerate(g.account_ids)}
    sets = [({pos[a] for a in m if a in pos}, s) for m, s in judged]
    by_member: dict[int, list[int]] = {}
    for j, (ms, _) in enumerate(sets):
        for v in ms:
            by_member.setdefault(v, []).append(j)
    for i, m in enumerate(members):
        mine = set(m.tolist())
        best, best_j = None, VERDICT_JACCARD
        for j in {j for v in mine for j in by_member.get(v, [])}:
            ms, status = sets[j]
            jac = len(mine & ms) / len(mine | ms)
            if jac >= best_j:
                best, best_j = status, jac
        out[i] = best
    return out


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


def _median(sorted_values: FloatArray) -> float:
    """Median of an already sorted, non-empty array (np.median costs more than the sort)."""
    m = len(sorted_values)
    return float(sorted_values[m // 2] + sorted_values[(m - 1) // 2]) / 2.0


@functools.lru_cache(maxsize=64)
def _triu(k: int) -> tuple[IntArray, IntArray]:
    i, j = np.triu_indices(k, 1)
    return i, j


def _features(
    g: RingGraph,
    members: IntArray,
    pairs: IntArray,
    links: IntArray,
    group: Sequence[Candidate],
) -> dict[str, float]:
    """Every feature of ``scorer.FEATURES`` plus the unsupervised prior's inputs (``risk_all``,
    ``burst``) and raw counts for the evidence."""
    nan = float("nan")
    k = len(members)
    lab = g.labels[members]
    risk_known = g.risk[members]
    # Fraud probabilities of the unlabelled members: a labelled member's score has seen its
    # label in training, and its label is the scorer's target, not a feature.
    unl = risk_known[(lab < 0) & ~np.isnan(risk_known)]
    if not len(unl):
        unl = risk_known[~np.isnan(risk_known)]
    member_risk = np.where(lab >= 0, lab.astype(np.float64), risk_known)
    known = ~np.isnan(member_risk)
    risk_all = float(member_risk[known].mean()) if known.any() else nan
    density = _clip(len(pairs) / (2.0 * k)) if k else 0.0
    amount = float(g.amount[pairs].sum())
    # Money moved inside the group against the network's typical pair total, on a log scale:
    # full weight at ~300 times the typical pair (currency and scale free).
    amount_f = _clip(np.log10(max(amount, 1e-9) / g.typical_pair_amount) / 2.5)
    in_link = set(g.link_a[links].tolist()) | set(g.link_b[links].tolist())
    created = np.sort(g.created_at[members])
    created = created[~np.isnan(created)]
    burst_created = (
        float(np.mean(np.abs(created - _median(created)) <= 15 * DAY)) if len(created) else 0.0
    )
    # When the group's activity began: its first internal payment, else its members' first.
    firsts = np.concatenate([g.first_in[members], g.first_out[members]])
    lasts = np.concatenate([g.last_in[members], g.last_out[members]])
    t_ref = (
        float(g.first_ts[pairs].min()) if len(pairs) else float(np.nanmin(firsts, initial=np.inf))
    )
    whole_span = float(np.nanmax(lasts, initial=-np.inf) - np.nanmin(firsts, initial=np.inf))
    if len(created) and np.isfinite(t_ref):
        age = (t_ref - created) / DAY
        age_days = float(np.log1p(max(0.0, _median(age[::-1]))))
        fresh = float(np.mean((age >= -1) & (age <= 90)))
        c = len(created) - 1
        spread = float(np.log1p((created[round(0.75 * c)] - created[round(0.25 * c)]) / DAY))
    else:
        age_days, fresh, spread = nan, 0.0, nan
    if len(pairs):
        span = float(g.last_ts[pairs].max() - g.first_ts[pairs].min())
        span_days = float(np.log1p(span / DAY))
        compression = _clip(span / whole_span) if whole_span > 0 else 1.0
        units = g.amount[pairs] / 10.0
        round_share = float(np.mean(np.abs(units - np.round(units)) < 1e-6))
        hours = np.concatenate([g.first_ts[pairs], g.last_ts[pairs]]) % DAY / 3_600
        night = float(np.mean((hours >= 22) | (hours < 5)))
        means = g.amount[pairs] / g.count[pairs]
        amount_cv = float(means.std() / means.mean()) if means.mean() > 0 else nan
        key = set((g.src[pairs] * g.n + g.dst[pairs]).tolist())
        back = (g.dst[pairs] * g.n + g.src[pairs]).tolist()
        reciprocity = sum(b in key for b in back) / len(back)
        younger = np.maximum(g.created_at[g.src[pairs]], g.created_at[g.dst[pairs]])
        lag = np.sort(g.first_ts[pairs] - younger)
        lag = lag[~np.isnan(lag)]
        tie_age = float(np.log1p(max(0.0, _median(lag)) / DAY)) if len(lag) else nan
        dur = np.sort(g.last_ts[pairs] - g.first_ts[pairs])
        duration = float(np.log1p(_median(dur) / DAY))
        friend_overlap = float(g.are_friends(g.src[pairs], g.dst[pairs]).mean())
        count_mean = float(g.count[pairs].mean())
        burst_tx = _clip(1.0 - span / (180 * DAY)) if len(pairs) >= 3 else 0.0
    else:
        span_days = compression = round_share = night = amount_cv = nan
        reciprocity = tie_age = duration = friend_overlap = count_mean = nan
        burst_tx = 0.0
    ia, ib = _triu(k)
    friend_density = float(g.are_friends(members[ia], members[ib]).mean()) if k > 1 else 0.0
    hubs = [c.hub for c in group if c.hub >= 0]
    if hubs:
        h = max(hubs, key=lambda v: (g.in_ptr[v + 1] - g.in_ptr[v], -v))
        i_tot, o_tot = g.in_total[h], g.out_total[h]
        flow = float(min(i_tot, o_tot) / max(i_tot, o_tot)) if max(i_tot, o_tot) > 0 else 0.0
        lags = [x for x in (g.first_out[h] - g.first_in[h], g.last_out[h] - g.last_in[h]) if x == x]
        dwell = float(np.log1p(max(0.0, float(np.mean(lags))) / 3_600)) if lags else nan
        payers = int(g.in_ptr[h + 1] - g.in_ptr[h])
        one_off = float(g.one_off_in[h] / payers) if payers else nan
        hub_payers = float(np.log1p(payers))
    else:
        flow = dwell = one_off = hub_payers = nan
    on_cycle = {v for c in group for cyc_ in c.cycles for v in cyc_}
    cycle_strength = max((c.strength for c in group if c.cycles), default=0.0)
    return {
        "size": float(np.log2(k)),
        "generators": float(len({c.source for c in group})),
        "pattern": max(c.strength for c in group),
        "risk_mean": float(unl.mean()) if len(unl) else nan,
        "risk_max": float(unl.max()) if len(unl) else nan,
        "age_days": age_days,
        "fresh_share": fresh,
        "created_spread": spread,
        "flow_through": flow,
        "dwell_hours": dwell,
        "one_off_share": one_off,
        "hub_payers": hub_payers,
        "span_days": span_days,
        "compression": compression,
        "round_share": round_share,
        "night_share": night,
        "amount_cv": amount_cv,
        "cycle": len(on_cycle) / k * cycle_strength,
        "shared": len(in_link) / k,
        "shared_density": len(links) / k,
        "link_types": float(len(np.unique(g.link_type[links]))),
        "reciprocity": reciprocity,
        "tie_age_days": tie_age,
        "pair_duration_days": duration,
        "friend_overlap": friend_overlap,
        "friend_density": friend_density,
        "density": density,
        "amount": amount_f,
        "count_mean": count_mean,
        # Inputs of the unsupervised prior and raw counts for the evidence.
        "risk_all": risk_all,
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
