"""Candidate groups from suspicious structure, one generator per pattern.

Each generator works on whole-graph arrays (``RingGraph``) and returns ``Candidate`` groups;
``detect`` merges overlapping candidates, scores and types them. Thresholds live in
``DetectConfig`` so that a network unlike the synthetic one can be tuned without code changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import igraph as ig
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from creditgraph.domain import FloatArray, IntArray, RingKind
from creditgraph.rings.graph import RingGraph


@dataclass(frozen=True)
class DetectConfig:
    """Knobs of candidate generation and ring selection (defaults tuned on the synthetic
    network, see docs/rings.md)."""

    min_members: int = 3
    max_members: int = 60
    #: Shared identifiers: components larger than this are split into dense communities.
    shared_split: int = 60
    #: Cycles: at most this many hops; each pair repeated at least ``cycle_min_count`` times,
    #: with a mean amount in the network's top ``1 - cycle_amount_quantile``; consecutive hops
    #: pass on an amount within ``cycle_amount_ratio`` of each other.
    cycle_max_len: int = 12
    cycle_min_count: int = 2
    cycle_amount_quantile: float = 0.9
    cycle_amount_ratio: float = 3.0
    #: Depth-first steps allowed per start account, and cycles kept per start account (bound
    #: the worst case on dense cores; overlapping cycles are merged later anyway).
    cycle_max_steps: int = 5_000
    cycle_max_per_start: int = 10
    #: Fans: a hub with at least ``fan_min`` counterparties that passes on at least
    #: ``pass_through`` of what it received.
    fan_min: int = 4
    pass_through: float = 0.6
    #: Share of a hub's flow whose counterparties join the ring (largest first).
    flow_share: float = 0.9
    #: Fan in: a receiver joins a hub only if the hub paid it at least this share of its inflow.
    fan_source_share: float = 0.1
    #: Collusion: unordered pairs with at least this many transfers, in at least
    #: ``collusion_min_triangles`` triangles of such pairs.
    collusion_min_count: int = 2
    collusion_min_triangles: int = 2
    collusion_min_density: float = 0.4
    #: Round-sum / night-time trading: totals that are multiples of this count as round (in
    #: the network's currency), and components need this share of member pairs present.
    round_unit: float = 10.0
    round_min_density: float = 0.5
    #: Community detection seeds: accounts at or above this fraud probability, or labelled
    #: fraud; communities need at least ``seed_share`` seeds.
    seed_risk: float = 0.5
    seed_share: float = 0.5
    #: Leiden with the constant Potts model: a community's internal edge density must beat
    #: this (modularity would split one dense group and merge small ones around hubs).
    leiden_resolution: float = 0.1
    #: A group with at least this share of its members in a higher-scored group is the same
    #: ring seen again (a fragment or a near-duplicate) and is not reported.
    suppress_overlap: float = 0.5
    #: Rings scoring below this are not reported; None: 0.5 for the learned (calibrated)
    #: scorer, 0.82 for the unsupervised prior (``rings.detect``).
    min_score: float | None = None


@dataclass(frozen=True)
class Candidate:
    """A group of accounts (sorted unique indices) and the pattern that proposed it."""

    members: IntArray
    pattern: RingKind | None
    source: str
    strength: float
    cycles: tuple[tuple[int, ...], ...] = ()
    hub: int = -1


def _groups(labels: IntArray, keep: IntArray) -> list[IntArray]:
    """Members of each label in ``keep`` (an array of label values)."""
    wanted = np.isin(labels, keep)
    idx = np.flatnonzero(wanted)
    order = idx[np.argsort(labels[idx], kind="stable")]
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    return [np.sort(part) for part in np.split(order, cuts)] if len(order) else []


def shared_identity(g: RingGraph, cfg: DetectConfig) -> list[Candidate]:
    """Groups of accounts sharing identifiers (every link type but friendship).

    Connected components of the shared-identifier graph; a component of more than
    ``shared_split`` accounts is split into Leiden communities (constant Potts model,
    ``leiden_resolution``) when it has more than one: a bought account keeps its previous
    owner's household links, so a ring of such accounts is a dense core with families hanging
    off it, and as one component it would be judged (and matched) as a much larger group.
    """
    if len(g.link_a) == 0:
        return []
    adj = sp.coo_matrix((np.ones(len(g.link_a)), (g.link_a, g.link_b)), shape=(g.n, g.n))
    _, labels = connected_components(adj, directed=False)
    sizes = np.bincount(labels)
    keep = np.flatnonzero((sizes >= cfg.min_members) & (sizes <= cfg.max_members))
    big = np.flatnonzero(sizes > cfg.shared_split)
    if len(big):
        labels = labels.copy()
        inside = np.isin(labels[g.link_a], big)
        nodes, inv = np.unique(
            np.concatenate([g.link_a[inside], g.link_b[inside]]), return_inverse=True
        )
        graph = ig.Graph(n=len(nodes), edges=inv.reshape(2, -1).T.tolist()).simplify()
        parts = graph.community_leiden(
            objective_function="CPM", resolution=cfg.leiden_resolution, n_iterations=2
        )
        sub = np.asarray(parts.membership, dtype=np.int64)
        # Communities become new labels after the components' (a community never spans two).
        labels[nodes] = labels.max() + 1 + sub
        sizes = np.bincount(labels)
        keep = np.flatnonzero((sizes >= cfg.min_members) & (sizes <= cfg.max_members))
    out = []
    for members in _groups(labels, keep):
        links = g.internal_links(members)
        k = len(members)
        out.append(Candidate(members, "shared_identity", "shared_links", min(1.0, len(links) / k)))
    return out


def cycles(g: RingGraph, cfg: DetectConfig) -> list[Candidate]:
    """Time-respecting money cycles of at most ``cycle_max_len`` hops.

    Only repeated, large pairs inside one strongly connected component of such pairs are
    walked; consecutive hops must pass on a similar mean amount, and the next hop must not
    end before the previous one began (pair-level time order: money can only move on after
    it arrived). Each cycle is found once, from its smallest account.
    """
    if len(g.src) == 0:
        return []
    mean = g.amount / g.count
    floor = float(np.quantile(mean, cfg.cycle_amount_quantile))
    keep = np.flatnonzero((g.count >= cfg.cycle_min_count) & (mean >= floor))
    adj = sp.coo_matrix((np.ones(len(keep)), (g.src[keep], g.dst[keep])), shape=(g.n, g.n))
    _, comp = connected_components(adj, directed=True, connection="strong")
    sizes = np.bincount(comp)
    keep = keep[(comp[g.src[keep]] == comp[g.dst[keep]]) & (sizes[comp[g.src[keep]]] >= 3)]
    if len(keep) == 0:
        return []
    ptr = np.zeros(g.n + 1, dtype=np.int64)
    np.cumsum(np.bincount(g.src[keep], minlength=g.n), out=ptr[1:])
    nbr_pair = keep  # already sorted by source (pairs are sorted by src, dst)
    nbr = g.dst[keep]
    ratio = cfg.cycle_amount_ratio
    found: list[tuple[int, ...]] = []
    for start in np.unique(g.src[keep]).tolist():
        _walk(start, ptr, nbr, nbr_pair, mean, g.first_ts, g.last_ts, ratio, cfg, found)
    out = []
    for cyc in found:
        nodes = cyc[::2]
        pairs = cyc[1::2]
        means = mean[list(pairs)]
        repeats = min(1.0, float(g.count[list(pairs)].min()) / 3)
        strength = float(means.min() / means.max()) * repeats
        out.append(
            Candidate(
                np.array(sorted(nodes), dtype=np.int64),
                "cycle",
                "cycles",
                strength,
                cycles=(tuple(nodes),),
            )
        )
    return out


def _walk(
    start: int,
    ptr: IntArray,
    nbr: IntArray,
    nbr_pair: IntArray,
    mean: FloatArray,
    first: FloatArray,
    last: FloatArray,
    ratio: float,
    cfg: DetectConfig,
    found: list[tuple[int, ...]],
) -> None:
    """Bounded DFS for cycles through ``start`` over accounts larger than ``start``.

    ``found`` receives tuples alternating account and pair position: (v0, p0, v1, p1, ...).
    """
    steps = 0
    limit = len(found) + cfg.cycle_max_per_start
    path: list[int] = [start]
    pairs: list[int] = []
    on_path = {start}
    # Each frame: (account, next neighbour offset).
    stack: list[list[int]] = [[start, int(ptr[start])]]
    while stack:
        frame = stack[-1]
        v, i = frame
        if i >= ptr[v + 1] or steps > cfg.cycle_max_steps or len(found) >= limit:
            stack.pop()
            on_path.discard(path.pop())
            if pairs:
                pairs.pop()
            continue
        frame[1] = i + 1
        steps += 1
        w = int(nbr[i])
        p = int(nbr_pair[i])
        if w < start:
            continue
        if pairs:
            q = pairs[-1]
            if not (mean[p] * ratio >= mean[q] and mean[q] * ratio >= mean[p]):
                continue
            if last[p] < first[q]:
                continue
        if w == start:
            if len(pairs) >= 2:
                p0 = pairs[0]
                if (
                    mean[p] * ratio >= mean[p0]
                    and mean[p0] * ratio >= mean[p]
                    and last[p0] >= first[p]
                ):
                    hops = zip(path, [*pairs, p], strict=True)
                    found.append(tuple(x for hop in hops for x in hop))
            continue
        if w in on_path or len(path) >= cfg.cycle_max_len:
            continue
        path.append(w)
        pairs.append(p)
        on_path.add(w)
        stack.append([w, int(ptr[w])])


def _segment_max(values: FloatArray, ptr: IntArray) -> FloatArray:
    """Per-account maximum over CSR segments (0 for empty ones)."""
    out = np.zeros(len(ptr) - 1)
    nonempty = np.flatnonzero(np.diff(ptr) > 0)
    if len(nonempty):
        out[nonempty] = np.maximum.reduceat(values, ptr[nonempty])
    return out


def _top_share(positions: IntArray, amount: FloatArray, share: float) -> IntArray:
    """The largest pairs (by amount) that together carry ``share`` of the total."""
    order = positions[np.argsort(-amount[positions], kind="stable")]
    cum = np.cumsum(amount[order])
    k = int(np.searchsorted(cum, share * cum[-1])) + 1 if len(cum) else 0
    return order[:k]


def mule_fan_in(g: RingGraph, cfg: DetectConfig) -> list[Candidate]:
    """Flow-through accounts and where their money goes.

    A *flow-through hub* has at least ``fan_min`` payers (any: scam victims pay once, feeders
    repeatedly; no rule about who they are), passes on ``pass_through`` to ``1/pass_through``
    of what it received, and at most three accounts carry ``flow_share`` of its outflow. Hubs
    are joined to those accounts, unless such an
    account has more payers than a ring holds (a merchant: the money leaves the network); the
    connected groups of hubs and receivers are candidates, so several mules paying one
    collector form one group. Payers that paid a hub more than once and carry its inflow join
    (a recruited feeder is part of the ring, a one-off victim is not). How short the money
    stayed, how fresh the accounts are and how many payers were one-off are features for the
    scorer, not filters here: a small business also passes its takings on.
    """
    if len(g.src) == 0:
        return []
    in_deg = np.diff(g.in_ptr)
    top_out = _segment_max(g.amount, g.out_ptr)
    with np.errstate(divide="ignore", invalid="ignore"):
        passed = g.out_total / g.in_total
        concentrated = top_out / g.out_total
    hubs = np.flatnonzero(
        (in_deg >= cfg.fan_min) & (passed >= cfg.pass_through) & (passed <= 1.0 / cfg.pass_through)
    )
    hub_of: list[int] = []
    recv_of: list[int] = []
    feeders: dict[int, IntArray] = {}
    for v in hubs.tolist():
        receivers = _top_share(g.out_pairs(v), g.amount, cfg.flow_share)
        if len(receivers) > 3:
            continue
        # A receiver belongs with the hub when the hub is one of its main sources of money
        # (not a shop or a friend the hub also pays) and it is no merchant.
        r = g.dst[receivers]
        main = g.amount[receivers] >= cfg.fan_source_share * g.in_total[r]
        receivers = receivers[main & (in_deg[r] <= cfg.max_members)]
        senders = _top_share(g.in_pairs(v), g.amount, cfg.flow_share)
        # Repeat payers carrying a real share of the money are recruited feeders; friends
        # paying small sums now and then are the mule's ordinary life.
        big = g.amount[senders] >= 0.5 * g.amount[senders].mean() if len(senders) else senders
        feeders[v] = g.src[senders[(g.count[senders] >= 2) & big]]
        hub_of.extend([v] * len(receivers))
        recv_of.extend(g.dst[receivers].tolist())
    if not feeders:
        return []
    ends = np.array(hub_of + recv_of, dtype=np.int64)
    nodes, inv = np.unique(
        np.concatenate([ends, np.fromiter(feeders, np.int64)]), return_inverse=True
    )
    m = len(hub_of)
    adj = sp.coo_matrix((np.ones(m), (inv[:m], inv[m : 2 * m])), shape=(len(nodes), len(nodes)))
    _, comp = connected_components(adj, directed=False)
    hub_pos = inv[2 * m :]
    out = []
    by_comp: dict[int, list[int]] = {}
    for v, c in zip(feeders, comp[hub_pos].tolist(), strict=True):
        by_comp.setdefault(c, []).append(v)
    for c, group_hubs in by_comp.items():
        core = nodes[comp == c]
        if len(core) > cfg.max_members:
            # A popular receiver ties many hubs together: each hub with its own receivers.
            parts = [
                np.array([v, *[r for h, r in zip(hub_of, recv_of, strict=True) if h == v]])
                for v in group_hubs
            ]
        else:
            parts = [core]
        for part in parts:
            part_hubs = [v for v in group_hubs if v in set(part.tolist())]
            members = np.unique(np.concatenate([part, *[feeders[v] for v in part_hubs]]))
            if not cfg.min_members <= len(members) <= cfg.max_members:
                continue
            strength = float(np.mean([min(1.0, passed[v]) * concentrated[v] for v in part_hubs]))
            hub = max(part_hubs, key=lambda v: (in_deg[v], -v))
            out.append(Candidate(members, "mule_fan_in", "fan_in", strength, hub=hub))
    return out


def round_trading(g: RingGraph, cfg: DetectConfig) -> list[Candidate]:
    """Dense groups of repeated round-sum or night-time payments.

    Assumes: money moved between the same accounts at least twice, and either every payment
    of the pair was a round sum (the pair's total is a multiple of ``round_unit``: a sum of
    round sums is round, while ordinary amounts with cents almost never add up to one) or the
    pair's first and last payment fell at night (22:00-05:00 UTC). Components of such pairs
    without hubs, of ring size, with at least ``round_min_density`` of their member pairs
    present (no kind of its own: the group's structure decides). Clubs, roommates and night
    owls match as well; telling them apart is the scorer's
    job (tie age, friendships, account age).
    """
    if len(g.src) == 0:
        return []
    units = g.amount / cfg.round_unit
    round_pair = np.abs(units - np.round(units)) < 1e-6
    hour_first = (g.first_ts % 86_400) / 3_600
    hour_last = (g.last_ts % 86_400) / 3_600
    night = ((hour_first >= 22) | (hour_first < 5)) & ((hour_last >= 22) | (hour_last < 5))
    keep = np.flatnonzero((g.count >= 2) & (round_pair | night))
    if len(keep) == 0:
        return []
    a = np.minimum(g.src[keep], g.dst[keep])
    b = np.maximum(g.src[keep], g.dst[keep])
    und = sp.coo_matrix((np.ones(len(keep)), (a, b)), shape=(g.n, g.n)).tocsr()
    und.data[:] = 1.0
    sym = (und + und.T).tocsr()
    sym.data[:] = 1.0
    hub = np.diff(sym.indptr) > cfg.max_members
    if hub.any():
        keep_rows = sp.diags((~hub).astype(np.float64))
        sym = (keep_rows @ sym @ keep_rows).tocsr()
        sym.eliminate_zeros()
    _, labels = connected_components(sym, directed=False)
    sizes = np.bincount(labels, minlength=g.n)
    has_edge = np.diff(sym.indptr) > 0
    ok = np.unique(labels[has_edge & (sizes[labels] >= cfg.min_members)])
    ok = ok[sizes[ok] <= cfg.max_members]
    out = []
    for members in _groups(labels, ok):
        k = len(members)
        density = float(sym[members][:, members].nnz) / (k * (k - 1))
        if density >= cfg.round_min_density:
            out.append(Candidate(members, None, "round_night", density))
    return out


def mule_fan_out(g: RingGraph, cfg: DetectConfig) -> list[Candidate]:
    """Distributors: one account pays many accounts that each pass most of it on, and for
    which it is the main source of money."""
    if len(g.src) == 0:
        return []
    r = g.dst
    mule = (g.out_total[r] >= cfg.pass_through * g.amount) & (g.amount >= 0.5 * g.in_total[r])
    per_source = np.bincount(g.src[mule], minlength=g.n)
    out = []
    for v in np.flatnonzero(per_source >= cfg.fan_min).tolist():
        pos = g.out_pairs(v)
        mules = pos[mule[pos]]
        members = np.unique(np.concatenate([[v], g.dst[mules]]))
        if not cfg.min_members <= len(members) <= cfg.max_members:
            continue
        strength = float(g.amount[mules].sum() / max(g.out_total[v], 1e-9))
        out.append(Candidate(members, "mule_fan_out", "fan_out", strength, hub=v))
    return out


def collusion(g: RingGraph, cfg: DetectConfig) -> list[Candidate]:
    """Dense groups of repeated transfers: edges in enough triangles, then components that
    are dense enough."""
    if len(g.src) == 0:
        return []
    a = np.minimum(g.src, g.dst)
    b = np.maximum(g.src, g.dst)
    und = sp.coo_matrix((g.count.astype(np.float64), (a, b)), shape=(g.n, g.n)).tocsr()
    und.sum_duplicates()
    und.data = (und.data >= cfg.collusion_min_count).astype(np.float64)
    und.eliminate_zeros()
    sym = (und + und.T).tocsr()
    # Accounts with more repeated counterparties than a ring may hold are hubs (merchants,
    # popular people): left out, they would dominate the triangle count.
    hub = np.diff(sym.indptr) > cfg.max_members
    if hub.any():
        keep_rows = sp.diags((~hub).astype(np.float64))
        sym = (keep_rows @ sym @ keep_rows).tocsr()
        sym.eliminate_zeros()
    tri = (sym @ sym).multiply(sym).tocsr()
    tri.data = (tri.data >= cfg.collusion_min_triangles).astype(np.float64)
    tri.eliminate_zeros()
    _, labels = connected_components(tri, directed=False)
    sizes = np.bincount(labels, minlength=g.n)
    has_edge = np.diff(tri.indptr) > 0
    keep = np.unique(labels[has_edge & (sizes[labels] >= cfg.min_members)])
    keep = keep[sizes[keep] <= cfg.max_members]
    out = []
    for members in _groups(labels, keep):
        sub = sym[members][:, members]
        k = len(members)
        density = float(sub.nnz) / (k * (k - 1))
        if density < cfg.collusion_min_density:
            continue
        out.append(Candidate(members, "collusion", "dense_transfers", density))
    return out


def communities(g: RingGraph, cfg: DetectConfig) -> list[Candidate]:
    """Leiden communities of the suspicious subgraph: accounts with a high fraud probability
    or a fraud label (seeds) and their transfer and shared-link neighbours."""
    seeds = (g.risk >= cfg.seed_risk) | (g.labels == 1)
    if not seeds.any() or len(g.src) == 0:
        return []
    touch = seeds[g.src] | seeds[g.dst]
    la = seeds[g.link_a] | seeds[g.link_b]
    ea = np.concatenate([g.src[touch], g.link_a[la]])
    eb = np.concatenate([g.dst[touch], g.link_b[la]])
    nodes, inv = np.unique(np.concatenate([ea, eb]), return_inverse=True)
    edges = inv.reshape(2, -1).T
    graph = ig.Graph(n=len(nodes), edges=edges.tolist(), directed=False).simplify()
    parts = graph.community_leiden(
        objective_function="CPM",
        resolution=cfg.leiden_resolution,
        n_iterations=2,
    )
    membership = np.asarray(parts.membership, dtype=np.int64)
    sizes = np.bincount(membership)
    seed_count = np.bincount(membership, weights=seeds[nodes])
    keep = np.flatnonzero(
        (sizes >= cfg.min_members)
        & (sizes <= cfg.max_members)
        & (seed_count >= cfg.seed_share * sizes)
    )
    return [
        Candidate(nodes[m], None, "communities", float(seed_count[c] / sizes[c]))
        for c, m in zip(keep.tolist(), _groups(membership, keep), strict=True)
    ]
