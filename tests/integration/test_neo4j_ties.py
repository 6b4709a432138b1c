"""Neo4j keeps high-degree accounts' strongest ties on the node (``store.neo4j_ties``): the
lists answer exactly what a walk answers, stay exact through ingest, and a rebuild (what a
bulk load runs) gives the same lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgraph.domain import LinkColumns, TransferColumns
from creditgraph.store.neo4j import Neo4jStore
from tests.conftest import make_settings, wipe_neo4j
from tests.integration.test_store_contract import ACCOUNTS, LINKS, TRANSFERS, load

pytestmark = pytest.mark.neo4j

# Every relation of these graphs, spelled out: a relation filter always walks, so comparing
# with it checks the kept lists against a walk.
EVERY = frozenset({"TRANSFER", "FRIEND", "SHARES_DEVICE"})


@pytest.fixture
def neo(tmp_path: Path) -> Iterator[Neo4jStore]:
    settings = make_settings("neo4j", tmp_path)
    wipe_neo4j(settings)
    store = Neo4jStore.connect(settings)
    store.tie_list_degree = 3
    try:
        yield store
    finally:
        store.close()


def kept(store: Neo4jStore) -> dict[str, list[tuple[str, int]]]:
    with store._driver.session(database=store._database) as s:
        rows: list[Any] = list(
            s.run(
                "MATCH (a:Account) WHERE a.ties_top IS NOT NULL "
                "RETURN a.account_id AS id, a.ties_top AS top, a.ties_w AS w"
            )
        )
    return {r["id"]: list(zip(r["top"], r["w"], strict=True)) for r in rows}


def test_kept_ties_answer_like_a_walk_through_ingest(neo: Neo4jStore, tmp_path: Path) -> None:
    load(neo, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS)
    # A (7 relationships), B (5) and C (4) reach the threshold of 3; the others do not.
    lists = kept(neo)
    assert sorted(lists) == ["A", "B", "C"]
    assert lists["A"] == [("B", 3), ("C", 1), ("H", 1)]
    ids = ["A", "B", "C", "D", "H"]
    for k in (1, 2, 5):
        assert neo.expand(ids, None, k) == neo.expand(ids, EVERY, k)
    # New relationships, one batch at a time: G joins A's list, overtakes C and H, and G
    # itself crosses the threshold (its list is built in the writing transaction).
    neo.upsert_transfers(
        TransferColumns(
            ["T8", "T9"], ["G", "G"], ["A", "A"], [1.0, 2.0], [0.0, 1.0], [None, None], [None, None]
        )
    )
    neo.upsert_links(LinkColumns(["A"], ["G"], ["SHARES_DEVICE"], [None]))
    lists = kept(neo)
    assert lists["A"] == [("B", 3), ("G", 3), ("C", 1), ("H", 1)]
    assert lists["G"] == [("A", 3), ("F", 1)]
    assert neo.expand(["A", "G"], None, 2) == neo.expand(["A", "G"], EVERY, 2)
    # A re-import writes no relationship and leaves the lists as they are.
    load(neo, tmp_path, transfers=TRANSFERS, links=LINKS)
    assert kept(neo) == lists
    # A rebuild (after a bulk load) walks every account again and finds the same.
    assert neo.rebuild_ties() == 4
    assert kept(neo) == lists
    # Erasing an account lowers its neighbours' weights: their lists drop it.
    neo.erase_account("G")
    lists = kept(neo)
    assert lists["A"] == [("B", 3), ("C", 1), ("H", 1)]
    assert "G" not in lists
    assert neo.expand(ids, None, 5) == neo.expand(ids, EVERY, 5)


def test_kept_lists_are_cut_at_their_length(neo: Neo4jStore, tmp_path: Path) -> None:
    neo.tie_list_len = 10
    n = 40
    accounts = "account_id\nHUB\n" + "".join(f"N{i:02d}\n" for i in range(n))
    # N00 has 3 transfers with HUB, N01 2, the others one friendship each.
    links = "src,dst,type\n" + "".join(f"HUB,N{i:02d},FRIEND\n" for i in range(2, n))
    transfers = "transfer_id,src,dst,amount,timestamp\n" + "".join(
        f"T{i},N{i // 3:02d},HUB,1,2024-02-01\n" for i in range(5)
    )
    load(neo, tmp_path, accounts=accounts, links=links, transfers=transfers)
    top = kept(neo)["HUB"]
    assert top == [("N00", 3), ("N01", 2)] + [(f"N{i:02d}", 1) for i in range(2, 10)]
    # Up to the list's length it answers; past it (and with a filter) the hub is walked.
    for k in (1, 3, 10, 11, n, n + 5):
        assert neo.expand(["HUB"], None, k) == neo.expand(["HUB"], EVERY, k)
    assert len(neo.expand(["HUB"], None, n + 5)["HUB"].ties or []) == n
    # A hub threshold below the degree still means degrees only.
    assert neo.expand(["HUB"], None, 5, hub_degree=10)["HUB"].ties is None
