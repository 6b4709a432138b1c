"""The investigator reads of the GraphStore contract, against every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from creditgraph.domain import Ring, Transfer
from creditgraph.errors import InvalidInput, NotFound
from creditgraph.store.base import GraphStore
from tests.integration.test_store_contract import ACCOUNTS, LABELS, LINKS, TRANSFERS, load

# A transfer to oneself appears once in the account's list.
SELF_TRANSFER = """transfer_id,src,dst,amount,timestamp
T7,A,A,1.5,2024-01-15T00:00:00Z
"""


def ts(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def graph(store: GraphStore, tmp_path: Path) -> GraphStore:
    load(store, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS)
    (tmp_path / "self").mkdir()
    load(store, tmp_path / "self", transfers=SELF_TRANSFER)
    return store


def ids(transfers: list[Transfer]) -> list[str]:
    return [t.transfer_id for t in transfers]


def test_transfers_of_newest_first_both_directions(graph: GraphStore) -> None:
    page = graph.transfers_of("A")
    assert ids(page.items) == ["T6", "T4", "T2", "T1", "T7"]
    assert (page.total, page.limit, page.offset) == (5, 50, 0)
    t6 = page.items[0]
    assert (t6.src, t6.dst, t6.amount, t6.timestamp) == ("H", "A", 2.0, ts("2024-02-06T10:00"))
    assert (t6.currency, t6.channel) == ("EUR", "app")
    t4 = page.items[1]
    assert (t4.currency, t4.channel) == (None, None)


def test_transfers_of_filters_and_pages(graph: GraphStore) -> None:
    assert ids(graph.transfers_of("A", counterparty="B").items) == ["T2", "T1"]
    assert ids(graph.transfers_of("A", counterparty="A").items) == ["T7"]
    since = graph.transfers_of("A", since=ts("2024-02-03T10:00"))
    assert ids(since.items) == ["T6", "T4", "T2"]
    window = graph.transfers_of("A", since=ts("2024-02-01"), until=ts("2024-02-04T10:00"))
    assert ids(window.items) == ["T4", "T2", "T1"]
    page = graph.transfers_of("A", limit=2, offset=1)
    assert ids(page.items) == ["T4", "T2"]
    assert page.total == 5
    assert graph.transfers_of("A", limit=2, offset=10).items == []
    assert graph.transfers_of("G").total == 0


def test_transfers_of_refuses_bad_input(graph: GraphStore) -> None:
    with pytest.raises(NotFound):
        graph.transfers_of("nobody")
    with pytest.raises(InvalidInput):
        graph.transfers_of("A", limit=0)
    with pytest.raises(InvalidInput):
        graph.transfers_of("A", offset=-1)
    with pytest.raises(InvalidInput):
        graph.transfers_of("A", offset=2**63)
    with pytest.raises(InvalidInput):
        graph.find_rings(offset=2**63)


def test_transfers_among(graph: GraphStore) -> None:
    assert ids(graph.transfers_among(["A", "B", "C"])) == ["T4", "T2", "T3", "T1", "T7"]
    assert ids(graph.transfers_among(["C", "A", "B"], limit=2)) == ["T4", "T2"]
    assert graph.transfers_among(["D", "F"]) == []


RINGS = [
    Ring("R1", "cycle", 0.9, ["A", "B", "C"], {"cycles": [["A", "B", "C"]]}),
    Ring("R2", "shared_identity", 0.5, ["C", "E"], {}, status="investigating"),
    Ring("R3", "cycle", 0.7, ["F", "G"], {}, status="confirmed", note="checked"),
    Ring("R4", "collusion", 0.7, ["A", "H"], {}),
]


def test_find_rings_filters_and_pages(graph: GraphStore) -> None:
    graph.write_rings(RINGS)
    page = graph.find_rings()
    assert [r.ring_id for r in page.items] == ["R1", "R3", "R4", "R2"]
    assert page.total == 4
    assert page.items[0] == RINGS[0]
    assert [r.ring_id for r in graph.find_rings(kinds=["cycle"]).items] == ["R1", "R3"]
    open_ = graph.find_rings(statuses=["new", "investigating"])
    assert [r.ring_id for r in open_.items] == ["R1", "R4", "R2"]
    assert graph.find_rings(statuses=[]).total == 0
    assert [r.ring_id for r in graph.find_rings(min_score=0.7).items] == ["R1", "R3", "R4"]
    page = graph.find_rings(limit=2, offset=1)
    assert ([r.ring_id for r in page.items], page.total) == (["R3", "R4"], 4)
    combined = graph.find_rings(statuses=["new"], kinds=["cycle", "collusion"], min_score=0.8)
    assert [r.ring_id for r in combined.items] == ["R1"]


def test_ring_memberships(graph: GraphStore) -> None:
    graph.write_rings(RINGS)
    assert graph.ring_memberships(["A", "C", "D", "nobody"]) == {
        "A": ["R1", "R4"],
        "C": ["R1", "R2"],
    }
    assert graph.ring_memberships([]) == {}


def test_neighbourhood_stops_at_max_nodes(graph: GraphStore) -> None:
    # A's strongest tie is B (two transfers and a friendship), then C and H (one transfer
    # each; A's transfer to itself is no tie). The budget is spent after C: H, and B's and
    # C's other neighbours (D, E) stay out, and those three accounts say so with their
    # relationship counts (A: six transfer ends, its own transfer counting twice, and B's
    # friendship).
    sub = graph.neighbourhood("A", hops=2, limit=25, max_nodes=3)
    assert sub.nodes == ["A", "B", "C"]
    assert (sub.truncated, sub.capped) == (True, {"A": 7, "B": 5, "C": 3})
    assert sub.degrees == {
        "A": {"TRANSFER": 6, "FRIEND": 1},
        "B": {"TRANSFER": 3, "FRIEND": 2},
        "C": {"TRANSFER": 2, "SHARES_DEVICE": 1},
    }
    assert {(e.src, e.dst) for e in sub.edges} == {("A", "A"), ("A", "B"), ("B", "C"), ("C", "A")}
    whole = graph.neighbourhood("A", hops=2, limit=25)
    assert (whole.truncated, whole.capped) == (False, {})
    assert set(whole.nodes) == {"A", "B", "C", "D", "E", "H"}
