"""The embedded store's derived tables (degrees, ties): one bulk rebuild, one migration from
v1, and the row-by-row triggers all give the same answer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from creditgraph.store import embedded
from creditgraph.store.embedded import EmbeddedStore
from tests.integration.test_store_contract import ACCOUNTS, LABELS, LINKS, TRANSFERS, load

IDS = list("ABCDEFGH")


def derived(store: EmbeddedStore) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    db = store._db
    return (
        db.execute("SELECT account_id, relation, n FROM degrees ORDER BY 1, 2").fetchall(),
        db.execute("SELECT account_id, other, w FROM ties ORDER BY 1, 2").fetchall(),
    )


@pytest.fixture
def rowwise(tmp_path: Path) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path / "rowwise.sqlite")
    load(store, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS)
    return store


def test_bulk_rebuild_matches_triggers(
    rowwise: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Below BULK_MIN_ROWS the triggers keep the tables; above it they are rebuilt at the end.
    monkeypatch.setattr(embedded, "BULK_MIN_ROWS", 1)
    (tmp_path / "bulk").mkdir()
    bulk = EmbeddedStore(tmp_path / "bulk.sqlite")
    load(bulk, tmp_path / "bulk", accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS)
    assert derived(bulk) == derived(rowwise)
    assert derived(bulk)[0]  # not trivially equal
    assert bulk.expand(IDS, None, 3) == rowwise.expand(IDS, None, 3)
    # The triggers are back after a bulk load: a later small write still counts.
    monkeypatch.setattr(embedded, "BULK_MIN_ROWS", 100_000)
    (tmp_path / "more").mkdir()
    for store in (bulk, rowwise):
        load(
            store,
            tmp_path / "more",
            transfers="transfer_id,src,dst,amount,timestamp\nT9,G,H,1,2024-03-01\n",
        )
    assert derived(bulk) == derived(rowwise)
    assert bulk.expand(["G"], None, 3)["G"].degree == {"FRIEND": 1, "TRANSFER": 1}


def test_v1_store_is_migrated_on_open(rowwise: EmbeddedStore, tmp_path: Path) -> None:
    expected = derived(rowwise)
    path = rowwise.path
    rowwise.close()
    # Make it a v1 store: no derived tables, no triggers, user_version 1.
    db = sqlite3.connect(path)
    for stmt in (
        "DROP TRIGGER transfers_ties",
        "DROP TRIGGER links_ties",
        "DROP TABLE ties",
        "DROP TABLE degrees",
        "PRAGMA user_version=1",
    ):
        db.execute(stmt)
    db.commit()
    db.close()
    again = EmbeddedStore(path)
    assert derived(again) == expected
    assert again._db.execute("PRAGMA user_version").fetchone()[0] == embedded.SCHEMA_VERSION
    assert again.apply_schema() == [f"sqlite schema v{embedded.SCHEMA_VERSION}"]  # once only
    again.close()
