"""Neo4j backend over the official driver.

Over ~450 lines on purpose: one backend of the ``GraphStore`` contract, its Cypher as named
constants beside the method that runs each, and the driver errors translated once; split by
method, a query would sit far from its caller.

Graph model::

    (:Account {account_id, created_at, f_<feature>..., p_<property>..., label, label_source,
               label_observed_at, fraud_probability, social_credit, model_version,
               score_reasons, scored_at, seq})
    (:Account)-[:TRANSFERRED {transfer_id, amount, ts, currency, channel, seq}]->(:Account)
    (:Account)-[:<LINK_TYPE> {since, seq}]->(:Account)   stored once, smaller id -> larger id
    (:Ring {ring_id, kind, score, status, note, evidence, detected_at})-[:HAS_MEMBER]->(:Account)
    (:Meta {key: 'writes', seq})
    (:Obligation {obligation_id, account_id, kind, amount, opened_at, due_at, status, closed_at,
                  ev_status, ev_at, ev_recorded, seq})   status history as parallel lists

Every write batch takes the next ``seq`` from the Meta node inside its transaction (which also
serialises writers) and stamps what it creates. ``snapshot`` reads the committed ``seq`` first
and keeps only what was created up to it: Neo4j reads are read-committed, and this keeps a
snapshot from catching an import half-way. Queries are constants with ``$params``; the only
text spliced into Cypher is a link type that passed ``LINK_TYPE_RE``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from neo4j import READ_ACCESS, Driver, GraphDatabase, ManagedTransaction, Session
from neo4j.exceptions import (
    AuthError,
    ConstraintError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from creditgraph.config import Settings
from creditgraph.domain import (
    LINK_TYPE_RE,
    RESERVED_LINK_TYPES,
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
    Ring,
    RingKind,
    RingStatus,
    Score,
    Snapshot,
    StatusChange,
    Ties,
    Transfer,
    TransferColumns,
    TransferEvents,
)
from creditgraph.errors import Conflict, CreditGraphError, NotFound, StoreUnavailable
from creditgraph.store.base import (
    IMPORT_REVISION,
    AccountVersion,
    Erased,
    GraphStore,
    Revision,
    ScoreRow,
    StoredAccount,
    _dedupe,
    check_page,
    check_ring_status,
    refuse_changed_transfers,
    revise_accounts,
    rings_without,
    score_row,
    tombstone_of,
)
from creditgraph.store.neo4j_outcomes import Neo4jOutcomes
from creditgraph.store.neo4j_ties import TIE_LIST_DEGREE, TIE_LIST_LEN, listed_neighbours
from creditgraph.store.neo4j_ties import build as build_ties
from creditgraph.store.neo4j_ties import rebuild as rebuild_ties
from creditgraph.store.neo4j_ties import refresh as refresh_ties
from creditgraph.store.obligations import change_of_advance, changes_of_new, plan_obligations
from creditgraph.store.snapshot import SnapshotBuilder

T = TypeVar("T")

# -- data-subject erasure (all in one transaction) ---------------------------------------------
ERASE_FACTS = """
MATCH (a:Account {account_id: $id})
RETURN COUNT { MATCH (a)-[t:TRANSFERRED]-() RETURN DISTINCT t } AS transfers,
       COUNT { MATCH (a)-[l]-(:Account) WHERE NOT type(l) IN $reserved RETURN DISTINCT l } AS links,
       a.label IS NOT NULL AS label, a.model_version IS NOT NULL AS score
"""
ERASE_ACCOUNT = "MATCH (a:Account {account_id: $id}) DETACH DELETE a"
ERASE_ACCOUNT_VERSIONS = "MATCH (v:AccountVersion {account_id: $id}) DELETE v"
SET_RING_EVIDENCE = "MATCH (g:Ring {ring_id: $id}) SET g.evidence = $evidence"
ADD_TOMBSTONE = "MERGE (t:Tombstone {digest: $digest}) SET t.erased_at = $at"
ANY_TOMBSTONE = "MATCH (t:Tombstone) RETURN t.digest LIMIT 1"
GET_TOMBSTONES = """
UNWIND $digests AS d
MATCH (t:Tombstone {digest: d})
RETURN t.digest AS d, t.erased_at AS at
"""
LIFT_TOMBSTONES = """
UNWIND $digests AS d
MATCH (t:Tombstone {digest: d})
DELETE t
RETURN count(*) AS n
"""

# Missing optional floats compare through this sentinel (Cypher's null never equals null).
_NULL_F = -1.0e300

NEXT_SEQ = """
MERGE (m:Meta {key: 'writes'})
ON CREATE SET m.seq = 0
SET m.seq = m.seq + 1
RETURN m.seq AS seq
"""
CURRENT_SEQ = "MATCH (m:Meta {key: 'writes'}) RETURN m.seq AS seq"
ENSURE_META = "MERGE (m:Meta {key: 'writes'}) ON CREATE SET m.seq = 0"

UPSERT_ACCOUNTS = """
UNWIND $rows AS r
OPTIONAL MATCH (old:Account {account_id: r.id})
WITH r, old IS NULL AS is_new, properties(old) AS before
MERGE (a:Account {account_id: r.id})
ON CREATE SET a.seq = $seq
SET a.created_at = coalesce(r.created_at, a.created_at), a += r.props
RETURN sum(CASE WHEN is_new OR properties(a) <> before THEN 1 ELSE 0 END) AS changed
"""
EXISTING_TRANSFERS = """
UNWIND $ids AS id
MATCH (s)-[t:TRANSFERRED {transfer_id: id}]->(d)
RETURN id, s.account_id, d.account_id, t.amount, t.ts, t.currency, t.channel
"""
# Only ids EXISTING_TRANSFERS did not find reach this query, in the same transaction: an
# existence test here would read what CREATE writes and force an Eager (whole-batch) plan.
CREATE_TRANSFERS = """
UNWIND $rows AS r
MATCH (s:Account {account_id: r[1]})
MATCH (d:Account {account_id: r[2]})
CREATE (s)-[:TRANSFERRED {transfer_id: r[0], amount: r[3], ts: r[4], currency: r[5],
                          channel: r[6], props: r[7], seq: $seq}]->(d)
RETURN count(*) AS changed
"""
# {rel} is a validated link type (LINK_TYPE_RE, not reserved).
UPSERT_LINKS = """
UNWIND $rows AS r
MATCH (a:Account {account_id: r[0]})
MATCH (b:Account {account_id: r[1]})
OPTIONAL MATCH (a)-[old:`{rel}`]->(b)
WITH a, b, r, old IS NULL AS is_new, coalesce(old.since, $null_f) AS before
MERGE (a)-[l:`{rel}`]->(b)
ON CREATE SET l.seq = $seq
SET l.since = r[2]
RETURN sum(CASE WHEN is_new OR before <> coalesce(r[2], $null_f) THEN 1 ELSE 0 END) AS changed
"""
UPSERT_LABELS = """
UNWIND $rows AS r
MATCH (a:Account {account_id: r[0]})
WITH a, r, [coalesce(a.label, ''), coalesce(a.label_source, ''),
            coalesce(a.label_observed_at, $null_f)] AS before
SET a.label = r[1], a.label_source = r[2], a.label_observed_at = r[3]
RETURN sum(CASE WHEN before = [r[1], coalesce(r[2], ''), coalesce(r[3], $null_f)]
                THEN 0 ELSE 1 END) AS changed
"""
WRITE_SCORES = """
UNWIND $rows AS r
MATCH (a:Account {account_id: r[0]})
SET a.fraud_probability = r[1], a.social_credit = r[2], a.model_version = r[3],
    a.score_reasons = r[4], a.scored_at = r[5]
RETURN count(*) AS written
"""
SCORE_FIELDS = """
RETURN a.account_id AS id, a.fraud_probability AS p, a.social_credit AS c,
       a.model_version AS v, a.score_reasons AS reasons, a.scored_at AS at
ORDER BY id
"""
GET_ALL_SCORES = "MATCH (a:Account) WHERE a.model_version IS NOT NULL" + SCORE_FIELDS
# One index seek per id: `a.account_id IN $ids OR $ids IS NULL` scanned all accounts (~1 s
# at 1M, paid by every investigator graph view).
GET_SCORES = (
    """
UNWIND $ids AS id
MATCH (a:Account {account_id: id}) WHERE a.model_version IS NOT NULL
"""
    + SCORE_FIELDS
)
WRITE_RINGS = """
UNWIND $rows AS r
MERGE (g:Ring {ring_id: r.ring_id})
SET g += r.props
WITH g, r
CALL (g) { MATCH (g)-[old:HAS_MEMBER]->() DELETE old }
CALL (g, r) {
  UNWIND r.members AS m
  MATCH (a:Account {account_id: m})
  CREATE (g)-[:HAS_MEMBER]->(a)
}
RETURN count(g) AS written
"""
DELETE_RINGS = """
UNWIND $ids AS id
MATCH (g:Ring {ring_id: id})
DETACH DELETE g
RETURN count(*) AS deleted
"""
# The stored attributes of a batch's existing accounts and their last version numbers, read in
# the upsert's own transaction (issue 15: changes are checked, then versioned).
STORED_ACCOUNTS = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})
OPTIONAL MATCH (v:AccountVersion {account_id: id})
RETURN id, a {.*} AS props, max(v.version) AS latest
"""
CREATE_ACCOUNT_VERSIONS = """
UNWIND $versions AS v
CREATE (:AccountVersion {account_id: v.id, version: v.version, changed_at: v.changed_at,
                         actor: v.actor, reason: v.reason, before: v.before, after: v.after})
"""
ACCOUNT_HISTORY = """
MATCH (v:AccountVersion {account_id: $id})
RETURN v.version AS version, v.changed_at AS changed_at, v.actor AS actor, v.reason AS reason,
       v.before AS before, v.after AS after
ORDER BY version
"""
OBLIGATION_FIELDS = """
RETURN o.obligation_id AS id, o.account_id AS account_id, o.kind AS kind, o.amount AS amount,
       o.opened_at AS opened_at, o.due_at AS due_at, o.status AS status,
       o.closed_at AS closed_at, o.ev_status AS ev_status, o.ev_at AS ev_at,
       o.ev_recorded AS ev_recorded
ORDER BY id
"""
GET_OBLIGATIONS = "UNWIND $ids AS id MATCH (o:Obligation {obligation_id: id})" + OBLIGATION_FIELDS
OBLIGATIONS_OF = "UNWIND $ids AS id MATCH (o:Obligation {account_id: id})" + OBLIGATION_FIELDS
ALL_OBLIGATIONS = "MATCH (o:Obligation)" + OBLIGATION_FIELDS
CREATE_OBLIGATIONS = """
UNWIND $rows AS r
CREATE (o:Obligation {obligation_id: r.id, account_id: r.account_id, kind: r.kind,
                      amount: r.amount, opened_at: r.opened_at, due_at: r.due_at,
                      status: r.status, closed_at: r.closed_at, ev_status: r.ev_status,
                      ev_at: r.ev_at, ev_recorded: r.ev_recorded, seq: $seq})
RETURN count(*) AS changed
"""
ADVANCE_OBLIGATIONS = """
UNWIND $rows AS r
MATCH (o:Obligation {obligation_id: r.id})
SET o.status = r.status, o.closed_at = r.closed_at, o.ev_status = o.ev_status + r.status,
    o.ev_at = o.ev_at + r.at, o.ev_recorded = o.ev_recorded + r.recorded_at
RETURN count(*) AS changed
"""
ALL_PROPERTY = "MATCH (a:Account) WHERE a[$key] IS NOT NULL RETURN a.account_id AS id, a[$key] AS v"
PROPERTY_OF = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id}) WHERE a[$key] IS NOT NULL
RETURN a.account_id AS id, a[$key] AS v
"""
# A data subject's erasure takes its credit records too.
ERASE_OBLIGATIONS = "MATCH (o:Obligation {account_id: $id}) DELETE o RETURN count(*) AS n"
ALL_TRANSFER_EVENTS = """
MATCH (s:Account)-[t:TRANSFERRED]->(d:Account)
RETURN t.transfer_id AS id, s.account_id AS s, d.account_id AS d, t.amount AS amount, t.ts AS ts
"""
TRANSFER_EVENTS_OF = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})-[t:TRANSFERRED]-(:Account)
WITH DISTINCT t
MATCH (s)-[t]->(d)
RETURN t.transfer_id AS id, s.account_id AS s, d.account_id AS d, t.amount AS amount, t.ts AS ts
"""
GET_LABELS = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id}) WHERE a.label IS NOT NULL
RETURN a.account_id AS id, a.label AS label, a.label_source AS source,
       a.label_observed_at AS at
ORDER BY id
"""
GET_RING = """
MATCH (g:Ring {ring_id: $id})
OPTIONAL MATCH (g)-[:HAS_MEMBER]->(a:Account)
WITH g, a ORDER BY a.account_id
RETURN g {.*} AS ring, collect(a.account_id) AS members
"""
LIST_RING_IDS = "MATCH (g:Ring) RETURN g.ring_id AS id"
UPDATE_RING = """
MATCH (g:Ring {ring_id: $id})
SET g.status = $status, g.note = coalesce($note, g.note)
RETURN g.ring_id AS id
"""
RINGS_OF = """
MATCH (g:Ring)-[:HAS_MEMBER]->(:Account {account_id: $id})
RETURN g.ring_id AS id
"""
# Only the missing ids travel back: at 1M ids, returning the found ones cost ~20 s of Bolt.
MISSING_ACCOUNTS = """
UNWIND $ids AS id
WITH id WHERE NOT EXISTS { MATCH (:Account {account_id: id}) }
RETURN id
"""
GET_ACCOUNT = "MATCH (a:Account {account_id: $id}) RETURN a {.*} AS a"
COUNT_ACCOUNTS = "MATCH (a:Account) RETURN count(a) AS n"
COUNT_TRANSFERS = "MATCH ()-[t:TRANSFERRED]->() RETURN count(t) AS n"
COUNT_LABELS = "MATCH (a:Account) WHERE a.label IS NOT NULL RETURN count(a) AS n"
COUNT_SCORES = "MATCH (a:Account) WHERE a.model_version IS NOT NULL RETURN count(a) AS n"
COUNT_RINGS = "MATCH (g:Ring) RETURN count(g) AS n"
REL_TYPES = "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType AS t"
COUNT_REL = "MATCH ()-[r:`{rel}`]->() RETURN count(r) AS n"
ADJ_OUT = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})-[t:TRANSFERRED]->(b:Account)
RETURN a.account_id AS s, b.account_id AS d, count(t) AS n, sum(t.amount) AS total
"""
ADJ_IN = """
UNWIND $ids AS id
MATCH (b:Account)-[t:TRANSFERRED]->(a:Account {account_id: id})
RETURN b.account_id AS s, a.account_id AS d, count(t) AS n, sum(t.amount) AS total
"""
ADJ_LINKS = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})-[l]-(b:Account)
WHERE NOT type(l) IN $reserved AND ($types IS NULL OR type(l) IN $types)
RETURN startNode(l).account_id AS s, endNode(l).account_id AS d, type(l) AS t
"""
SNAP_ACCOUNTS = """
MATCH (a:Account) WHERE a.seq <= $w
RETURN a.account_id AS id, a.created_at AS created,
       [k IN keys(a) WHERE k STARTS WITH 'f_' | [substring(k, 2), a[k]]] AS features,
       a.label AS label
"""
SNAP_TRANSFERS = """
MATCH (s:Account)-[t:TRANSFERRED]->(d:Account) WHERE t.seq <= $w
RETURN s.account_id AS s, d.account_id AS d, count(t) AS n, sum(t.amount) AS total,
       min(t.ts) AS first, max(t.ts) AS last
"""
SNAP_LINKS = """
MATCH (s:Account)-[l]->(d:Account)
WHERE NOT type(l) IN $reserved AND l.seq <= $w
RETURN s.account_id AS s, d.account_id AS d, type(l) AS t
"""
# DISTINCT: an undirected pattern meets a transfer to oneself twice.
MATCH_TRANSFERS_OF = """
MATCH (a:Account {account_id: $id})-[t:TRANSFERRED]-(b:Account)
WHERE ($cp IS NULL OR b.account_id = $cp)
  AND ($since IS NULL OR t.ts >= $since) AND ($until IS NULL OR t.ts <= $until)
WITH DISTINCT t
"""
TRANSFER_FIELDS = """
RETURN t.transfer_id AS id, startNode(t).account_id AS s, endNode(t).account_id AS d,
       t.amount AS amount, t.ts AS ts, t.currency AS currency, t.channel AS channel
ORDER BY ts DESC, id DESC
"""
COUNT_TRANSFERS_OF = MATCH_TRANSFERS_OF + "RETURN count(t) AS n"
TRANSFERS_OF = MATCH_TRANSFERS_OF + TRANSFER_FIELDS + "SKIP $offset LIMIT $limit"
# Unfiltered, the count is the node's degree (getDegree: a transfer to oneself once), not a
# walk: an account view of a 379k-transfer merchant paid 1.5 s for it.
COUNT_ALL_TRANSFERS_OF = (
    "MATCH (a:Account {account_id: $id}) RETURN COUNT { (a)-[:TRANSFERRED]-() } AS n"
)
# With a counterparty both ends are bound: expand-into walks the side with fewer transfers
# (a path's hop through a hub reads the other end's list, not the hub's).
MATCH_PAIR_TRANSFERS_OF = """
MATCH (a:Account {account_id: $id})
MATCH (b:Account {account_id: $cp})
CALL (a, b) {
  MATCH (a)-[t:TRANSFERRED]->(b) RETURN t
  UNION
  MATCH (b)-[t:TRANSFERRED]->(a) RETURN t
}
WITH t WHERE ($since IS NULL OR t.ts >= $since) AND ($until IS NULL OR t.ts <= $until)
WITH DISTINCT t
"""
COUNT_PAIR_TRANSFERS_OF = MATCH_PAIR_TRANSFERS_OF + "RETURN count(t) AS n"
PAIR_TRANSFERS_OF = MATCH_PAIR_TRANSFERS_OF + TRANSFER_FIELDS + "SKIP $offset LIMIT $limit"
MATCH_TRANSFERS_AMONG = """
UNWIND $ids AS id
MATCH (:Account {account_id: id})-[t:TRANSFERRED]->(d:Account)
WHERE d.account_id IN $ids
"""
TRANSFERS_AMONG = MATCH_TRANSFERS_AMONG + TRANSFER_FIELDS + "LIMIT $limit"
MATCH_RINGS = """
MATCH (g:Ring)
WHERE ($statuses IS NULL OR g.status IN $statuses) AND ($kinds IS NULL OR g.kind IN $kinds)
  AND ($min_score IS NULL OR g.score >= $min_score)
"""
COUNT_RINGS_MATCHING = MATCH_RINGS + "RETURN count(g) AS n"
RING_IDS_PAGE = "RETURN g.ring_id AS id ORDER BY g.score DESC, id SKIP $offset LIMIT $limit"
FIND_RING_IDS = MATCH_RINGS + RING_IDS_PAGE
RING_MEMBERSHIPS = """
UNWIND $ids AS id
MATCH (g:Ring)-[:HAS_MEMBER]->(:Account {account_id: id})
RETURN id, g.ring_id AS ring
"""
AWAIT_INDEXES = "CALL db.awaitIndexes(300)"
# Investigator expansion. {degrees} is one count per relationship type, out plus in: counts
# of a typed pattern with an unlabelled far end are read from the node's degree store
# (getDegree), not by walking the relationships. {types} is the type alternation of the ties.
# The subquery runs per account, so LIMIT is per account; a hub over $hub is not walked. An
# account that keeps its strongest ties (``store.neo4j_ties``) is not walked when every relation
# is asked for ($listed) and its list holds $k ties or all it has.
EXPAND = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})
WITH a, id, [{degrees}] AS degs
WITH a, id, degs, reduce(s = 0, x IN degs | s + x) AS total
WITH a, id, degs, total, $k > 0 AND ($hub IS NULL OR total <= $hub) AS wanted,
     $listed AND a.ties_top IS NOT NULL AND ($k <= $n OR size(a.ties_top) < $n) AS listed
CALL (a, wanted, listed) {
  WITH a, wanted, listed WHERE wanted AND NOT listed
  MATCH (a)-[r:{types}]-(b:Account) WHERE b <> a
  WITH b, count(r) AS w
  ORDER BY w DESC, b.account_id
  LIMIT $k
  RETURN collect([b.account_id, w]) AS walked
}
RETURN id, degs, total,
       CASE WHEN wanted AND listed
            THEN [i IN range(0, size(a.ties_top[0..$k]) - 1) | [a.ties_top[i], a.ties_w[i]]]
            ELSE walked END AS ties
"""
# Expand-into between two bound nodes walks the side with fewer relationships of the type and
# direction, so each direction is its own pattern: undirected, a pair of merchants (almost all
# of their transfers incoming) walked the smaller one's whole list (20,012 db hits for two
# 20k-payer hubs), directed the payer side's few outgoing ones (15).
PAIR_TRANSFERS = """
UNWIND $pairs AS p
MATCH (x:Account {account_id: p[0]})
MATCH (y:Account {account_id: p[1]})
CALL (x, y) {
  MATCH (x)-[t:TRANSFERRED]->(y) RETURN t
  UNION
  MATCH (y)-[t:TRANSFERRED]->(x) RETURN t
}
WITH DISTINCT t
RETURN startNode(t).account_id AS s, endNode(t).account_id AS d, count(t) AS n,
       sum(t.amount) AS total
"""
# {types}: the link types asked for (all the store's when none are named). Untyped, the
# expand-into counted every relationship of the side it walked, transfers included (19k-61k db
# hits for the pairs of a 2-hop view at 50k).
PAIR_LINKS = """
UNWIND $pairs AS p
MATCH (x:Account {account_id: p[0]})
MATCH (y:Account {account_id: p[1]})
CALL (x, y) {
  MATCH (x)-[l:{types}]->(y) RETURN l
  UNION
  MATCH (y)-[l:{types}]->(x) RETURN l
}
RETURN DISTINCT startNode(l).account_id AS s, endNode(l).account_id AS d, type(l) AS t
"""
# Edges with both ends in a view: the light accounts' relationships are walked, but the far
# end is tested by element id against a parameter list (a hash set to the runtime) before any
# property of the relationship or the far end is read.
VIEW_NODES = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})
RETURN elementId(a) AS e
"""
EDGES_AMONG = """
UNWIND $light AS id
MATCH (a:Account {account_id: id})-[r]-(b:Account)
WHERE elementId(b) IN $inside AND NOT type(r) IN $reserved
  AND ($types IS NULL OR type(r) IN $types)
WITH DISTINCT r
RETURN startNode(r).account_id AS s, endNode(r).account_id AS d, type(r) AS t, count(r) AS n,
       sum(r.amount) AS total
"""

_RESERVED = sorted(RESERVED_LINK_TYPES)
#: The relationship type of transfers (``TRANSFER`` in the store contract).
TRANSFERRED = "TRANSFERRED"


def _rel(link_type: str) -> str:
    """A link type safe to splice into Cypher."""
    if not LINK_TYPE_RE.match(link_type) or link_type in RESERVED_LINK_TYPES:
        raise CreditGraphError(f"refusing link type {link_type!r}")
    return link_type


def _obligations(result: Any) -> dict[str, Obligation]:
    out: dict[str, Obligation] = {}
    for r in result:
        history = tuple(
            StatusChange(st, at, rec)
            for st, at, rec in zip(r["ev_status"], r["ev_at"], r["ev_recorded"], strict=True)
        )
        out[r["id"]] = Obligation(
            r["id"],
            r["account_id"],
            r["kind"],
            r["amount"],
            r["opened_at"],
            r["due_at"],
            r["status"],
            r["closed_at"],
            history,
        )
    return out


def _transfer(r: Any) -> Transfer:
    return Transfer(r["id"], r["s"], r["d"], r["amount"], r["ts"], r["currency"], r["channel"])


def _new_transfers(tx: ManagedTransaction, rows: list[list[Any]]) -> list[list[Any]]:
    """Rows whose transfer_id is not stored yet: transfers are immutable events. A stored
    id with other content raises ``TransferConflict``, which aborts the transaction."""
    found = {rec[0]: list(rec)[1:] for rec in tx.run(EXISTING_TRANSFERS, ids=[r[0] for r in rows])}
    if not found:
        return rows
    refuse_changed_transfers(TransferColumns(*(list(c) for c in zip(*rows, strict=True))), found)
    return [r for r in rows if r[0] not in found]


@contextmanager
def _translate() -> Iterator[None]:
    """Map driver errors to the store's error family, once, at the boundary."""
    try:
        yield
    except ConstraintError as e:
        raise Conflict(f"neo4j constraint violated: {e.message}") from e
    except AuthError as e:
        raise StoreUnavailable(f"neo4j refused the credentials: {e.message}") from e
    except (ServiceUnavailable, SessionExpired, TransientError) as e:
        raise StoreUnavailable(f"neo4j unavailable: {e}") from e
    except Neo4jError as e:
        raise CreditGraphError(f"neo4j error {e.code}: {e.message}") from e
    except DriverError as e:
        raise StoreUnavailable(f"neo4j driver error: {e}") from e


class Neo4jStore(Neo4jOutcomes, GraphStore):
    """GraphStore over a Neo4j database. The driver is passed in; ``connect`` builds one."""

    backend = "neo4j"

    def __init__(
        self, driver: Driver, database: str, schema_dir: Path, *, owns_driver: bool = False
    ) -> None:
        self._driver = driver
        self._database = database
        self._schema_dir = schema_dir
        self._owns_driver = owns_driver
        #: Accounts with this many relationships keep their strongest ties (``neo4j_ties``).
        self.tie_list_degree = TIE_LIST_DEGREE
        self.tie_list_len = TIE_LIST_LEN
        # The open transaction of an atomic import scope, per thread (the API shares a store).
        self._local = threading.local()

    @classmethod
    def connect(cls, settings: Settings, *, fail_fast: bool = False) -> Neo4jStore:
        """Build a driver from settings, check it reaches the server, apply the schema (once
        per open store, not per write), and own the driver.

        ``fail_fast`` (the API) gives up on an unreachable server within about two seconds
        instead of the driver's default 30 s of retries, so degraded mode starts at once.
        """
        driver = GraphDatabase.driver(
            settings.neo4j_uri,
            auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
            connection_timeout=2.0 if fail_fast else 10.0,
            connection_acquisition_timeout=2.0 if fail_fast else 60.0,
            max_transaction_retry_time=1.0 if fail_fast else 30.0,
            # Planner hints ("this query builds a cartesian product") are not for end users.
            notifications_min_severity="OFF",
        )
        store = cls(driver, settings.neo4j_database, settings.schema_dir, owns_driver=True)
        try:
            with _translate():
                driver.verify_connectivity()
            store.apply_schema()
        except CreditGraphError:
            driver.close()
            raise
        return store

    def close(self) -> None:
        if self._owns_driver:
            self._driver.close()

    def _session(self) -> Session:
        return self._driver.session(database=self._database)

    def _write(self, fn: Callable[[ManagedTransaction], T]) -> T:
        tx = getattr(self._local, "tx", None)
        if tx is not None:  # inside an atomic import scope: no retry, one commit at the end
            with _translate():
                return fn(tx)
        with _translate(), self._session() as s:
            return s.execute_write(fn)

    def _read(self, fn: Callable[[ManagedTransaction], T]) -> T:
        tx = getattr(self._local, "read_tx", None)
        if tx is not None:  # inside a read_view: the view's one transaction, no retry
            with _translate():
                return fn(tx)
        with _translate(), self._session() as s:
            return s.execute_read(fn)

    @contextmanager
    def read_view(self) -> Iterator[None]:
        # A 1-hop view makes seven store calls, each a session checkout and a BEGIN/COMMIT
        # round trip (2-7 ms each with the machine at load 9): one read transaction for all.
        # A transient error fails the view instead of being retried (the client may retry).
        if getattr(self._local, "read_tx", None) is not None:
            yield
            return
        with (
            _translate(),
            self._driver.session(database=self._database, default_access_mode=READ_ACCESS) as s,
        ):
            tx = s.begin_transaction()
            self._local.read_tx = tx
            try:
                yield
            finally:
                self._local.read_tx = None
                with contextlib.suppress(DriverError, Neo4jError):
                    tx.close()

    def _value(self, query: str, **params: Any) -> Any:
        def run(tx: ManagedTransaction) -> Any:
            rec = tx.run(query, params).single()
            return None if rec is None else rec[0]

        return self._read(run)

    def _stamped_write(
        self,
        query: str,
        rows: list[Any],
        keep: Callable[[ManagedTransaction, list[Any]], list[Any]] | None = None,
        after: Callable[[ManagedTransaction, list[Any]], None] | None = None,
    ) -> int:
        """Run ``query`` over ``rows`` in one transaction stamped with the next write seq;
        ``keep`` may first drop rows inside that transaction, ``after`` follows up on the rows
        written, in it."""

        def run(tx: ManagedTransaction) -> int:
            seq = tx.run(NEXT_SEQ).single(strict=True)["seq"]
            todo = rows if keep is None else keep(tx, rows)
            if not todo:
                return 0
            rec = tx.run(query, {"rows": todo, "seq": seq, "null_f": _NULL_F}).single()
            if after is not None:
                after(tx, todo)
            return int(rec[0]) if rec is not None and rec[0] is not None else 0

        return self._write(run) if rows else 0

    # -- lifecycle -------------------------------------------------------------------------------
    def apply_schema(self) -> list[str]:
        files = sorted(self._schema_dir.glob("*.cypher"))
        if not files:
            # Without constraints MERGE would duplicate accounts: refuse rather than carry on.
            raise CreditGraphError(
                f"no schema files (*.cypher) in {self._schema_dir}; set CREDITGRAPH_SCHEMA_DIR"
            )
        applied: list[str] = []
        for path in files:
            text = "\n".join(
                ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("//")
            )
            statements = [s.strip() for s in text.split(";") if s.strip()]
            with _translate(), self._session() as s:
                for stmt in statements:
                    s.run(stmt).consume()
            applied.append(path.name)
        with _translate(), self._session() as s:
            s.run(AWAIT_INDEXES).consume()
            s.execute_write(lambda tx: tx.run(ENSURE_META).consume())
        return applied

    @contextmanager
    def import_scope(
        self, kind: str = "", rows: int = 0, *, atomic: bool = False
    ) -> Iterator[None]:
        # A file: per-batch commits; idempotent upserts make a re-run after a crash exact.
        # An HTTP batch (``atomic``): one explicit transaction for the stubs and every row,
        # so a batch the client saw fail (Neo4j killed, a conflict) left nothing behind.
        if not atomic or getattr(self._local, "tx", None) is not None:
            yield
            return
        with _translate(), self._session() as s:
            tx = s.begin_transaction()
            self._local.tx = tx
            try:
                yield
                tx.commit()
            finally:
                self._local.tx = None
                # Rolls back unless committed; on a dead connection the server already did,
                # and the error that got us here is the one to report.
                with contextlib.suppress(DriverError, Neo4jError):
                    tx.close()

    # -- writes ----------------------------------------------------------------------------------
    def upsert_accounts(self, batch: AccountColumns, revision: Revision | None = None) -> int:
        rows = [
            {
                "id": a,
                "created_at": c,
                "props": {
                    **{f"f_{k}": v for k, v in f.items()},
                    **{f"p_{k}": v for k, v in p.items()},
                },
            }
            for a, c, f, p in zip(
                batch.account_id, batch.created_at, batch.features, batch.properties, strict=True
            )
        ]

        def versioned(tx: ManagedTransaction, todo: list[Any]) -> list[Any]:
            stored: dict[str, StoredAccount] = {}
            latest: dict[str, int] = {}
            ids = list(dict.fromkeys(batch.account_id))
            for rec in tx.run(STORED_ACCOUNTS, ids=ids):
                props = rec["props"]
                stored[rec["id"]] = (
                    props.get("created_at"),
                    {k[2:]: v for k, v in props.items() if k.startswith("f_")},
                    {k[2:]: v for k, v in props.items() if k.startswith("p_")},
                )
                if rec["latest"] is not None:
                    latest[rec["id"]] = int(rec["latest"])
            versions = revise_accounts(
                batch, stored, revision or IMPORT_REVISION, latest, time.time()
            )  # raising aborts the transaction
            if versions:
                tx.run(
                    CREATE_ACCOUNT_VERSIONS,
                    versions=[
                        {
                            "id": v.account_id,
                            "version": v.version,
                            "changed_at": v.changed_at,
                            "actor": v.actor,
                            "reason": v.reason,
                            "before": orjson.dumps(v.before).decode(),
                            "after": orjson.dumps(v.after).decode(),
                        }
                        for v in versions
                    ],
                ).consume()
            return todo

        return self._stamped_write(UPSERT_ACCOUNTS, rows, keep=versioned)

    def upsert_transfers(self, batch: TransferColumns) -> int:
        props = batch.properties or [{}] * len(batch)
        rows = [
            [*r, orjson.dumps(p).decode() if p else None]
            for r, p in zip(batch.rows(), props, strict=True)
        ]
        return self._stamped_write(
            CREATE_TRANSFERS,
            rows,
            keep=_new_transfers,
            after=lambda tx, todo: refresh_ties(
                tx, ((r[1], r[2]) for r in todo), self.tie_list_degree, self.tie_list_len
            ),
        )

    def upsert_links(self, batch: LinkColumns) -> int:
        by_type: dict[str, list[list[Any]]] = {}
        for s, d, t, since in zip(batch.src, batch.dst, batch.type, batch.since, strict=True):
            by_type.setdefault(t, []).append([s, d, since])
        return sum(
            self._stamped_write(
                UPSERT_LINKS.replace("{rel}", _rel(t)),
                rows,
                after=lambda tx, todo: refresh_ties(
                    tx, ((r[0], r[1]) for r in todo), self.tie_list_degree, self.tie_list_len
                ),
            )
            for t, rows in sorted(by_type.items())
        )

    def rebuild_ties(self) -> int:
        """Rebuild every kept list of strongest ties (after ``neo4j-admin`` wrote the
        store); returns how many accounts keep one."""
        with _translate(), self._session() as s:
            return rebuild_ties(s, self.tie_list_degree, self.tie_list_len)

    def upsert_labels(self, batch: LabelColumns) -> int:
        rows = [
            list(r)
            for r in zip(
                batch.account_id, batch.label, batch.source, batch.observed_at, strict=True
            )
        ]
        return self._stamped_write(UPSERT_LABELS, rows)

    def upsert_obligations(self, batch: ObligationColumns) -> int:
        now = time.time()

        def run(tx: ManagedTransaction) -> int:
            # Planned inside the write transaction, which the seq stamp serialises.
            seq = tx.run(NEXT_SEQ).single(strict=True)["seq"]
            stored = _obligations(tx.run(GET_OBLIGATIONS, ids=batch.obligation_id))
            plan = plan_obligations(batch, stored)
            new = []
            for i in plan.new:
                changes = changes_of_new(batch, i, now)
                new.append(
                    {
                        "id": batch.obligation_id[i],
                        "account_id": batch.account_id[i],
                        "kind": batch.kind[i],
                        "amount": batch.amount[i],
                        "opened_at": batch.opened_at[i],
                        "due_at": batch.due_at[i],
                        "status": batch.status[i],
                        "closed_at": batch.closed_at[i],
                        "ev_status": [c.status for c in changes],
                        "ev_at": [c.at for c in changes],
                        "ev_recorded": [c.recorded_at for c in changes],
                    }
                )
            advance = []
            for i in plan.advance:
                c = change_of_advance(batch, i, now)
                advance.append(
                    {
                        "id": batch.obligation_id[i],
                        "status": c.status,
                        "closed_at": batch.closed_at[i],
                        "at": c.at,
                        "recorded_at": c.recorded_at,
                    }
                )
            if new:
                tx.run(CREATE_OBLIGATIONS, rows=new, seq=seq).consume()
            if advance:
                tx.run(ADVANCE_OBLIGATIONS, rows=advance).consume()
            return plan.changed

        return self._write(run) if len(batch) else 0

    def get_obligations(
        self,
        obligation_ids: Sequence[str] | None = None,
        *,
        account_ids: Sequence[str] | None = None,
    ) -> dict[str, Obligation]:
        def run(tx: ManagedTransaction) -> dict[str, Obligation]:
            if obligation_ids is not None:
                return _obligations(tx.run(GET_OBLIGATIONS, ids=list(obligation_ids)))
            if account_ids is not None:
                return _obligations(tx.run(OBLIGATIONS_OF, ids=sorted(set(account_ids))))
            return _obligations(tx.run(ALL_OBLIGATIONS))

        return self._read(run)

    def property_values(
        self, name: str, account_ids: Sequence[str] | None = None
    ) -> dict[str, str]:
        key = f"p_{name}"

        def run(tx: ManagedTransaction) -> dict[str, str]:
            result = (
                tx.run(ALL_PROPERTY, key=key)
                if account_ids is None
                else tx.run(PROPERTY_OF, key=key, ids=sorted(set(account_ids)))
            )
            return {r["id"]: str(r["v"]) for r in result}

        return self._read(run)

    def transfer_events(self, account_ids: Sequence[str] | None = None) -> TransferEvents:
        def run(tx: ManagedTransaction) -> list[Any]:
            if account_ids is None:
                return list(tx.run(ALL_TRANSFER_EVENTS))
            return list(tx.run(TRANSFER_EVENTS_OF, ids=sorted(set(account_ids))))

        rows = [(r["id"], r["s"], r["d"], r["amount"], r["ts"]) for r in self._read(run)]
        rows.sort(key=lambda r: (r[4], r[0]))
        return TransferEvents(
            [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows]
        )

    def write_scores(self, scores: Sequence[Score]) -> int:
        return self.write_score_rows([score_row(s) for s in scores])

    def write_score_rows(self, rows: Sequence[ScoreRow]) -> int:
        self._require_accounts([r[0] for r in rows], "cannot score")
        written = 0
        for i in range(0, len(rows), 20_000):
            written += self._stamped_write(WRITE_SCORES, [list(r) for r in rows[i : i + 20_000]])
        return written

    def write_rings(self, rings: Sequence[Ring]) -> int:
        self._require_accounts(sorted({m for r in rings for m in r.members}), "ring members")
        rows = [
            {
                "ring_id": r.ring_id,
                "members": sorted(set(r.members)),
                "props": {
                    "kind": r.kind,
                    "score": r.score,
                    "status": r.status,
                    "note": r.note,
                    "evidence": orjson.dumps(r.evidence).decode(),
                    "detected_at": r.detected_at,
                },
            }
            for r in rings
        ]
        return self._stamped_write(WRITE_RINGS, rows)

    def delete_rings(self, ring_ids: Sequence[str]) -> int:
        def run(tx: ManagedTransaction) -> int:
            return int(tx.run(DELETE_RINGS, ids=list(ring_ids)).single(strict=True)[0])

        return self._write(run)

    def update_ring(self, ring_id: str, status: str, note: str | None = None) -> Ring:
        checked = check_ring_status(status)

        def run(tx: ManagedTransaction) -> Any:
            return tx.run(UPDATE_RING, id=ring_id, status=checked, note=note).single()

        if self._write(run) is None:
            raise NotFound(f"ring {ring_id!r} not found")
        return self.get_ring(ring_id)

    # -- data-subject erasure ---------------------------------------------------------------------
    def erase_account(self, account_id: str) -> Erased:
        delete, keep = rings_without(self.rings_of(account_id), account_id)  # NotFound first

        def run(tx: ManagedTransaction) -> Erased:
            facts = tx.run(ERASE_FACTS, id=account_id, reserved=_RESERVED).single()
            if facts is None:
                raise NotFound(f"account {account_id!r} not found")
            tx.run(DELETE_RINGS, ids=delete).consume()
            for r in keep:
                tx.run(
                    SET_RING_EVIDENCE, id=r.ring_id, evidence=orjson.dumps(r.evidence).decode()
                ).consume()
            tx.run(ERASE_ACCOUNT_VERSIONS, id=account_id).consume()
            n_outcomes, n_reviews = self._erase_outcomes(tx, account_id)
            relisted = listed_neighbours(tx, account_id)
            tx.run(ERASE_ACCOUNT, id=account_id).consume()
            # The one write that lowers tie weights: those neighbours' lists are built again.
            build_ties(tx, relisted, self.tie_list_len)
            n_obligations = tx.run(ERASE_OBLIGATIONS, id=account_id).single(strict=True)["n"]
            tx.run(ADD_TOMBSTONE, digest=tombstone_of(account_id), at=time.time()).consume()
            return Erased(
                account_id,
                int(facts["transfers"]),
                int(facts["links"]),
                bool(facts["label"]),
                bool(facts["score"]),
                [r.ring_id for r in keep],
                delete,
                n_outcomes,
                n_reviews,
                int(n_obligations),
            )

        return self._write(run)

    def erased(self, account_ids: Sequence[str]) -> dict[str, float]:
        if self._value(ANY_TOMBSTONE) is None:
            return {}  # the common case: an import pays no hashing
        by_digest = {tombstone_of(a): a for a in account_ids}
        digests = list(by_digest)

        def run(tx: ManagedTransaction) -> dict[str, float]:
            out: dict[str, float] = {}
            for i in range(0, len(digests), 20_000):
                for r in tx.run(GET_TOMBSTONES, digests=digests[i : i + 20_000]):
                    out[by_digest[r["d"]]] = float(r["at"])
            return out

        return self._read(run)

    def lift_tombstones(self, account_ids: Sequence[str]) -> int:
        digests = [tombstone_of(a) for a in account_ids]

        def run(tx: ManagedTransaction) -> int:
            return int(tx.run(LIFT_TOMBSTONES, digests=digests).single(strict=True)[0])

        return self._write(run)

    # -- reads -----------------------------------------------------------------------------------
    def missing_accounts(self, account_ids: Sequence[str]) -> list[str]:
        missing: set[str] = set()
        ids = list(account_ids)
        for i in range(0, len(ids), 50_000):
            chunk = ids[i : i + 50_000]

            def run(tx: ManagedTransaction, chunk: list[str] = chunk) -> list[str]:
                return [r[0] for r in tx.run(MISSING_ACCOUNTS, ids=chunk)]

            missing.update(self._read(run))
        return [a for a in account_ids if a in missing]

    def counts(self) -> Counts:
        def run(tx: ManagedTransaction) -> Counts:
            def one(q: str) -> int:
                return int(tx.run(q).single(strict=True)[0])

            by_type: dict[str, int] = {}
            for t in sorted(r[0] for r in tx.run(REL_TYPES)):
                if t in RESERVED_LINK_TYPES or not LINK_TYPE_RE.match(t):
                    continue
                n = one(COUNT_REL.replace("{rel}", _rel(t)))
                if n:
                    by_type[t] = n
            return Counts(
                accounts=one(COUNT_ACCOUNTS),
                transfers=one(COUNT_TRANSFERS),
                links=sum(by_type.values()),
                labels=one(COUNT_LABELS),
                scores=one(COUNT_SCORES),
                rings=one(COUNT_RINGS),
                links_by_type=by_type,
            )

        return self._read(run)

    def get_account(self, account_id: str) -> Account:
        props = self._value(GET_ACCOUNT, id=account_id)
        if props is None:
            raise NotFound(f"account {account_id!r} not found")
        score = None
        if props.get("model_version") is not None:
            score = Score(
                account_id,
                props["fraud_probability"],
                props["social_credit"],
                props["model_version"],
                reasons=orjson.loads(props.get("score_reasons") or "[]"),
                scored_at=props.get("scored_at") or 0.0,
            )
        return Account(
            account_id=account_id,
            created_at=props.get("created_at"),
            features={k[2:]: v for k, v in props.items() if k.startswith("f_")},
            properties={k[2:]: v for k, v in props.items() if k.startswith("p_")},
            label=props.get("label"),
            score=score,
        )

    def account_history(self, account_id: str) -> list[AccountVersion]:
        if self.missing_accounts([account_id]):
            raise NotFound(f"account {account_id!r} not found")

        def run(tx: ManagedTransaction) -> list[Any]:
            return list(tx.run(ACCOUNT_HISTORY, id=account_id))

        return [
            AccountVersion(
                account_id,
                int(r["version"]),
                r["changed_at"],
                r["actor"],
                r["reason"],
                orjson.loads(r["before"]),
                orjson.loads(r["after"]),
            )
            for r in self._read(run)
        ]

    def get_labels(self, account_ids: Sequence[str]) -> LabelColumns:
        def run(tx: ManagedTransaction) -> list[Any]:
            return list(tx.run(GET_LABELS, ids=sorted(set(account_ids))))

        rows = self._read(run)
        return LabelColumns(
            [r["id"] for r in rows],
            [r["label"] for r in rows],
            [r["source"] for r in rows],
            [r["at"] for r in rows],
        )

    def get_scores(self, account_ids: Sequence[str] | None = None) -> list[Score]:
        ids = None if account_ids is None else sorted(set(account_ids))
        query = GET_ALL_SCORES if ids is None else GET_SCORES

        def run(tx: ManagedTransaction) -> list[Score]:
            return [
                Score(
                    r["id"],
                    r["p"],
                    r["c"],
                    r["v"],
                    reasons=orjson.loads(r["reasons"]),
                    scored_at=r["at"],
                )
                for r in tx.run(query, ids=ids)
            ]

        return self._read(run)

    def list_rings(self) -> list[Ring]:
        def run(tx: ManagedTransaction) -> list[str]:
            return [r[0] for r in tx.run(LIST_RING_IDS)]

        rings = [self.get_ring(i) for i in self._read(run)]
        rings.sort(key=lambda r: (-r.score, r.ring_id))
        return rings

    def get_ring(self, ring_id: str) -> Ring:
        def run(tx: ManagedTransaction) -> Any:
            return tx.run(GET_RING, id=ring_id).single()

        rec = self._read(run)
        if rec is None:
            raise NotFound(f"ring {ring_id!r} not found")
        g = rec["ring"]
        return Ring(
            ring_id=g["ring_id"],
            kind=g["kind"],
            score=g["score"],
            members=list(rec["members"]),
            evidence=orjson.loads(g["evidence"]),
            status=g["status"],
            note=g["note"],
            detected_at=g["detected_at"],
        )

    def rings_of(self, account_id: str) -> list[Ring]:
        if self.missing_accounts([account_id]):
            raise NotFound(f"account {account_id!r} not found")

        def run(tx: ManagedTransaction) -> list[str]:
            return [r[0] for r in tx.run(RINGS_OF, id=account_id)]

        rings = [self.get_ring(i) for i in self._read(run)]
        rings.sort(key=lambda r: (-r.score, r.ring_id))
        return rings

    def adjacent(
        self, account_ids: Sequence[str], relations: frozenset[str] | None = None
    ) -> list[GraphEdge]:
        ids = sorted(set(account_ids))
        want_transfers = relations is None or TRANSFER in relations
        types = None if relations is None else sorted(relations - {TRANSFER})

        def run(tx: ManagedTransaction) -> list[GraphEdge]:
            edges: dict[tuple[str, str, str], GraphEdge] = {}
            if want_transfers:
                for q in (ADJ_OUT, ADJ_IN):
                    for r in tx.run(q, ids=ids):
                        edges[(r["s"], r["d"], TRANSFER)] = GraphEdge(
                            r["s"], r["d"], TRANSFER, True, int(r["n"]), float(r["total"])
                        )
            if types is None or types:
                for r in tx.run(ADJ_LINKS, ids=ids, types=types, reserved=_RESERVED):
                    edges[(r["s"], r["d"], r["t"])] = GraphEdge(r["s"], r["d"], r["t"], False)
            return [edges[k] for k in sorted(edges)]

        return self._read(run)

    def _link_types(self, tx: ManagedTransaction) -> list[str]:
        return sorted(
            t
            for t in (r[0] for r in tx.run(REL_TYPES))
            if t not in RESERVED_LINK_TYPES and LINK_TYPE_RE.match(t)
        )

    def expand(
        self,
        account_ids: Sequence[str],
        relations: frozenset[str] | None,
        limit: int,
        hub_degree: int | None = None,
    ) -> dict[str, Ties]:
        ids = list(dict.fromkeys(account_ids))

        def run(tx: ManagedTransaction) -> dict[str, Ties]:
            links = (
                self._link_types(tx)
                if relations is None
                else sorted(relations - RESERVED_LINK_TYPES)
            )
            names = ([TRANSFER] if relations is None or TRANSFER in relations else []) + [
                _rel(t) for t in links
            ]
            if not names:
                return {a: Ties({}, []) for a in self._present(tx, ids)}
            types = [TRANSFERRED if n == TRANSFER else n for n in names]
            query = EXPAND.replace(
                "{degrees}",
                ", ".join(
                    f"COUNT {{ (a)-[:`{t}`]->() }} + COUNT {{ (a)<-[:`{t}`]-() }}" for t in types
                ),
            ).replace("{types}", "|".join(f"`{t}`" for t in types))
            out: dict[str, Ties] = {}
            params = {"k": limit, "hub": hub_degree, "n": self.tie_list_len}
            params["listed"] = relations is None
            for r in tx.run(query, params, ids=ids):
                degree = {n: int(d) for n, d in zip(names, r["degs"], strict=True) if d}
                walked = limit > 0 and (hub_degree is None or r["total"] <= hub_degree)
                ties = [(b, int(w)) for b, w in r["ties"]] if walked else None
                if ties is not None:
                    ties.sort(key=lambda t: (-t[1], t[0]))
                out[r["id"]] = Ties(degree, ties if limit > 0 else [])
            return out

        return self._read(run) if ids else {}

    @staticmethod
    def _present(tx: ManagedTransaction, ids: list[str]) -> list[str]:
        gone = {r[0] for r in tx.run(MISSING_ACCOUNTS, ids=ids)}
        return [a for a in ids if a not in gone]

    def edges_between(
        self, pairs: Sequence[tuple[str, str]], relations: frozenset[str] | None = None
    ) -> list[GraphEdge]:
        todo = [list(p) for p in dict.fromkeys(pairs)]
        want_transfers = relations is None or TRANSFER in relations
        types = None if relations is None else sorted(relations - {TRANSFER})

        def run(tx: ManagedTransaction) -> list[GraphEdge]:
            edges: dict[tuple[str, str, str], GraphEdge] = {}
            if want_transfers:
                for r in tx.run(PAIR_TRANSFERS, pairs=todo):
                    edges[(r["s"], r["d"], TRANSFER)] = GraphEdge(
                        r["s"], r["d"], TRANSFER, True, int(r["n"]), float(r["total"])
                    )
            links = (
                self._link_types(tx)
                if types is None
                else [t for t in types if t not in RESERVED_LINK_TYPES and LINK_TYPE_RE.match(t)]
            )
            if links:
                query = PAIR_LINKS.replace("{types}", "|".join(f"`{t}`" for t in links))
                for r in tx.run(query, pairs=todo):
                    edges[(r["s"], r["d"], r["t"])] = GraphEdge(r["s"], r["d"], r["t"], False)
            return [edges[k] for k in sorted(edges)]

        return self._read(run) if todo else []

    def edges_among(
        self, account_ids: Sequence[str], relations: frozenset[str] | None, heavy: set[str]
    ) -> list[GraphEdge]:
        inside = list(dict.fromkeys(account_ids))
        light = [a for a in inside if a not in heavy]
        types = None
        if relations is not None:
            types = sorted(
                {TRANSFERRED if r == TRANSFER else r for r in relations} - {"HAS_MEMBER", "LINK"}
            )
        reserved = sorted(RESERVED_LINK_TYPES - {TRANSFERRED})

        def run(tx: ManagedTransaction) -> list[GraphEdge]:
            elements = [r["e"] for r in tx.run(VIEW_NODES, ids=inside)]
            edges: list[GraphEdge] = []
            params = {"light": light, "inside": elements, "types": types, "reserved": reserved}
            for r in tx.run(EDGES_AMONG, params):
                if r["t"] == TRANSFERRED:
                    edges.append(
                        GraphEdge(r["s"], r["d"], TRANSFER, True, int(r["n"]), float(r["total"]))
                    )
                else:
                    edges.append(GraphEdge(r["s"], r["d"], r["t"], False))
            return edges

        edges = self._read(run) if light else []
        # Pairs of heavy accounts: looked up, never walked (as the contract's default).
        big = sorted(heavy & set(inside))
        pairs = [(a, b) for i, a in enumerate(big) for b in big[i + 1 :]]
        if pairs:
            edges += self.edges_between(pairs, relations)
        edges.sort(key=lambda e: (e.src, e.dst, e.relation))
        return _dedupe(edges)

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
        check_page(limit, offset)
        self._require_accounts([account_id], "transfers")
        params = {"id": account_id, "cp": counterparty, "since": since, "until": until}

        count, page = (
            (COUNT_PAIR_TRANSFERS_OF, PAIR_TRANSFERS_OF)
            if counterparty is not None
            else (COUNT_TRANSFERS_OF, TRANSFERS_OF)
        )
        if counterparty is None and since is None and until is None:
            count = COUNT_ALL_TRANSFERS_OF

        def run(tx: ManagedTransaction) -> Page[Transfer]:
            rec = tx.run(count, params).single()
            total = 0 if rec is None else int(rec[0])
            items = [
                _transfer(r) for r in tx.run(page, params | {"limit": limit, "offset": offset})
            ]
            return Page(items, total, limit, offset)

        return self._read(run)

    def transfers_among(self, account_ids: Sequence[str], *, limit: int = 200) -> list[Transfer]:
        check_page(limit, 0)
        ids = sorted(set(account_ids))

        def run(tx: ManagedTransaction) -> list[Transfer]:
            return [_transfer(r) for r in tx.run(TRANSFERS_AMONG, ids=ids, limit=limit)]

        return self._read(run)

    def find_rings(
        self,
        *,
        statuses: Sequence[RingStatus] | None = None,
        kinds: Sequence[RingKind] | None = None,
        min_score: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Ring]:
        check_page(limit, offset)
        params = {
            "statuses": None if statuses is None else list(statuses),
            "kinds": None if kinds is None else list(kinds),
            "min_score": min_score,
        }

        def run(tx: ManagedTransaction) -> tuple[int, list[str]]:
            total = int(tx.run(COUNT_RINGS_MATCHING, params).single(strict=True)[0])
            page = params | {"limit": limit, "offset": offset}
            return total, [r[0] for r in tx.run(FIND_RING_IDS, page)]

        total, ids = self._read(run)
        # get_ring per id (a page is small): one place knows how a ring is read.
        return Page([self.get_ring(i) for i in ids], total, limit, offset)

    def ring_memberships(self, account_ids: Sequence[str]) -> dict[str, list[str]]:
        def run(tx: ManagedTransaction) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for r in tx.run(RING_MEMBERSHIPS, ids=sorted(set(account_ids))):
                out.setdefault(r["id"], []).append(r["ring"])
            return {a: sorted(rings) for a, rings in out.items()}

        return self._read(run)

    def snapshot(self) -> Snapshot:
        def run(tx: ManagedTransaction) -> Snapshot:
            w = tx.run(CURRENT_SEQ).single(strict=True)["seq"]
            ids: list[str] = []
            created: list[float | None] = []
            features: list[dict[str, float]] = []
            labels: list[tuple[str, str]] = []
            for r in tx.run(SNAP_ACCOUNTS, w=w):
                ids.append(r["id"])
                created.append(r["created"])
                features.append(dict(r["features"]))
                if r["label"] is not None:
                    labels.append((r["id"], r["label"]))
            builder = SnapshotBuilder(ids, created, features)
            builder.set_labels(labels)
            builder.add_transfers(tuple(r) for r in tx.run(SNAP_TRANSFERS, w=w))
            builder.add_links(tuple(r) for r in tx.run(SNAP_LINKS, w=w, reserved=_RESERVED))
            return builder.build()

        return self._read(run)
