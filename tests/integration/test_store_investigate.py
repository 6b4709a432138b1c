"""The investigator reads of the GraphStore contract, against every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from creditgraph.domain import TRANSFER, LinkColumns, Ring, Ties, Transfer, TransferColumns
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
    with_b = graph.transfers_of("A", counterparty="B")
    assert (ids(with_b.items), with_b.total) == (["T2", "T1"], 2)
    own = graph.transfers_of("A", counterparty="A")
    assert (ids(own.items), own.total) == (["T7"], 1)
    assert graph.transfers_of("A", since=ts("2024-02-03T10:00"), until=ts("2024-02-05")).total == 2
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


def test_expand_degrees_and_strongest_ties(graph: GraphStore) -> None:
    got = graph.expand(["A", "G", "B"], None, 2)
    assert got["A"] == Ties({"TRANSFER": 6, "FRIEND": 1}, [("B", 3), ("C", 1)])
    assert got["B"] == Ties({"TRANSFER": 3, "FRIEND": 2}, [("A", 3), ("C", 1)])
    assert got["G"] == Ties({"FRIEND": 1}, [("F", 1)])
    # A hub threshold below A's seven relationships: degrees only, ties not read.
    capped = graph.expand(["A", "C"], None, 5, hub_degree=5)
    assert (capped["A"].ties, capped["A"].total) == (None, 7)
    assert capped["C"].ties == [("A", 1), ("B", 1), ("E", 1)]
    assert graph.expand(["A"], None, 0)["A"] == Ties({"TRANSFER": 6, "FRIEND": 1}, [])
    # A relation filter weighs ties and counts degrees within it.
    transfers = graph.expand(["A"], frozenset({TRANSFER}), 5)["A"]
    assert transfers == Ties({"TRANSFER": 6}, [("B", 2), ("C", 1), ("H", 1)])
    friends = graph.expand(["B"], frozenset({"FRIEND", "SHARES_DEVICE"}), 5)["B"]
    assert friends == Ties({"FRIEND": 2}, [("A", 1), ("D", 1)])
    assert graph.expand(["A"], frozenset({"NO_SUCH_TYPE"}), 5)["A"] == Ties({}, [])


def test_edges_between_pairs_only(graph: GraphStore) -> None:
    edges = graph.edges_between([("B", "A"), ("A", "A"), ("C", "E")])
    assert [(e.src, e.dst, e.relation, e.count) for e in edges] == [
        ("A", "A", "TRANSFER", 1),
        ("A", "B", "FRIEND", 1),
        ("A", "B", "TRANSFER", 2),
        ("C", "E", "SHARES_DEVICE", 1),
    ]
    only = graph.edges_between([("A", "B")], frozenset({"FRIEND"}))
    assert [(e.src, e.dst, e.relation) for e in only] == [("A", "B", "FRIEND")]
    assert graph.edges_between([]) == []


def test_degrees_follow_ingest(graph: GraphStore, tmp_path: Path) -> None:
    # A re-import changes nothing, new relationships count at once (no rebuild needed).
    load(graph, tmp_path, transfers=TRANSFERS, links=LINKS)
    graph.upsert_transfers(
        TransferColumns(
            ["T8", "T9"], ["G", "G"], ["A", "A"], [1.0, 2.0], [0.0, 1.0], [None, None], [None, None]
        )
    )
    graph.upsert_links(LinkColumns(["A"], ["G"], ["SHARES_DEVICE"], [None]))
    a = graph.expand(["A", "G"], None, 2)
    assert a["A"] == Ties({"TRANSFER": 8, "FRIEND": 1, "SHARES_DEVICE": 1}, [("B", 3), ("G", 3)])
    assert a["G"] == Ties({"TRANSFER": 2, "FRIEND": 1, "SHARES_DEVICE": 1}, [("A", 3), ("F", 1)])


HUB_ACCOUNTS = "account_id\nHUB\n" + "".join(f"N{i}\n" for i in range(30))
HUB_LINKS = "src,dst,type\n" + "".join(f"HUB,N{i},FRIEND\n" for i in range(30)) + "N1,N2,FRIEND\n"
HUB_TRANSFERS = "transfer_id,src,dst,amount,timestamp\n" + "".join(
    f"T{i},N7,HUB,{i + 1},2024-02-01\n" for i in range(3)
)


@pytest.fixture
def hub(store: GraphStore, tmp_path: Path) -> GraphStore:
    load(store, tmp_path, accounts=HUB_ACCOUNTS, links=HUB_LINKS, transfers=HUB_TRANSFERS)
    return store


def test_hub_is_summarised_not_walked(hub: GraphStore) -> None:
    # From N3, two hops reach HUB (33 relationships > 10) and stop there: it is drawn with
    # its counts per relation, and its other neighbours are not walked.
    sub = hub.neighbourhood("N3", hops=2, limit=5, hub_degree=10)
    assert sub.nodes == ["N3", "HUB"]
    assert (sub.truncated, sub.hubs, sub.summarised) == (True, ["HUB"], ["HUB"])
    assert sub.capped == {"HUB": 33}
    assert sub.degrees == {"HUB": {"FRIEND": 30, "TRANSFER": 3}}
    assert [(e.src, e.dst, e.relation) for e in sub.edges] == [("HUB", "N3", "FRIEND")]
    walked = hub.neighbourhood("N3", hops=2, limit=5, hub_degree=10, through_hubs=True)
    assert walked.nodes == ["N3", "HUB", "N7", "N0", "N1", "N10", "N11"]
    assert (walked.summarised, walked.capped) == ([], {"HUB": 33})
    # A hub at the centre shows its strongest ties; a hub reached at the last hop is marked.
    centre = hub.neighbourhood("HUB", hops=1, limit=3, hub_degree=10)
    assert centre.nodes == ["HUB", "N7", "N0", "N1"]
    assert (centre.hubs, centre.summarised, centre.capped) == (["HUB"], [], {"HUB": 33})
    leaf = hub.neighbourhood("N3", hops=1, hub_degree=10)
    assert (leaf.nodes, leaf.hubs, leaf.summarised, leaf.truncated) == (
        ["N3", "HUB"],
        ["HUB"],
        [],
        False,
    )
    assert leaf.degrees == {"HUB": {"FRIEND": 30, "TRANSFER": 3}}
    # Above the threshold nothing is summarised.
    assert hub.neighbourhood("N3", hops=2, limit=5).summarised == []


def test_paths_say_when_cut_short(hub: GraphStore) -> None:
    # N3 and N4 meet only through HUB.
    skipped = hub.shortest_paths("N3", "N4", hub_degree=10)
    assert (skipped.paths, skipped.cut_short, skipped.hubs_skipped) == ([], ["hubs"], ["HUB"])
    through = hub.shortest_paths("N3", "N4", hub_degree=10, through_hubs=True)
    assert [p.accounts for p in through.paths] == [["N3", "HUB", "N4"]]
    assert through.complete
    # An end may be a hub: its ties are followed.
    assert [p.accounts for p in hub.shortest_paths("HUB", "N4", hub_degree=10).paths] == [
        ["HUB", "N4"]
    ]
    # Following only the strongest tie per account: N7 (three transfers) crowds out N4.
    fan = hub.shortest_paths("HUB", "N2", fanout=1, max_hops=2)
    assert (fan.paths, fan.cut_short) == ([], ["fanout"])
    # No time to expand at all (a deadline of zero has passed by the first check).
    late = hub.shortest_paths("N3", "N4", deadline_s=0.0)
    assert (late.paths, late.cut_short) == ([], ["deadline"])


def test_paths_enumeration_is_bounded(store: GraphStore, tmp_path: Path) -> None:
    load(
        store,
        tmp_path,
        accounts="account_id\nS\nX\nY\nT\n",
        links="src,dst,type\nS,X,FRIEND\nS,Y,FRIEND\nX,T,FRIEND\nY,T,FRIEND\n",
    )
    bounded = store.shortest_paths("S", "T", max_enumerated=1)
    assert ([p.accounts for p in bounded.paths], bounded.cut_short) == (
        [["S", "X", "T"]],
        ["paths"],
    )
    assert store.shortest_paths("S", "T").complete
