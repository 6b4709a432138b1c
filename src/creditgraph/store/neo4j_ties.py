"""The strongest ties of Neo4j's high-degree accounts, kept on the node.

Neo4j has no adjacency sorted by weight: "an account's k strongest ties" reads every
relationship of the account and sorts the neighbours (1.4 s for a 379k-relationship merchant at
1M accounts). So an account with at least ``min_degree`` relationships carries its
``TIE_LIST_LEN`` strongest ties as two list properties, ``ties_top`` (account ids) and
``ties_w`` (relationships joining the pair), heaviest first then by id, oneself left out: the
same order ``expand`` answers with. ``expand`` reads a slice of them instead of walking, when it
is asked for every relation.

The lists stay exact under ingest without walking again: weights only grow (transfers are
immutable events, links are never removed), so the new top ``n`` lies among the old list and
the pairs a write touched, and those pairs are recounted by an expand-into (``COUNT {(a)--(b)}``
walks the smaller side). ``refresh`` runs in the writing transaction; an account that crosses
``min_degree`` gets its list built there once. A bulk load (``neo4j-admin``, which bypasses the
writes) is followed by ``rebuild``. Erasing an account (data-subject erasure) is the one write
that lowers weights: the lists of its neighbours are built again (``listed_neighbours``, then
``build``) in the erasing transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from neo4j import ManagedTransaction, Session

#: Ties kept per account: the largest ``expand`` limit the API asks for (1000 + 1).
TIE_LIST_LEN = 1001
#: Accounts with at least this many relationships keep their list; below it a walk is cheap.
TIE_LIST_DEGREE = 1000

# A relationship between two accounts is a transfer or a link (ring membership ends at a
# Ring), so "every relation" weighs a pair by all relationships joining it.
TIE_STATE = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})
WITH a, id, COUNT { (a)--() } AS d
WHERE a.ties_top IS NOT NULL OR d >= $min
RETURN id, a.ties_top AS top, a.ties_w AS w
"""
TIE_BUILD = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})
CALL (a) {
  MATCH (a)-[r]-(b:Account) WHERE b <> a
  WITH b, count(r) AS w
  ORDER BY w DESC, b.account_id
  LIMIT $n
  RETURN collect([b.account_id, w]) AS ties
}
RETURN id, ties
"""
PAIR_WEIGHTS = """
UNWIND $pairs AS p
MATCH (a:Account {account_id: p[0]})
MATCH (b:Account {account_id: p[1]})
RETURN p[0] AS a, p[1] AS b, COUNT { (a)--(b) } AS w
"""
LISTED_NEIGHBOURS = """
MATCH (a:Account {account_id: $id})--(b:Account)
WHERE b <> a AND b.ties_top IS NOT NULL
RETURN DISTINCT b.account_id AS id
"""
SET_TIES = """
UNWIND $rows AS r
MATCH (a:Account {account_id: r[0]})
SET a.ties_top = r[1], a.ties_w = r[2]
"""
LISTED = "MATCH (a:Account) WHERE a.ties_top IS NOT NULL RETURN a.account_id AS id"
CLEAR = """
UNWIND $ids AS id
MATCH (a:Account {account_id: id})
REMOVE a.ties_top, a.ties_w
"""
HEAVY = """
MATCH (a:Account)
WITH a, COUNT { (a)--() } AS d
WHERE d >= $min
RETURN a.account_id AS id
"""


def _ranked(ties: Iterable[tuple[str, int]], n: int) -> list[tuple[str, int]]:
    return sorted(ties, key=lambda t: (-t[1], t[0]))[:n]


def _write(tx: ManagedTransaction, lists: dict[str, list[tuple[str, int]]]) -> None:
    rows = [[a, [b for b, _ in t], [w for _, w in t]] for a, t in sorted(lists.items())]
    if rows:
        tx.run(SET_TIES, rows=rows).consume()


def listed_neighbours(tx: ManagedTransaction, account_id: str) -> list[str]:
    """The neighbours of ``account_id`` that keep a list (read before erasing it)."""
    return sorted(r["id"] for r in tx.run(LISTED_NEIGHBOURS, id=account_id))


def build(tx: ManagedTransaction, ids: Sequence[str], n: int = TIE_LIST_LEN) -> int:
    """(Re)build the lists of ``ids`` by walking them; returns how many were written."""
    lists = {
        r["id"]: _ranked(((b, int(w)) for b, w in r["ties"]), n)
        for r in tx.run(TIE_BUILD, ids=list(ids), n=n)
    }
    _write(tx, lists)
    return len(lists)


def refresh(
    tx: ManagedTransaction,
    pairs: Iterable[tuple[str, str]],
    min_degree: int = TIE_LIST_DEGREE,
    n: int = TIE_LIST_LEN,
) -> None:
    """Bring the lists of both ends of ``pairs`` (just written relationships) up to date,
    inside the writing transaction."""
    touched: dict[str, set[str]] = {}
    for a, b in pairs:
        if a != b:
            touched.setdefault(a, set()).add(b)
            touched.setdefault(b, set()).add(a)
    if not touched:
        return
    listed: dict[str, list[tuple[str, int]]] = {}
    crossing: list[str] = []
    for r in tx.run(TIE_STATE, ids=sorted(touched), min=min_degree):
        if r["top"] is None:
            crossing.append(r["id"])
        else:
            listed[r["id"]] = list(zip(r["top"], (int(w) for w in r["w"]), strict=True))
    if crossing:
        build(tx, crossing, n)
    if not listed:
        return
    recount = [[a, b] for a in sorted(listed) for b in sorted(touched[a])]
    fresh: dict[str, dict[str, int]] = {a: {} for a in listed}
    for r in tx.run(PAIR_WEIGHTS, pairs=recount):
        fresh[r["a"]][r["b"]] = int(r["w"])
    lists = {}
    for a, old in listed.items():
        merged = {b: w for b, w in old if b not in fresh[a]} | fresh[a]
        lists[a] = _ranked(merged.items(), n)
    _write(tx, lists)


def rebuild(
    session: Session, min_degree: int = TIE_LIST_DEGREE, n: int = TIE_LIST_LEN, chunk: int = 20
) -> int:
    """Every list from scratch (after a bulk load): drop the old ones, build one for each
    account with at least ``min_degree`` relationships; returns how many were built."""
    old = [r["id"] for r in session.run(LISTED)]
    heavy: list[str] = [r["id"] for r in session.run(HEAVY, min=min_degree)]
    stale = sorted(set(old) - set(heavy))

    def clear(tx: ManagedTransaction, ids: list[str]) -> None:
        tx.run(CLEAR, ids=ids).consume()

    for i in range(0, len(stale), 10_000):
        session.execute_write(clear, stale[i : i + 10_000])
    built = 0
    for i in range(0, len(heavy), chunk):
        built += session.execute_write(build, heavy[i : i + chunk], n)
    return built
