"""A view's store reads in one read transaction (``GraphStore.read_view``), on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgraph.errors import NotFound
from creditgraph.services import investigate as inv
from creditgraph.store.base import GraphStore
from creditgraph.store.neo4j import Neo4jStore
from tests.conftest import make_settings, wipe_neo4j
from tests.integration.test_store_contract import ACCOUNTS, LABELS, LINKS, TRANSFERS, load


@pytest.fixture
def graph(store: GraphStore, tmp_path: Path) -> GraphStore:
    load(store, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS)
    return store


def views(store: GraphStore, one_read: bool) -> list[Any]:
    def call(fn: Any, *args: Any, **kw: Any) -> Any:
        return (fn if one_read else fn.__wrapped__)(store, *args, **kw)

    return [
        call(inv.account_view, "A"),
        call(inv.neighbourhood_graph, "A", hops=2, limit=2),
        call(inv.paths_view, "A", "H", max_hops=4),
        call(inv.account_transfers, "A"),
        call(inv.ring_queue),
    ]


def test_views_answer_the_same_in_one_read(graph: GraphStore) -> None:
    assert views(graph, one_read=True) == views(graph, one_read=False)


def test_read_view_nests_and_ends_on_error(graph: GraphStore) -> None:
    with graph.read_view(), graph.read_view():
        assert graph.expand(["A"], None, 5)["A"].total > 0
    with pytest.raises(NotFound), graph.read_view():
        inv.neighbourhood_graph(graph, "nobody")
    # The store reads normally afterwards (no transaction left behind).
    assert graph.transfers_of("A").total > 0


@pytest.fixture
def neo(tmp_path: Path) -> Iterator[Neo4jStore]:
    settings = make_settings("neo4j", tmp_path)
    wipe_neo4j(settings)
    store = Neo4jStore.connect(settings)
    (tmp_path / "g").mkdir()
    load(store, tmp_path / "g", accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS)
    try:
        yield store
    finally:
        store.close()


@pytest.mark.neo4j
def test_neo4j_view_opens_one_session(neo: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[dict[str, Any]] = []
    session = neo._driver.session

    def counting(**kw: Any) -> Any:
        opened.append(kw)
        return session(**kw)

    monkeypatch.setattr(neo._driver, "session", counting)
    one = inv.neighbourhood_graph(neo, "A", hops=2, limit=2)
    assert len(opened) == 1
    opened.clear()
    assert inv.neighbourhood_graph.__wrapped__(neo, "A", hops=2, limit=2) == one  # type: ignore[attr-defined]
    assert len(opened) > 3
