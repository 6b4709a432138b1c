"""The embedded store's transfer pair indexes cover ``amount`` (schema v4): ``adjacent`` and
``edges_between`` read index pages only, every query that used the pair indexes still gets
an index, and a v3 store (pair indexes without ``amount``) is migrated on open with the
same answers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from creditgraph.store import embedded
from creditgraph.store.embedded import EmbeddedStore
from tests.integration.test_store_contract import ACCOUNTS, LABELS, LINKS, TRANSFERS, load

V3_INDEXES = {
    "transfers_src_dst": "CREATE INDEX transfers_src_dst ON transfers(src, dst)",
    "transfers_dst_src": "CREATE INDEX transfers_dst_src ON transfers(dst, src)",
}


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / "db.sqlite")
    load(s, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS)
    return s


def plan(db: sqlite3.Connection, sql: str, params: tuple[str, ...] = ()) -> str:
    return " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params))


def columns(db: sqlite3.Connection, index: str) -> list[str]:
    return [r[2] for r in db.execute(f"PRAGMA index_info({index})")]


def test_pair_indexes_cover_amount(store: EmbeddedStore) -> None:
    db = store._db
    assert columns(db, "transfers_src_dst") == ["src", "dst", "amount"]
    assert columns(db, "transfers_dst_src") == ["dst", "src", "amount"]
    for col, index in (("src", "transfers_src_dst"), ("dst", "transfers_dst_src")):
        # ``adjacent``'s per-pair aggregate: a range of the covering index, no table rows.
        got = plan(
            db,
            "SELECT src, dst, count(*), sum(amount) FROM transfers"
            f" WHERE {col} IN (?, ?) GROUP BY src, dst",
            ("A", "B"),
        )
        assert f"COVERING INDEX {index}" in got, got
    got = plan(
        db,
        "SELECT src, dst, count(*), sum(amount) FROM transfers"
        " WHERE (src = ?1 AND dst = ?2) OR (src = ?2 AND dst = ?1) GROUP BY src, dst",
        ("A", "B"),
    )
    assert "SCAN" not in got, got
    assert got.count("COVERING INDEX transfers_") == 2, got


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT dst, count(*) FROM transfers WHERE src = ?1 AND dst <> ?1 GROUP BY dst",
        "SELECT src, count(*) FROM transfers WHERE dst = ?1 AND src <> ?1 GROUP BY src",
        embedded.ERASE_COUNT_TRANSFERS,
        "SELECT transfer_id FROM transfers WHERE src = ?1 OR dst = ?1",
        "SELECT transfer_id, ts FROM transfers INDEXED BY transfers_src_dst"
        " WHERE src = ?1 AND dst = ?1",
        "SELECT transfer_id, ts FROM transfers INDEXED BY transfers_dst_src"
        " WHERE dst = ?1 AND src = ?1",
    ],
)
def test_queries_on_an_account_still_use_an_index(store: EmbeddedStore, sql: str) -> None:
    got = plan(store._db, sql, ("A",))
    assert "SCAN transfers" not in got, got
    assert "INDEX" in got, got


def test_v3_store_is_migrated_on_open_with_the_same_answers(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    ids = list("ABCDEFGH")
    adjacent = store.adjacent(ids)
    pages = {(a, cp): store.transfers_of(a, counterparty=cp) for a in "ABC" for cp in "ABC"}
    path = store.path
    store.close()
    db = sqlite3.connect(path)  # back to v3: pair indexes without ``amount``
    for name, stmt in V3_INDEXES.items():
        db.execute(f"DROP INDEX {name}")
        db.execute(stmt)
    db.execute("PRAGMA user_version=3")
    db.commit()
    assert columns(db, "transfers_src_dst") == ["src", "dst"]
    db.close()

    again = EmbeddedStore(path)
    try:
        assert columns(again._db, "transfers_src_dst") == ["src", "dst", "amount"]
        assert columns(again._db, "transfers_dst_src") == ["dst", "src", "amount"]
        assert again._db.execute("PRAGMA user_version").fetchone()[0] == embedded.SCHEMA_VERSION
        assert again.apply_schema() == [f"sqlite schema v{embedded.SCHEMA_VERSION}"]  # once
        assert again.adjacent(ids) == adjacent
        for (a, cp), page in pages.items():
            assert again.transfers_of(a, counterparty=cp) == page
    finally:
        again.close()


def test_the_migration_reports_what_it_rebuilt(store: EmbeddedStore) -> None:
    db = store._db
    db.execute("DROP INDEX transfers_dst_src")
    db.execute(V3_INDEXES["transfers_dst_src"])
    assert store.apply_schema() == [
        f"sqlite schema v{embedded.SCHEMA_VERSION}",
        "migrated v3 -> v4: transfers_dst_src cover amount",
    ]
    assert columns(db, "transfers_dst_src") == ["dst", "src", "amount"]
    store.close()


def test_warm_request_pages_walks_each_btree_a_request_searches(store: EmbeddedStore) -> None:
    # Each statement must read the b-tree it names (SQLite answers ``count(*)`` from the
    # smallest index, and a covering index can stand in for a table: both would warm the
    # wrong pages).
    wanted = [
        "SCAN accounts",
        "SCAN transfers USING COVERING INDEX transfers_src_dst",
        "SCAN transfers USING COVERING INDEX transfers_dst_src",
        "SCAN links",
        "SCAN links USING COVERING INDEX links_dst",
    ]
    assert [plan(store._db, sql) for sql in embedded.REQUEST_PAGES] == wanted
    assert store.warm_request_pages() >= 0.0
    assert store.adjacent(["A"])  # the store reads as before
    store.close()
