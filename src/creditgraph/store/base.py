"""The GraphStore contract shared by every backend, and the graph walks built on it.

Backends implement storage primitives (upserts, ``adjacent``, ``snapshot``...). The walks
(capped neighbourhood, shortest paths) live here once, on top of ``adjacent``, so every backend
answers investigators identically.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager

import orjson

from creditgraph.domain import (
    LINK_TYPE_RE,
    RING_STATUSES,
    TRANSFER,
    Account,
    AccountColumns,
    Counts,
    GraphEdge,
    LabelColumns,
    LinkColumns,
    Page,
    Path,
    Ring,
    RingKind,
    RingStatus,
    Score,
    Snapshot,
    Subgraph,
    Transfer,
    TransferColumns,
)
from creditgraph.errors import InvalidInput, NotFound

MAX_HOPS = 3
MAX_PATH_HOPS = 6
#: A neighbourhood view stops growing at this many accounts (hops 3 x limit 1000 is a lot).
MAX_NEIGHBOURHOOD_NODES = 5000
#: A shortest-path search that reaches this many accounts stops: it is not an investigation.
MAX_PATH_FRONTIER = 200_000
#: Largest page any paginated read returns, and the largest offset (stores take 64-bit ints).
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000_000


def check_page(limit: int, offset: int) -> None:
    """Validate pagination arguments of the paginated reads."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")


def check_relations(relations: Iterable[str] | None) -> frozenset[str] | None:
    """Validate a relation filter: ``TRANSFER`` or UPPER_SNAKE link types; None means all."""
    if relations is None:
        return None
    rels = frozenset(relations)
    for r in rels:
        if r != TRANSFER and not LINK_TYPE_RE.match(r):
            raise InvalidInput(f"unknown relation {r!r}: use TRANSFER or an UPPER_SNAKE link type")
    return rels


def check_ring_status(status: str) -> RingStatus:
    """A valid ring status, or ``InvalidInput`` naming the allowed ones."""
    for s in RING_STATUSES:
        if s == status:
            return s
    raise InvalidInput(f"unknown ring status {status!r}: use one of {', '.join(RING_STATUSES)}")


class GraphStore(ABC):
    """What every backend provides. Writes are idempotent by key:

    accounts by ``account_id`` (features merged), transfers by ``transfer_id`` (immutable
    events: an id already stored is left as is), links by (unordered pair, type), labels by
    ``account_id`` (latest wins), scores by ``account_id``, rings by ``ring_id``.
    """

    backend: str

    # -- lifecycle ---------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abstractmethod
    def apply_schema(self) -> list[str]:
        """Create constraints / indexes / tables idempotently; returns what was applied.
        Every backend runs it when it opens (``open_store``), so writes need not."""

    @abstractmethod
    def import_scope(self, kind: str = "", rows: int = 0) -> AbstractContextManager[None]:
        """Scope of one file import of ``rows`` rows of ``kind``. Embedded: one transaction
        (all or nothing). Neo4j: each batch commits alone; a re-run resumes idempotently."""

    # -- writes ------------------------------------------------------------------------------
    @abstractmethod
    def upsert_accounts(self, batch: AccountColumns) -> int:
        """Insert or update accounts; returns how many rows were inserted or changed."""

    @abstractmethod
    def upsert_transfers(self, batch: TransferColumns) -> int:
        """Insert transfers whose id is not stored yet; returns how many were inserted."""

    @abstractmethod
    def upsert_links(self, batch: LinkColumns) -> int:
        """Insert or update canonical links; returns how many were inserted or changed."""

    @abstractmethod
    def upsert_labels(self, batch: LabelColumns) -> int:
        """Set each account's label; returns how many were inserted or changed."""

    @abstractmethod
    def write_scores(self, scores: Sequence[Score]) -> int:
        """Replace the scores of the given accounts; returns how many were written."""

    @abstractmethod
    def write_rings(self, rings: Sequence[Ring]) -> int:
        """Insert or replace rings (with members and evidence) by ``ring_id``."""

    @abstractmethod
    def delete_rings(self, ring_ids: Sequence[str]) -> int:
        """Remove rings by id; returns how many existed."""

    @abstractmethod
    def update_ring(self, ring_id: str, status: str, note: str | None = None) -> Ring:
        """Set a ring's status (``InvalidInput`` unless one of ``RING_STATUSES``) and, when
        ``note`` is given, its note; returns the updated ring, ``NotFound`` if absent."""

    # -- reads -------------------------------------------------------------------------------
    @abstractmethod
    def missing_accounts(self, account_ids: Sequence[str]) -> list[str]:
        """The given ids that are not stored, in input order."""

    @abstractmethod
    def counts(self) -> Counts:
        """Sizes of the stored graph."""

    @abstractmethod
    def get_account(self, account_id: str) -> Account:
        """One account with its label and score; ``NotFound`` if absent."""

    @abstractmethod
    def get_labels(self, account_ids: Sequence[str]) -> LabelColumns:
        """Stored labels (with source and time) of the given accounts that have one, ordered
        by account id."""

    @abstractmethod
    def get_scores(self, account_ids: Sequence[str] | None = None) -> list[Score]:
        """Stored scores (all when ``account_ids`` is None), ordered by account id."""

    @abstractmethod
    def list_rings(self) -> list[Ring]:
        """All rings, highest score first (ties by id)."""

    @abstractmethod
    def get_ring(self, ring_id: str) -> Ring:
        """One ring; ``NotFound`` if absent."""

    @abstractmethod
    def rings_of(self, account_id: str) -> list[Ring]:
        """The rings an account belongs to, highest score first; ``NotFound`` for an unknown
        account."""

    @abstractmethod
    def adjacent(
        self, account_ids: Sequence[str], relations: frozenset[str] | None = None
    ) -> list[GraphEdge]:
        """Every edge touching the given accounts, transfers aggregated per ordered pair.

        Link edges come in canonical order (``src < dst``); transfer edges keep direction.
        """

    @abstractmethod
    def transfers_of(
        self,
        account_id: str,
        *,
        since: float | None = None,
        until: float | None = None,
        counterparty: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Transfer]:
        """The account's transfers in either direction, newest first (ties by id, descending),
        with ``since <= timestamp <= until`` and, if given, only those with ``counterparty``.
        ``NotFound`` if the account is absent."""

    @abstractmethod
    def transfers_among(self, account_ids: Sequence[str], *, limit: int = 200) -> list[Transfer]:
        """Transfers whose both ends are among ``account_ids``, newest first, at most ``limit``."""

    @abstractmethod
    def find_rings(
        self,
        *,
        statuses: Sequence[RingStatus] | None = None,
        kinds: Sequence[RingKind] | None = None,
        min_score: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Ring]:
        """Rings matching the filters (None: any), highest score first (ties by id)."""

    @abstractmethod
    def ring_memberships(self, account_ids: Sequence[str]) -> dict[str, list[str]]:
        """Ring ids (sorted) of each given account that belongs to at least one ring."""

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """A consistent export of accounts, features, labels and typed edges for ML."""

    # -- helpers shared by the backends ---------------------------------------------------------
    def _require_accounts(self, account_ids: Sequence[str], what: str) -> None:
        missing = self.missing_accounts(account_ids)
        if missing:
            raise NotFound(f"{what}: unknown account(s) {', '.join(missing[:5])}")

    # -- walks shared by all backends -----------------------------------------------------------
    def neighbourhood(
        self,
        account_id: str,
        hops: int = 1,
        limit: int = 25,
        relations: Iterable[str] | None = None,
        max_nodes: int = MAX_NEIGHBOURHOOD_NODES,
    ) -> Subgraph:
        """Accounts within ``hops`` of ``account_id``; each expanded account contributes at
        most ``limit`` neighbours, strongest ties first (most connecting edges, then id), and
        the whole view stops growing at ``max_nodes`` accounts. An account that could not
        contribute all its neighbours is in ``capped`` with its full neighbour count."""
        if not 1 <= hops <= MAX_HOPS:
            raise InvalidInput(f"hops must be between 1 and {MAX_HOPS}, got {hops}")
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
        rels = check_relations(relations)
        if self.missing_accounts([account_id]):
            raise NotFound(f"account {account_id!r} not found")
        seen: dict[str, None] = {account_id: None}
        frontier = [account_id]
        capped: dict[str, int] = {}
        for _ in range(hops):
            by_node = _group_by_endpoint(self.adjacent(frontier, rels), frontier)
            nxt: list[str] = []
            for node in frontier:
                ranked = _rank_neighbours(node, by_node.get(node, []))
                if len(ranked) > limit:
                    capped[node] = len(ranked)
                for other in ranked[:limit]:
                    if other in seen:
                        continue
                    if len(seen) >= max_nodes:
                        capped[node] = len(ranked)
                        break
                    seen[other] = None
                    nxt.append(other)
            frontier = nxt
            if not frontier:
                break
        nodes = list(seen)
        inside = set(nodes)
        edges = [e for e in self.adjacent(nodes, rels) if e.src in inside and e.dst in inside]
        edges.sort(key=lambda e: (e.src, e.dst, e.relation))
        return Subgraph(
            center=account_id,
            nodes=nodes,
            edges=_dedupe(edges),
            truncated=bool(capped),
            capped=capped,
        )

    def shortest_paths(
        self,
        src: str,
        dst: str,
        max_hops: int = 4,
        relations: Iterable[str] | None = None,
        limit: int = 10,
    ) -> list[Path]:
        """All shortest account sequences from ``src`` to ``dst`` (edges taken undirected),
        at most ``limit``, each hop with the edges that join the pair."""
        if not 1 <= max_hops <= MAX_PATH_HOPS:
            raise InvalidInput(f"max_hops must be between 1 and {MAX_PATH_HOPS}, got {max_hops}")
        if not 1 <= limit <= 100:
            raise InvalidInput(f"limit must be between 1 and 100, got {limit}")
        rels = check_relations(relations)
        missing = self.missing_accounts([src, dst])
        if missing:
            raise NotFound(f"account {missing[0]!r} not found")
        if src == dst:
            return [Path(accounts=[src], hops=[])]
        # Bidirectional BFS: parents on each side, expanding the smaller frontier first.
        parents: tuple[dict[str, list[str]], dict[str, list[str]]] = ({src: []}, {dst: []})
        frontiers: tuple[list[str], list[str]] = ([src], [dst])
        depth = [0, 0]
        meet: set[str] = set()
        while not meet and depth[0] + depth[1] < max_hops and frontiers[0] and frontiers[1]:
            side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
            mine, other = parents[side], parents[1 - side]
            expanding = set(frontiers[side])
            nxt: dict[str, list[str]] = defaultdict(list)
            for e in self.adjacent(frontiers[side], rels):
                for a, b in ((e.src, e.dst), (e.dst, e.src)):
                    if a in expanding and b not in mine and a not in nxt[b]:
                        nxt[b].append(a)
            for node, ps in nxt.items():
                mine[node] = ps
                if node in other:
                    meet.add(node)
            frontier_list = sorted(nxt)
            if len(mine) + len(other) > MAX_PATH_FRONTIER:
                raise InvalidInput("path search reached too many accounts: lower max_hops")
            frontiers = (
                (frontier_list, frontiers[1]) if side == 0 else (frontiers[0], frontier_list)
            )
            depth[side] += 1
        if not meet:
            return []
        sequences: list[list[str]] = []
        for m in sorted(meet):
            for left in _walk_back(parents[0], m):
                for right in _walk_back(parents[1], m):
                    sequences.append(list(reversed(left)) + right[1:])
        sequences.sort()
        sequences = sequences[:limit]
        pair_edges = _edges_by_pair(self.adjacent(sorted({a for s in sequences for a in s}), rels))
        return [
            Path(
                accounts=s,
                hops=[pair_edges.get(_pair_key(a, b), []) for a, b in itertools.pairwise(s)],
            )
            for s in sequences
        ]


def score_row(s: Score) -> tuple[str, float, float, str, str, float]:
    """A score as stored: reasons serialised as JSON text."""
    reasons = orjson.dumps(s.reasons).decode()
    return (
        s.account_id,
        s.fraud_probability,
        s.social_credit,
        s.model_version,
        reasons,
        s.scored_at,
    )


def _walk_back(parents: dict[str, list[str]], node: str) -> Iterator[list[str]]:
    """Every chain from ``node`` back to the BFS root (node first)."""
    ps = parents[node]
    if not ps:
        yield [node]
        return
    for p in sorted(ps):
        for chain in _walk_back(parents, p):
            yield [node, *chain]


def _pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _edges_by_pair(edges: Iterable[GraphEdge]) -> dict[tuple[str, str], list[GraphEdge]]:
    out: dict[tuple[str, str], list[GraphEdge]] = defaultdict(list)
    for e in _dedupe(sorted(edges, key=lambda e: (e.src, e.dst, e.relation))):
        out[_pair_key(e.src, e.dst)].append(e)
    return out


def _group_by_endpoint(
    edges: Iterable[GraphEdge], nodes: Sequence[str]
) -> dict[str, list[GraphEdge]]:
    wanted = set(nodes)
    out: dict[str, list[GraphEdge]] = defaultdict(list)
    for e in edges:
        if e.src in wanted:
            out[e.src].append(e)
        if e.dst in wanted and e.dst != e.src:
            out[e.dst].append(e)
    return out


def _rank_neighbours(node: str, edges: Iterable[GraphEdge]) -> list[str]:
    weight: dict[str, int] = defaultdict(int)
    for e in edges:
        other = e.dst if e.src == node else e.src
        weight[other] += e.count
    return sorted(weight, key=lambda n: (-weight[n], n))


def _dedupe(edges: list[GraphEdge]) -> list[GraphEdge]:
    """Drop repeats of the same edge (sorted input) that arise when both ends were queried."""
    out: list[GraphEdge] = []
    for e in edges:
        if not out or (out[-1].src, out[-1].dst, out[-1].relation) != (e.src, e.dst, e.relation):
            out.append(e)
    return out
