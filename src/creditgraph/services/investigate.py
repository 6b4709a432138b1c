"""Read views for investigators: an account, its neighbourhood, paths, rings, transfers.

Every function returns plain JSON-ready dicts (graph JSON: ``nodes`` and ``edges``), because
the API serialises them with orjson as they are: neighbourhoods run to hundreds of nodes, and
per-field validation would cost more than the store reads (PERFORMANCE-NOTES.md).

Graph JSON, shared by the neighbourhood, path and ring views:
- node ``{id, fraud_probability, social_credit, risk, rings, center?, capped?, hub?,
  summarised?, degree?, more?}``; ``risk`` is a band (``RISK_BANDS``), ``unscored`` without a
  stored score; ``capped`` is the node's number of relationships when the view does not draw
  all of them (the per-account ``limit``, the view's node budget, or a hub not walked
  through); ``hub`` marks an account over the hub threshold and ``summarised`` one whose
  neighbours were not walked for that reason; ``degree`` gives such a node's relationships
  per relation and ``more`` how many of them per relation the view does not draw ("+N more").
- edge ``{id, source, target, relation, directed, count, total_amount, evidence?}``; transfers
  between an ordered pair are one edge (``count`` transfers, ``total_amount`` summed).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from creditgraph.domain import (
    TRANSFER,
    GraphEdge,
    Reason,
    ReasonCode,
    Ring,
    RingKind,
    RingStatus,
    Score,
    Transfer,
)
from creditgraph.errors import NotFound
from creditgraph.store.base import HUB_DEGREE, PATH_DEADLINE_S, GraphStore

# The codes of ``ml.explain`` (kept off its import: that module loads torch).
NEIGHBOUR_RAISES = ReasonCode.NEIGHBOUR_RAISES_RISK
NEIGHBOUR_LOWERS = ReasonCode.NEIGHBOUR_LOWERS_RISK

if TYPE_CHECKING:  # an annotation only: the view workers (services.viewpool) need no torch
    from creditgraph.services.inductive import InductiveScorer

#: Lower bounds of the risk bands on the fraud probability, highest first. The colours of
#: the investigator page follow these bands; the payment decision has its own thresholds.
RISK_BANDS: tuple[tuple[str, float], ...] = (("high", 0.5), ("elevated", 0.2), ("low", 0.0))
#: Transfers listed per hop of a path (newest first; the hop says how many there are).
TRANSFERS_PER_HOP = 20
#: Transfers among a ring's members shown on its timeline (newest first).
RING_TIMELINE = 200
#: A ring's internal graph stays readable up to this many members; larger rings list them.
RING_GRAPH_MEMBERS = 300


P = ParamSpec("P")
R = TypeVar("R")


def _one_read(
    fn: Callable[Concatenate[GraphStore, P], R],
) -> Callable[Concatenate[GraphStore, P], R]:
    """Run a view's store reads in one read transaction (``GraphStore.read_view``)."""

    @functools.wraps(fn)
    def run(store: GraphStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with store.read_view():
            return fn(store, *args, **kwargs)

    return run


def risk_band(fraud_probability: float | None) -> str:
    """The band of a fraud probability; ``unscored`` for None."""
    if fraud_probability is None:
        return "unscored"
    for name, low in RISK_BANDS:
        if fraud_probability >= low:
            return name
    return RISK_BANDS[-1][0]


def transfer_json(t: Transfer) -> dict[str, Any]:
    """A stored transfer as JSON."""
    return {
        "transfer_id": t.transfer_id,
        "src": t.src,
        "dst": t.dst,
        "amount": t.amount,
        "timestamp": t.timestamp,
        "currency": t.currency,
        "channel": t.channel,
    }


def edge_id(src: str, dst: str, relation: str) -> str:
    """Stable id of a graph edge (the page merges graphs by it)."""
    return f"{src}|{dst}|{relation}"


def _edge_json(e: GraphEdge, evidence: set[tuple[str, str, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": edge_id(e.src, e.dst, e.relation),
        "source": e.src,
        "target": e.dst,
        "relation": e.relation,
        "directed": e.directed,
        "count": e.count,
        "total_amount": e.total_amount,
    }
    if evidence is not None:
        out["evidence"] = _is_evidence(e, evidence)
    return out


def _nodes_json(
    store: GraphStore,
    account_ids: Sequence[str],
    *,
    center: str | None = None,
    capped: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Nodes with their stored scores and ring memberships (two reads for all of them)."""
    scores = {s.account_id: s for s in store.get_scores(account_ids)}
    rings = store.ring_memberships(account_ids)
    out = []
    for a in account_ids:
        s = scores.get(a)
        node: dict[str, Any] = {
            "id": a,
            "fraud_probability": None if s is None else s.fraud_probability,
            "social_credit": None if s is None else s.social_credit,
            "risk": risk_band(None if s is None else s.fraud_probability),
            "rings": rings.get(a, []),
        }
        if a == center:
            node["center"] = True
        if capped and a in capped:
            node["capped"] = capped[a]
        out.append(node)
    return out


def _not_drawn(
    degrees: dict[str, dict[str, int]], edges: Sequence[GraphEdge]
) -> dict[str, dict[str, int]]:
    """Per account and relation, its relationships the drawn edges do not account for."""
    drawn: dict[str, dict[str, int]] = {a: {} for a in degrees}
    for e in edges:
        for end in (e.src, e.dst):
            if end in drawn:
                drawn[end][e.relation] = drawn[end].get(e.relation, 0) + e.count
    return {
        a: {r: n - drawn[a].get(r, 0) for r, n in sorted(d.items()) if n > drawn[a].get(r, 0)}
        for a, d in degrees.items()
    }


# -- account --------------------------------------------------------------------------------------
def _split_reasons(
    reasons: Iterable[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stored reasons by the score they explain (``evidence.target``; fraud by default)."""
    fraud: list[dict[str, Any]] = []
    social: list[dict[str, Any]] = []
    for r in reasons:
        target = (r.get("evidence") or {}).get("target", "fraud")
        (social if target == "social" else fraud).append(r)
    return fraud, social


def _score_json(score: Score | None) -> dict[str, Any] | None:
    if score is None:
        return None
    return {
        "fraud_probability": score.fraud_probability,
        "social_credit": score.social_credit,
        "risk": risk_band(score.fraud_probability),
        "model_version": score.model_version,
        "scored_at": score.scored_at,
    }


def social_credit_explanation(
    score: Score | None, social_reasons: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the social credit means for this account, in words, with the relations behind it."""
    if score is None:
        return {
            "summary": "Not scored yet: the account joined after the last batch scoring run.",
            "reasons": [],
            "definition": "docs/social_credit.md",
        }
    credit = score.social_credit
    level = "high" if credit >= 90 else "middling" if credit >= 60 else "low"
    return {
        "summary": (
            f"Social credit {credit:.1f} of 100 ({level} trust from relationships alone). It is "
            "computed from the account's direct ties (who it is linked to and pays, and how "
            "strongly), never from its own attributes, its labels or ring membership. Higher "
            "means the relationships look less like those of confirmed fraud; compare accounts "
            "by rank, the scale is compressed near the top."
        ),
        "reasons": social_reasons,
        "definition": "docs/social_credit.md",
    }


def tie_reasons(scorer: InductiveScorer | None, account_id: str) -> list[Reason]:
    """The direct ties that raise or lower the account's fraud risk most, as the serving
    model attributes them on the account's capped neighbourhood (batch reasons stop at
    relations). Empty without a loaded model or for an account its snapshot lacks."""
    if scorer is None:
        return []
    try:
        reasons = scorer.score(account_id).reasons
    except NotFound:
        return []
    return [r for r in reasons if r["code"] in (NEIGHBOUR_RAISES, NEIGHBOUR_LOWERS)]


@_one_read
def account_view(
    store: GraphStore, account_id: str, scorer: InductiveScorer | None = None
) -> dict[str, Any]:
    """Attributes, scores, reasons (fraud and social), the ties behind the fraud risk (with
    ``scorer``, the serving model), the social-credit explanation, the rings the account
    belongs to and how many transfers it has. ``NotFound`` if absent."""
    account = store.get_account(account_id)
    rings = store.rings_of(account_id)
    fraud_reasons, social_reasons = _split_reasons(
        [] if account.score is None else account.score.reasons
    )
    return {
        "account_id": account.account_id,
        "created_at": account.created_at,
        "features": account.features,
        "properties": account.properties,
        "label": account.label,
        "score": _score_json(account.score),
        "reasons": fraud_reasons,
        "ties": tie_reasons(scorer, account_id),
        "social_credit_explanation": social_credit_explanation(account.score, social_reasons),
        "rings": [_ring_summary(r) for r in rings],
        "transfers": store.transfers_of(account_id, limit=1).total,
    }


# -- graph views ----------------------------------------------------------------------------------
@_one_read
def neighbourhood_graph(
    store: GraphStore,
    account_id: str,
    *,
    hops: int = 1,
    limit: int = 25,
    relations: Sequence[str] | None = None,
    hub_degree: int = HUB_DEGREE,
    through_hubs: bool = False,
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """The capped, hub-aware neighbourhood as graph JSON (``TooExpensive`` past
    ``deadline_s``); ``truncated`` says something was
    left out, ``capped`` names the accounts not fully drawn with their relationship counts,
    ``hubs`` the accounts over ``hub_degree`` and ``summarised`` those a further hop did not
    walk through (``through_hubs`` walks them)."""
    sub = store.neighbourhood(
        account_id,
        hops=hops,
        limit=limit,
        relations=relations,
        hub_degree=hub_degree,
        through_hubs=through_hubs,
        deadline_s=deadline_s,
    )
    nodes = _nodes_json(store, sub.nodes, center=sub.center, capped=sub.capped)
    more = _not_drawn(sub.degrees, sub.edges)
    hubs, summarised = set(sub.hubs), set(sub.summarised)
    for node in nodes:
        a = node["id"]
        if a in hubs:
            node["hub"] = True
        if a in summarised:
            node["summarised"] = True
        if a in sub.degrees:
            node["degree"] = dict(sorted(sub.degrees[a].items()))
            node["more"] = more[a]
    return {
        "center": sub.center,
        "hops": hops,
        "limit": limit,
        "relations": None if relations is None else sorted(set(relations)),
        "hub_degree": hub_degree,
        "through_hubs": through_hubs,
        "truncated": sub.truncated,
        "capped": sub.capped,
        "hubs": sub.hubs,
        "summarised": sub.summarised,
        "nodes": nodes,
        "edges": [_edge_json(e) for e in sub.edges],
    }


@_one_read
def paths_view(
    store: GraphStore,
    src: str,
    dst: str,
    *,
    max_hops: int = 4,
    relations: Sequence[str] | None = None,
    limit: int = 10,
    hub_degree: int = HUB_DEGREE,
    through_hubs: bool = False,
    deadline_s: float = PATH_DEADLINE_S,
) -> dict[str, Any]:
    """Shortest paths between two accounts (edges taken undirected), each hop with its
    edges and, where money moved, the transfers between the pair (newest first).
    ``complete`` is false when the search stopped early; ``cut_short`` says why."""
    search = store.shortest_paths(
        src,
        dst,
        max_hops=max_hops,
        relations=relations,
        limit=limit,
        hub_degree=hub_degree,
        through_hubs=through_hubs,
        deadline_s=deadline_s,
    )
    paths = search.paths
    pair_transfers: dict[tuple[str, str], tuple[list[dict[str, Any]], int]] = {}
    out_paths = []
    edges: dict[str, dict[str, Any]] = {}
    for path in paths:
        hops = []
        for (a, b), hop_edges in zip(itertools.pairwise(path.accounts), path.hops, strict=True):
            transfers: list[dict[str, Any]] = []
            total = 0
            if any(e.relation == TRANSFER for e in hop_edges):
                key = (a, b) if a <= b else (b, a)
                if key not in pair_transfers:
                    page = store.transfers_of(key[0], counterparty=key[1], limit=TRANSFERS_PER_HOP)
                    pair_transfers[key] = ([transfer_json(t) for t in page.items], page.total)
                transfers, total = pair_transfers[key]
            for e in hop_edges:
                edges.setdefault(edge_id(e.src, e.dst, e.relation), _edge_json(e))
            hops.append(
                {
                    "from": a,
                    "to": b,
                    "relations": sorted({e.relation for e in hop_edges}),
                    "edges": [edge_id(e.src, e.dst, e.relation) for e in hop_edges],
                    "transfers": transfers,
                    "transfers_total": total,
                }
            )
        out_paths.append({"accounts": path.accounts, "hops": hops})
    accounts = sorted({a for p in paths for a in p.accounts})
    return {
        "from": src,
        "to": dst,
        "max_hops": max_hops,
        "found": bool(paths),
        "length": len(paths[0].accounts) - 1 if paths else None,
        "complete": search.complete,
        "cut_short": search.cut_short,
        "hubs_skipped": search.hubs_skipped,
        "through_hubs": through_hubs,
        "paths": out_paths,
        "nodes": _nodes_json(store, accounts),
        "edges": list(edges.values()),
    }


# -- rings ----------------------------------------------------------------------------------------
def _ring_summary(ring: Ring) -> dict[str, Any]:
    return {
        "ring_id": ring.ring_id,
        "kind": ring.kind,
        "score": ring.score,
        "status": ring.status,
        "note": ring.note,
        "size": len(ring.members),
        "detected_at": ring.detected_at,
    }


@_one_read
def ring_queue(
    store: GraphStore,
    *,
    statuses: Sequence[RingStatus] | None = None,
    kinds: Sequence[RingKind] | None = None,
    min_score: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """The alert queue: rings matching the filters, highest score first, one page, each with
    its members' highest fraud probability."""
    page = store.find_rings(
        statuses=statuses, kinds=kinds, min_score=min_score, limit=limit, offset=offset
    )
    members = sorted({m for r in page.items for m in r.members})
    risk = {s.account_id: s.fraud_probability for s in store.get_scores(members)}
    items = []
    for r in page.items:
        known = [risk[m] for m in r.members if m in risk]
        items.append(
            _ring_summary(r)
            | {
                "members_preview": r.members[:5],
                "max_member_risk": max(known) if known else None,
            }
        )
    return {"items": items, "total": page.total, "limit": page.limit, "offset": page.offset}


def evidence_edges(evidence: dict[str, Any]) -> list[dict[str, str]]:
    """The account pairs a ring's evidence points at, as ``{source, target, relation}``.

    Understands ``cycles`` (account sequences; each consecutive pair, closing the cycle, is a
    transfer), and ``edges`` / ``transfers`` / ``links`` / ``shared_links`` items written as
    ``{src|source|a, dst|target|b, relation|type}`` or ``[src, dst, relation?]`` (the
    detector writes ``transfers`` as ``{src, dst, ...}`` and ``shared_links`` as
    ``{a, b, type}``).
    """
    out: dict[tuple[str, str, str], dict[str, str]] = {}

    def add(a: Any, b: Any, relation: Any) -> None:
        if isinstance(a, str) and isinstance(b, str):
            rel = relation if isinstance(relation, str) else TRANSFER
            out.setdefault((a, b, rel), {"source": a, "target": b, "relation": rel})

    for cycle in evidence.get("cycles") or []:
        seq = [a for a in cycle if isinstance(a, str)] if isinstance(cycle, list) else []
        for a, b in zip(seq, seq[1:] + seq[:1], strict=True):
            if a != b:
                add(a, b, TRANSFER)
    for key, default in (
        ("edges", TRANSFER),
        ("transfers", TRANSFER),
        ("links", None),
        ("shared_links", None),
    ):
        for item in evidence.get(key) or []:
            if isinstance(item, dict):
                add(
                    item.get("src", item.get("source", item.get("a"))),
                    item.get("dst", item.get("target", item.get("b"))),
                    item.get("relation", item.get("type", default)),
                )
            elif isinstance(item, list | tuple) and len(item) >= 2:
                add(item[0], item[1], item[2] if len(item) > 2 else default)
    return list(out.values())


def _is_evidence(e: GraphEdge, evidence: set[tuple[str, str, str]]) -> bool:
    if (e.src, e.dst, e.relation) in evidence:
        return True
    # Links are undirected: evidence may name the pair either way round.
    return not e.directed and (e.dst, e.src, e.relation) in evidence


@_one_read
def ring_detail(store: GraphStore, ring_id: str) -> dict[str, Any]:
    """A ring with its members as graph nodes (scores, rings), its evidence, the edges among
    its members with evidence edges flagged (left out above ``RING_GRAPH_MEMBERS`` members),
    and the timeline of transfers among them."""
    ring = store.get_ring(ring_id)
    members = ring.members
    flagged = evidence_edges(ring.evidence)
    evidence_keys = {(e["source"], e["target"], e["relation"]) for e in flagged}
    nodes = _nodes_json(store, members)
    edges: list[dict[str, Any]] = []
    if len(members) <= RING_GRAPH_MEMBERS:
        # A member that is a hub (a mule's collection account) is joined by pair look-ups,
        # never by reading its whole list.
        heavy = {m for m, t in store.expand(members, None, 0).items() if t.total > HUB_DEGREE}
        edges = [_edge_json(e, evidence_keys) for e in store.edges_among(members, None, heavy)]
    timeline = store.transfers_among(members, limit=RING_TIMELINE)
    return _ring_summary(ring) | {
        "members": nodes,
        "evidence": ring.evidence,
        "evidence_edges": flagged,
        "edges": edges,
        "timeline": [transfer_json(t) for t in timeline],
    }


def set_verdict(
    store: GraphStore, ring_id: str, status: str, note: str | None = None
) -> dict[str, Any]:
    """Set a ring's status (and note, when given) through the rings service, so confirmed
    and dismissed verdicts become training labels; returns the ring's summary and how many
    labels were written."""
    # Imported here: the ring detector loads scikit-learn, which the view workers never need.
    from creditgraph.services.rings import set_ring_status

    change = set_ring_status(store, ring_id, status, note)
    return _ring_summary(change.ring) | {"labels_written": change.labels_written}


# -- transfers ------------------------------------------------------------------------------------
@_one_read
def account_transfers(
    store: GraphStore,
    account_id: str,
    *,
    since: float | None = None,
    until: float | None = None,
    counterparty: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """One page of the account's transfers, newest first."""
    page = store.transfers_of(
        account_id,
        since=since,
        until=until,
        counterparty=counterparty,
        limit=limit,
        offset=offset,
    )
    return {
        "account_id": account_id,
        "items": [transfer_json(t) for t in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }
