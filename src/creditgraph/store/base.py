"""The GraphStore contract shared by every backend, and the graph walks built on it.

Backends implement storage primitives (upserts, ``adjacent``, ``expand``, ``snapshot``...).
The walks (capped neighbourhood, shortest paths) live here once, on top of ``expand`` (one
store query per hop: every frontier account's strongest ties and its degree, without reading
the rest), so every backend answers investigators identically. An account with more
relationships than the hub threshold is summarised, not walked through, unless asked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

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
    Obligation,
    ObligationColumns,
    Page,
    Path,
    PathSearch,
    Ring,
    RingKind,
    RingStatus,
    Score,
    Snapshot,
    Subgraph,
    Ties,
    Transfer,
    TransferColumns,
    TransferEvents,
)
from creditgraph.errors import (
    AccountConflict,
    ChangedAccount,
    ChangedTransfer,
    InvalidInput,
    NotFound,
    TooExpensive,
    TransferConflict,
)
from creditgraph.outcomes import (
    ReviewItem,
    ReviewStatus,
    TransferArrays,
    TransferLabelColumns,
    TransferLog,
    transfer_arrays_of,
)

MAX_HOPS = 3
MAX_PATH_HOPS = 6
#: A neighbourhood view stops growing at this many accounts (hops 3 x limit 1000 is a lot).
MAX_NEIGHBOURHOOD_NODES = 5000
#: A shortest-path search that reaches this many accounts stops: it is not an investigation.
MAX_PATH_FRONTIER = 200_000
#: An account with more relationships than this is a hub: drawn with its counts, and neither
#: a neighbourhood nor a path search walks through it unless asked (the API's setting).
HUB_DEGREE = 1000
#: A path search follows at most this many ties per account, strongest first.
PATH_FANOUT = 100
#: A path search stops enumerating shortest routes after this many.
MAX_PATHS_ENUMERATED = 1000
#: Accounts a path search expands per store call (between two looks at the deadline).
PATH_CHUNK = 100
#: Seconds a path search may spend expanding before it answers with what it has.
PATH_DEADLINE_S = 1.0
#: Largest page any paginated read returns, and the largest offset (stores take 64-bit ints).
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True)
class Revision:
    """Who writes account attributes, why, and which existing values they may change.

    A write may always create accounts and add attributes an account lacks (new facts).
    Changing a value an account already has (``created_at``, ``features.<name>``,
    ``properties.<name>``) is allowed when ``may_change`` is None (an admin; an operator's
    CSV import) or names the field; otherwise the whole write is refused
    (``AccountConflict``). Every change is kept as an ``AccountVersion``: the values before
    and after, when, by whom (``actor``) and why (``reason``)."""

    actor: str
    reason: str | None = None
    may_change: frozenset[str] | None = None


#: An operator's import (the CLI): may change anything; every change is versioned.
IMPORT_REVISION = Revision(actor="import")


@dataclass(frozen=True)
class AccountVersion:
    """One change to an existing account: the changed fields' values before and after."""

    account_id: str
    version: int
    changed_at: float
    actor: str
    reason: str | None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


#: An account as stored, for ``account_changes``: created_at, features, properties.
StoredAccount = tuple[float | None, Mapping[str, Any], Mapping[str, Any]]


def _differs(old: Any, new: Any) -> bool:
    both_nan = isinstance(old, float) and isinstance(new, float) and old != old and new != new
    return old != new and not both_nan


def account_changes(
    batch: AccountColumns, stored: Mapping[str, StoredAccount]
) -> list[tuple[int, str, dict[str, Any], dict[str, Any]]]:
    """Per row changing an existing account: (row, account_id, before, after) over the
    changed fields only. A value the account lacks is an addition, not a change."""
    out = []
    for i, account_id in enumerate(batch.account_id):
        if account_id not in stored:
            continue
        created_at, features, properties = stored[account_id]
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        new_created = batch.created_at[i]
        if new_created is not None and created_at is not None and _differs(created_at, new_created):
            before["created_at"], after["created_at"] = created_at, new_created
        for prefix, old_values, new_values in (
            ("features", features, batch.features[i]),
            ("properties", properties, batch.properties[i]),
        ):
            for k, v in new_values.items():
                if k in old_values and _differs(old_values[k], v):
                    before[f"{prefix}.{k}"], after[f"{prefix}.{k}"] = old_values[k], v
        if after:
            out.append((i, account_id, before, after))
    return out


def revise_accounts(
    batch: AccountColumns,
    stored: Mapping[str, StoredAccount],
    revision: Revision,
    latest: Mapping[str, int],
    now: float,
) -> list[AccountVersion]:
    """The versions ``batch`` writes over ``stored`` (``latest``: each account's last
    version number); ``AccountConflict`` naming every field ``revision`` may not change."""
    changes = account_changes(batch, stored)
    if revision.may_change is not None:
        allowed = revision.may_change
        refused = [
            ChangedAccount(a, tuple(k for k in after if k not in allowed), row)
            for row, a, _, after in changes
            if any(k not in allowed for k in after)
        ]
        if refused:
            raise AccountConflict(refused)
    counter = dict(latest)
    versions = []
    for _, account_id, before, after in changes:
        counter[account_id] = counter.get(account_id, 0) + 1
        versions.append(
            AccountVersion(
                account_id, counter[account_id], now, revision.actor, revision.reason, before, after
            )
        )
    return versions


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


#: A transfer's content in ``TransferColumns.rows()`` order after the id.
TRANSFER_FIELDS = ("src", "dst", "amount", "timestamp", "currency", "channel")


def refuse_changed_transfers(batch: TransferColumns, stored: Mapping[str, Sequence[Any]]) -> None:
    """``TransferConflict`` naming each row of ``batch`` whose id ``stored`` (id -> the
    content in ``TRANSFER_FIELDS`` order) holds with other content."""
    changed = []
    for i, row in enumerate(batch.rows()):
        old = stored.get(row[0])
        if old is None:
            continue
        fields = tuple(f for f, a, b in zip(TRANSFER_FIELDS, row[1:], old, strict=True) if a != b)
        if fields:
            changed.append(ChangedTransfer(row[0], fields, i))
    if changed:
        raise TransferConflict(changed)


ERASED = "<erased>"


def tombstone_of(account_id: str) -> str:
    """The tombstone of an erased account: a one-way digest of its id. It tells only someone
    who already holds the id that the id was erased (ids are guessable, so it is no secret)."""
    return hashlib.sha256(b"creditgraph-erased:" + account_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Erased:
    """What ``erase_account`` removed."""

    account_id: str
    transfers: int
    links: int
    label: bool
    score: bool
    rings_left: list[str]
    rings_deleted: list[str]
    transfer_labels: int = 0  # outcomes of the account's transfers
    reviews: int = 0  # review-queue items naming the account
    obligations: int = 0  # with their status history


def rings_without(rings: Sequence[Ring], account_id: str) -> tuple[list[str], list[Ring]]:
    """Of the rings ``account_id`` belongs to: the ids to delete (fewer than two members
    left) and the others without it, their evidence naming it ``ERASED``."""

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return ERASED if value == account_id else value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    delete: list[str] = []
    keep: list[Ring] = []
    for r in rings:
        members = [m for m in r.members if m != account_id]
        if len(members) < 2:
            delete.append(r.ring_id)
        else:
            keep.append(dataclasses.replace(r, members=members, evidence=scrub(r.evidence)))
    return delete, keep


class GraphStore(ABC):
    """What every backend provides. Writes are idempotent by key:

    accounts by ``account_id`` (features merged), transfers by ``transfer_id`` (immutable
    events: an id already stored with the same content is left as is, with other content it
    is a ``TransferConflict`` and the write is not applied), links by (unordered pair, type),
    labels by ``account_id`` (latest wins), scores by ``account_id``, rings by ``ring_id``.
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
    def import_scope(
        self, kind: str = "", rows: int = 0, *, atomic: bool = False
    ) -> AbstractContextManager[None]:
        """Scope of one file import of ``rows`` rows of ``kind``. Embedded: one transaction
        (all or nothing). Neo4j: each batch commits alone and a re-run resumes idempotently,
        unless ``atomic`` (an HTTP batch): then every write in the scope is one transaction."""

    def read_view(self) -> AbstractContextManager[None]:
        """Scope of one read-only view: the reads inside may share one read transaction
        (Neo4j: one session and one BEGIN/COMMIT instead of one per store call). Default:
        nothing shared."""
        return nullcontext()

    # -- writes ------------------------------------------------------------------------------
    @abstractmethod
    def upsert_accounts(self, batch: AccountColumns, revision: Revision | None = None) -> int:
        """Insert accounts and add attributes; returns how many rows were inserted or
        changed. Changing an existing value follows ``revision`` (default: an operator's
        import, ``IMPORT_REVISION``): each change is kept as an ``AccountVersion`` in the same
        transaction, and a change ``revision`` does not allow refuses the whole batch
        (``AccountConflict``, rows are batch indices)."""

    @abstractmethod
    def upsert_transfers(self, batch: TransferColumns) -> int:
        """Insert transfers whose id is not stored yet; returns how many were inserted.
        ``TransferConflict`` (nothing of the batch written) when a stored id comes with other
        content."""

    @abstractmethod
    def upsert_links(self, batch: LinkColumns) -> int:
        """Insert or update canonical links; returns how many were inserted or changed."""

    @abstractmethod
    def upsert_labels(self, batch: LabelColumns) -> int:
        """Set each account's label; returns how many were inserted or changed."""

    @abstractmethod
    def upsert_obligations(self, batch: ObligationColumns) -> int:
        """Insert new obligations and advance stored ones (``store.obligations`` rules: terms
        fixed, status forward only, each change kept with its time); returns how many rows
        were inserted or advanced. ``ObligationConflict`` (nothing of the batch written) for
        a changed term or a backward status."""

    @abstractmethod
    def write_scores(self, scores: Sequence[Score]) -> int:
        """Replace the scores of the given accounts; returns how many were written."""

    def write_score_rows(self, rows: Sequence[ScoreRow]) -> int:
        """``write_scores`` for rows as ``score_row`` makes them (reasons already JSON text):
        what batch scoring writes, a million rows at a time, without a ``Score`` object
        per account. Backends write the rows as they are; this default parses them back."""
        return self.write_scores(
            [
                Score(
                    account_id=a,
                    fraud_probability=p,
                    social_credit=c,
                    model_version=v,
                    reasons=orjson.loads(r),
                    scored_at=t,
                )
                for a, p, c, v, r, t in rows
            ]
        )

    def graph_revision(self) -> str | None:
        """A token that changes whenever anything ``snapshot`` reads may have changed, or
        None when the backend cannot tell (then every snapshot is exported afresh). Batch
        jobs key a saved snapshot by it (``services.snapshots``)."""
        return None

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

    @abstractmethod
    def erase_account(self, account_id: str) -> Erased:
        """Remove the account and everything stored about it, in one transaction: its
        transfers (with their outcomes and properties) and links (both directions), label,
        score, versions, obligations, the review items naming it, and ring memberships (a ring left
        with fewer than two members is deleted, the others' evidence says ``ERASED`` where it
        named the account), and keep its tombstone (``tombstone_of``). ``NotFound`` if the
        account is not stored."""

    @abstractmethod
    def erased(self, account_ids: Sequence[str]) -> dict[str, float]:
        """Of the given ids, those with a tombstone, with when they were erased (UNIX s)."""

    @abstractmethod
    def lift_tombstones(self, account_ids: Sequence[str]) -> int:
        """Drop the tombstones of the given ids (a forced re-import); returns how many."""

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

    def account_attributes(self, account_id: str) -> Account:
        """One account's attributes (creation time, features, properties) without its label
        and score (both None): what request-time scoring reads. ``NotFound`` if absent.
        The default reads ``get_account``; a store may read less (the embedded store skips
        the score row, a cold page per request once every account is scored)."""
        return dataclasses.replace(self.get_account(account_id), label=None, score=None)

    @abstractmethod
    def account_history(self, account_id: str) -> list[AccountVersion]:
        """The account's versions, oldest first (empty if never changed); ``NotFound`` if
        the account is absent."""

    @abstractmethod
    def get_labels(self, account_ids: Sequence[str]) -> LabelColumns:
        """Stored labels (with source and time) of the given accounts that have one, ordered
        by account id."""

    @abstractmethod
    def get_obligations(
        self,
        obligation_ids: Sequence[str] | None = None,
        *,
        account_ids: Sequence[str] | None = None,
    ) -> dict[str, Obligation]:
        """Stored obligations with their status history, by id: those with the given ids,
        or of the given accounts, or (both None) all of them."""

    @abstractmethod
    def property_values(
        self, name: str, account_ids: Sequence[str] | None = None
    ) -> dict[str, str]:
        """The text property ``name`` of the given accounts (all when None) that carry it."""

    @abstractmethod
    def transfer_events(self, account_ids: Sequence[str] | None = None) -> TransferEvents:
        """Every single transfer with an end among ``account_ids`` (all when None), ordered
        by time then id: what credit behaviour features read."""

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
    def expand(
        self,
        account_ids: Sequence[str],
        relations: frozenset[str] | None,
        limit: int,
        hub_degree: int | None = None,
    ) -> dict[str, Ties]:
        """Every given stored account's degree per relation and, unless ``limit`` is 0 or its
        total degree exceeds ``hub_degree``, its ``limit`` strongest ties (``Ties``), in one
        read, reading no more of an account's relationships than the ties it returns (an
        account's relationships outside a relation filter may be read)."""

    @abstractmethod
    def edges_between(
        self, pairs: Sequence[tuple[str, str]], relations: frozenset[str] | None = None
    ) -> list[GraphEdge]:
        """The edges joining each given pair of accounts (``adjacent``'s form), reading only
        the relationships of the pair."""

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

    def warm_request_pages(self) -> float:
        """Read once what request-time scoring reads per account (``account_attributes``,
        ``adjacent``), so the first requests after a start do not each wait on cold pages;
        returns the seconds it took. The default does nothing (a server store keeps its
        own cache)."""
        return 0.0

    # -- transfer outcomes and the review queue ------------------------------------------------
    @abstractmethod
    def missing_transfers(self, transfer_ids: Sequence[str]) -> list[str]:
        """The given transfer ids that are not stored, in input order."""

    @abstractmethod
    def upsert_transfer_labels(self, batch: TransferLabelColumns) -> int:
        """Set each transfer's outcome by ``transfer_id`` (latest wins); returns how many were
        inserted or changed. The transfers must be stored (the import checks it)."""

    @abstractmethod
    def transfer_labels(self) -> TransferLabelColumns:
        """Every stored transfer outcome, ordered by transfer id."""

    @abstractmethod
    def transfer_labels_of(self, transfer_ids: Sequence[str]) -> TransferLabelColumns:
        """The stored outcomes of the given transfers, ordered by transfer id."""

    @abstractmethod
    def reviews_of(self, account_id: str) -> list[ReviewItem]:
        """Review items (any status) whose transfer has ``account_id`` as an end, oldest
        first (ties by id): a data subject's export."""

    @abstractmethod
    def transfer_log(self) -> TransferLog:
        """Every stored transfer with its properties, ordered by (timestamp, transfer id)."""

    def transfer_arrays(self, account_ids: Sequence[str]) -> TransferArrays:
        """Every stored transfer as columns in ``transfer_log`` order, accounts coded by
        position in ``account_ids`` (accounts it lacks get the next codes, appended to the
        result's ``account_ids``). This default goes through ``transfer_log``; a backend that
        can stream plain columns overrides it."""
        log = self.transfer_log()
        return transfer_arrays_of(log.src, log.dst, log.amount, log.ts, account_ids)

    @abstractmethod
    def add_review(self, item: ReviewItem) -> bool:
        """Queue ``item`` by ``review_id``; False (nothing changed) when the id is queued."""

    @abstractmethod
    def add_reviews(self, items: Sequence[ReviewItem]) -> list[bool]:
        """Queue ``items`` in one transaction (all or none: one commit, one fsync for the
        batch); per item, as ``add_review``: False when its id is queued already (also by an
        earlier item of the same batch)."""

    @abstractmethod
    def list_reviews(
        self, status: ReviewStatus | None = "open", *, limit: int = 50, offset: int = 0
    ) -> Page[ReviewItem]:
        """Review items with ``status`` (None: any), oldest first (ties by id)."""

    @abstractmethod
    def get_review(self, review_id: str) -> ReviewItem:
        """One review item; ``NotFound`` if absent."""

    @abstractmethod
    def resolve_review(
        self, review_id: str, status: ReviewStatus, reviewer: str, note: str, at: float
    ) -> ReviewItem:
        """Close an open item as ``approved`` or ``rejected``; ``NotFound`` if absent,
        ``Conflict`` if already closed (a verdict is not silently replaced)."""

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
        hub_degree: int = HUB_DEGREE,
        through_hubs: bool = False,
        deadline_s: float | None = None,
    ) -> Subgraph:
        """Accounts within ``hops`` of ``account_id``; each expanded account contributes at
        most ``limit`` neighbours, strongest ties first (most connecting relationships, then
        id), and the whole view stops growing at ``max_nodes`` accounts. A hub (more than
        ``hub_degree`` relationships) other than the centre is drawn but not walked through
        unless ``through_hubs``. See ``Subgraph`` for the markers of what was left out.
        Still expanding after ``deadline_s`` seconds: ``TooExpensive`` (checked between store
        calls, each a chunk of ``PATH_CHUNK`` accounts)."""
        started = time.monotonic()

        def on_time() -> None:
            if deadline_s is not None and time.monotonic() - started > deadline_s:
                raise TooExpensive(
                    f"the neighbourhood of {account_id!r} ({hops} hops, {limit} per account) "
                    f"ran past the {deadline_s:g} s cap on investigator queries; ask for fewer "
                    "hops, a lower limit or some relations only",
                    cap="investigate_deadline_s",
                )

        if not 1 <= hops <= MAX_HOPS:
            raise InvalidInput(f"hops must be between 1 and {MAX_HOPS}, got {hops}")
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
        if hub_degree < 1:
            raise InvalidInput(f"hub_degree must be at least 1, got {hub_degree}")
        rels = check_relations(relations)
        if self.missing_accounts([account_id]):
            raise NotFound(f"account {account_id!r} not found")
        seen: dict[str, None] = {account_id: None}
        frontier = [account_id]
        info: dict[str, Ties] = {}
        capped: dict[str, int] = {}
        summarised: list[str] = []
        for hop in range(hops):
            # One more tie than shown tells whether an account has more than ``limit``.
            walk_hubs = hop == 0 or through_hubs
            expanded: dict[str, Ties] = {}
            for i in range(0, len(frontier), PATH_CHUNK):
                on_time()
                expanded.update(
                    self.expand(
                        frontier[i : i + PATH_CHUNK],
                        rels,
                        limit + 1,
                        None if walk_hubs else hub_degree,
                    )
                )
            info.update(expanded)
            nxt: list[str] = []
            for node in frontier:
                ties = expanded.get(node, _NO_TIES)
                if ties.ties is None:
                    summarised.append(node)
                    capped[node] = ties.total
                    continue
                if len(ties.ties) > limit:
                    capped[node] = ties.total
                for other, _ in ties.ties[:limit]:
                    if other in seen:
                        continue
                    if len(seen) >= max_nodes:
                        capped[node] = ties.total
                        break
                    seen[other] = None
                    nxt.append(other)
            frontier = nxt
            if not frontier:
                break
        nodes = list(seen)
        leaves = [n for n in nodes if n not in info]
        if leaves:
            on_time()
            info.update(self.expand(leaves, rels, 0))
        degree = {n: info.get(n, _NO_TIES) for n in nodes}
        hubs = [n for n in nodes if degree[n].total > hub_degree]
        on_time()
        edges = self.edges_among(nodes, rels, set(hubs))
        return Subgraph(
            center=account_id,
            nodes=nodes,
            edges=edges,
            truncated=bool(capped),
            capped=capped,
            hubs=hubs,
            summarised=summarised,
            degrees={n: degree[n].degree for n in nodes if n in capped or n in set(hubs)},
        )

    def edges_among(
        self, account_ids: Sequence[str], relations: frozenset[str] | None, heavy: set[str]
    ) -> list[GraphEdge]:
        """Edges with both ends among ``account_ids`` (sorted, ``adjacent``'s form), never
        reading the whole list of a ``heavy`` account: the relationships of the others, and
        pair look-ups between heavy ones. Backends with a cheaper way override it."""
        inside = set(account_ids)
        light = [n for n in account_ids if n not in heavy]
        edges = [e for e in self.adjacent(light, relations) if e.src in inside and e.dst in inside]
        # Distinct heavy pairs only: a pair look-up of a hub with itself walks its whole list
        # (Neo4j expands into the smaller side, here both), so a hub's transfers to itself
        # are counted in its ``more``, not drawn.
        big = sorted(heavy & inside)
        pairs = [(a, b) for i, a in enumerate(big) for b in big[i + 1 :]]
        if pairs:
            edges += self.edges_between(pairs, relations)
        edges.sort(key=lambda e: (e.src, e.dst, e.relation))
        return _dedupe(edges)

    def shortest_paths(
        self,
        src: str,
        dst: str,
        max_hops: int = 4,
        relations: Iterable[str] | None = None,
        limit: int = 10,
        *,
        hub_degree: int = HUB_DEGREE,
        through_hubs: bool = False,
        fanout: int = PATH_FANOUT,
        deadline_s: float = PATH_DEADLINE_S,
        max_enumerated: int = MAX_PATHS_ENUMERATED,
    ) -> PathSearch:
        """Shortest account sequences from ``src`` to ``dst`` (edges taken undirected), at
        most ``limit``, each hop with the edges that join the pair.

        A bidirectional search over the capped, hub-aware adjacency: each account is
        followed through its ``fanout`` strongest ties, a hub (more than ``hub_degree``
        relationships; the two ends excepted) is reached but not walked through unless
        ``through_hubs``, and expanding stops after ``deadline_s`` seconds. ``cut_short``
        of the answer says when any of that may have hidden a path."""
        if not 1 <= max_hops <= MAX_PATH_HOPS:
            raise InvalidInput(f"max_hops must be between 1 and {MAX_PATH_HOPS}, got {max_hops}")
        if not 1 <= limit <= 100:
            raise InvalidInput(f"limit must be between 1 and 100, got {limit}")
        rels = check_relations(relations)
        missing = self.missing_accounts([src, dst])
        if missing:
            raise NotFound(f"account {missing[0]!r} not found")
        if src == dst:
            return PathSearch([Path(accounts=[src], hops=[])])
        started = time.monotonic()
        cut: set[str] = set()
        skipped: set[str] = set()
        # Parents on each side, expanding the smaller frontier first.
        parents: tuple[dict[str, list[str]], dict[str, list[str]]] = ({src: []}, {dst: []})
        frontiers: tuple[list[str], list[str]] = ([src], [dst])
        depth = [0, 0]
        meet: set[str] = set()
        while not meet and depth[0] + depth[1] < max_hops and frontiers[0] and frontiers[1]:
            if time.monotonic() - started > deadline_s:
                cut.add("deadline")
                break
            side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
            mine, other = parents[side], parents[1 - side]
            walk_hubs = through_hubs or depth[side] == 0
            nxt: dict[str, list[str]] = defaultdict(list)
            front = frontiers[side]
            # Expanded in chunks, so the deadline also bounds one wide level.
            for i in range(0, len(front), PATH_CHUNK):
                if i and time.monotonic() - started > deadline_s:
                    cut.add("deadline")
                    break
                chunk = front[i : i + PATH_CHUNK]
                expanded = self.expand(chunk, rels, fanout + 1, None if walk_hubs else hub_degree)
                for a in chunk:
                    ties = expanded.get(a, _NO_TIES)
                    if ties.ties is None:
                        skipped.add(a)
                        continue
                    if len(ties.ties) > fanout:
                        cut.add("fanout")
                    for b, _ in ties.ties[:fanout]:
                        if b not in mine:
                            nxt[b].append(a)
            for node, ps in nxt.items():
                mine[node] = sorted(ps)
                if node in other:
                    meet.add(node)
            frontier_list = sorted(nxt)
            frontiers = (
                (frontier_list, frontiers[1]) if side == 0 else (frontiers[0], frontier_list)
            )
            depth[side] += 1
            if "deadline" in cut:
                break
            if not meet and len(mine) + len(other) > MAX_PATH_FRONTIER:
                cut.add("frontier")
                break
        if skipped:
            cut.add("hubs")
        if not meet:
            return PathSearch([], sorted(cut), sorted(skipped))
        sequences: list[list[str]] = []
        for m in sorted(meet):
            for left in _walk_back(parents[0], m):
                for right in _walk_back(parents[1], m):
                    sequences.append(list(reversed(left)) + right[1:])
                    if len(sequences) >= max_enumerated:
                        break
                if len(sequences) >= max_enumerated:
                    break
            if len(sequences) >= max_enumerated:
                cut.add("paths")
                break
        sequences.sort()
        sequences = sequences[:limit]
        pairs = sorted({_pair_key(a, b) for s in sequences for a, b in itertools.pairwise(s)})
        pair_edges = _edges_by_pair(self.edges_between(pairs, rels))
        return PathSearch(
            [
                Path(
                    accounts=s,
                    hops=[pair_edges.get(_pair_key(a, b), []) for a, b in itertools.pairwise(s)],
                )
                for s in sequences
            ],
            sorted(cut),
            sorted(skipped),
        )


_NO_TIES = Ties({}, [])


#: A score as stored: account id, fraud probability, social credit, model version, reasons
#: (JSON text), scored at.
ScoreRow = tuple[str, float, float, str, str, float]


def score_row(s: Score) -> ScoreRow:
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


def _dedupe(edges: list[GraphEdge]) -> list[GraphEdge]:
    """Drop repeats of the same edge (sorted input) that arise when both ends were queried."""
    out: list[GraphEdge] = []
    for e in edges:
        if not out or (out[-1].src, out[-1].dst, out[-1].relation) != (e.src, e.dst, e.relation):
            out.append(e)
    return out
