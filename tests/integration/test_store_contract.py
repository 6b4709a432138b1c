"""The GraphStore contract: the same tests, unchanged, against every backend."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from creditgraph.domain import TRANSFER, AccountColumns, LinkColumns, Ring, Score, TransferColumns
from creditgraph.errors import InvalidInput, NotFound, TransferConflict
from creditgraph.services.ingest import import_file
from creditgraph.store.base import GraphStore

ACCOUNTS = """account_id,created_at,kyc_level,region
A,2024-01-01T00:00:00Z,1,north
B,2024-01-02T00:00:00Z,2,south
C,2024-01-03T00:00:00Z,,south
D,2024-01-04,3,
E,,0,east
F,2024-01-06T00:00:00Z,1,east
G,2024-01-07T00:00:00Z,2,west
H,2024-01-08T00:00:00Z,1,west
"""
TRANSFERS = """transfer_id,src,dst,amount,timestamp,currency,channel
T1,A,B,10.00,2024-02-01T10:00:00Z,EUR,app
T2,A,B,5.50,2024-02-03T10:00:00Z,EUR,web
T3,B,C,7.25,2024-02-02T10:00:00Z,EUR,app
T4,C,A,3,2024-02-04T10:00:00Z,,
T5,D,E,1,2024-02-05T10:00:00Z,EUR,card
T6,H,A,2,2024-02-06T10:00:00Z,EUR,app
"""
LINKS = """src,dst,type,since
B,A,FRIEND,2024-01-10
B,D,FRIEND,
C,E,SHARES_DEVICE,2024-01-11T00:00:00Z
F,G,FRIEND,2024-01-12
"""
LABELS = """account_id,label,source,observed_at
A,fraud,investigation,2024-03-01
D,legit,,
"""


def load(store: GraphStore, tmp_path: Path, **files: str) -> dict[str, int]:
    changed: dict[str, int] = {}
    for kind in ("accounts", "transfers", "links", "labels"):
        if kind in files:
            path = tmp_path / f"{kind}.csv"
            path.write_text(files[kind])
            changed[kind] = import_file(store, kind, path).changed
    return changed


@pytest.fixture
def graph(store: GraphStore, tmp_path: Path) -> GraphStore:
    load(store, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS)
    return store


def test_counts_after_import(graph: GraphStore) -> None:
    c = graph.counts()
    assert (c.accounts, c.transfers, c.links, c.labels, c.scores, c.rings) == (8, 6, 4, 2, 0, 0)
    assert c.links_by_type == {"FRIEND": 3, "SHARES_DEVICE": 1}


def test_reimport_changes_nothing(graph: GraphStore, tmp_path: Path) -> None:
    changed = load(
        graph, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS
    )
    assert changed == {"accounts": 0, "transfers": 0, "links": 0, "labels": 0}
    assert graph.counts().transfers == 6


def test_get_account_with_features_properties_label(graph: GraphStore) -> None:
    a = graph.get_account("A")
    assert a.created_at == pytest.approx(1704067200.0)
    assert a.features == {"kyc_level": 1.0}
    assert a.properties == {"region": "north"}
    assert a.label == "fraud"
    assert graph.get_account("C").features == {}  # empty cell = missing, not zero
    assert graph.get_account("E").created_at is None
    with pytest.raises(NotFound):
        graph.get_account("nobody")


def test_account_attributes_are_get_account_without_label_and_score(graph: GraphStore) -> None:
    graph.write_scores([Score("A", 0.9, 10.0, "v1", [], 3.0)])
    full = graph.get_account("A")
    assert full.label == "fraud"
    assert full.score is not None
    for a in "ABCDE":
        got = graph.account_attributes(a)
        assert got == dataclasses.replace(graph.get_account(a), label=None, score=None)
    with pytest.raises(NotFound):
        graph.account_attributes("nobody")


def test_account_upsert_merges_features_and_counts_changes(graph: GraphStore) -> None:
    batch = AccountColumns(["A", "B"], [None, None], [{"kyc_level": 1.0}, {"risk": 0.5}], [{}, {}])
    assert graph.upsert_accounts(batch) == 1  # A unchanged, B gains a feature
    assert graph.get_account("B").features == {"kyc_level": 2.0, "risk": 0.5}
    assert graph.get_account("B").created_at is not None  # None does not erase


def test_transfers_are_immutable_events(graph: GraphStore) -> None:
    stored = next(t for t in graph.transfers_of("A", limit=10).items if t.transfer_id == "T1")
    same = TransferColumns(
        ["T1", "T9"],
        ["A", "B"],
        ["B", "A"],
        [stored.amount, 1.0],
        [stored.timestamp, 1.0],
        [stored.currency, None],
        [stored.channel, None],
    )
    assert graph.upsert_transfers(same) == 1  # T1 again, unchanged: idempotent; T9 is new
    edges = {(e.src, e.dst): e for e in graph.adjacent(["A"], frozenset({TRANSFER}))}
    assert edges[("A", "B")].total_amount == pytest.approx(15.5)
    assert edges[("B", "A")].count == 1


def test_a_stored_transfer_id_with_other_content_is_refused(graph: GraphStore) -> None:
    changed = TransferColumns(
        ["T8", "T1", "T3"],
        ["A", "A", "B"],
        ["C", "B", "C"],
        [1.0, 999.0, 7.25],
        [0.0, 0.0, 1706868000.0],
        [None, "EUR", "EUR"],
        [None, "app", "web"],
    )
    with pytest.raises(TransferConflict) as caught:
        graph.upsert_transfers(changed)
    assert [(c.transfer_id, c.fields, c.row) for c in caught.value.changed] == [
        ("T1", ("amount", "timestamp"), 1),
        ("T3", ("channel",), 2),
    ]
    assert graph.counts().transfers == 6  # nothing of the batch, not even the new T8
    assert all(t.transfer_id != "T8" for t in graph.transfers_of("A", limit=10).items)


def test_a_csv_reimport_with_a_changed_transfer_names_file_line_and_fields(
    graph: GraphStore, tmp_path: Path
) -> None:
    lines = TRANSFERS.splitlines()
    lines[2] = lines[2].replace("5.50", "6.50").replace(",web", ",app")  # T2, on line 3
    lines.append("T7,A,C,1,2024-02-07T10:00:00Z,EUR,app")
    path = tmp_path / "again.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TransferConflict) as caught:
        import_file(graph, "transfers", path)
    assert str(caught.value).startswith(f"{path}:3: column 'transfer_id': transfer_id 'T2'")
    assert caught.value.changed[0].fields == ("amount", "channel")
    assert graph.counts().transfers == 6


def test_links_are_undirected_and_updatable(graph: GraphStore) -> None:
    assert graph.upsert_links(LinkColumns(["A"], ["B"], ["FRIEND"], [None])) == 1  # since changed
    assert graph.upsert_links(LinkColumns(["A"], ["B"], ["FRIEND"], [None])) == 0
    assert graph.counts().links_by_type["FRIEND"] == 3


def test_missing_accounts_keeps_input_order(graph: GraphStore) -> None:
    assert graph.missing_accounts(["Z", "A", "Y", "B"]) == ["Z", "Y"]
    assert graph.missing_accounts([]) == []


def test_adjacent_aggregates_transfers_per_ordered_pair(graph: GraphStore) -> None:
    edges = graph.adjacent(["A"])
    got = {(e.src, e.dst, e.relation): (e.count, round(e.total_amount, 2)) for e in edges}
    assert got == {
        ("A", "B", "TRANSFER"): (2, 15.5),
        ("C", "A", "TRANSFER"): (1, 3.0),
        ("H", "A", "TRANSFER"): (1, 2.0),
        ("A", "B", "FRIEND"): (1, 0.0),
    }
    only_links = graph.adjacent(["C"], frozenset({"SHARES_DEVICE"}))
    assert [(e.src, e.dst, e.relation) for e in only_links] == [("C", "E", "SHARES_DEVICE")]


def test_neighbourhood_hops_and_relations(graph: GraphStore) -> None:
    one = graph.neighbourhood("A", hops=1)
    assert set(one.nodes) == {"A", "B", "C", "H"}
    assert not one.truncated
    two = graph.neighbourhood("A", hops=2)
    assert set(two.nodes) == {"A", "B", "C", "H", "D", "E"}
    assert all(e.src in two.nodes and e.dst in two.nodes for e in two.edges)
    friends = graph.neighbourhood("A", hops=2, relations=["FRIEND"])
    assert set(friends.nodes) == {"A", "B", "D"}
    with pytest.raises(InvalidInput):
        graph.neighbourhood("A", hops=4)
    with pytest.raises(InvalidInput):
        graph.neighbourhood("A", relations=["friend; DROP"])
    with pytest.raises(NotFound):
        graph.neighbourhood("nobody")


def test_neighbourhood_caps_supernodes(store: GraphStore, tmp_path: Path) -> None:
    rows = "\n".join(f"N{i},2024-01-01" for i in range(30))
    load(
        store,
        tmp_path,
        accounts=f"account_id,created_at\nHUB,2024-01-01\n{rows}\n",
        links="src,dst,type\n" + "\n".join(f"HUB,N{i},FRIEND" for i in range(30)) + "\n",
        transfers="transfer_id,src,dst,amount,timestamp\n"
        + "\n".join(f"T{i},N7,HUB,{i + 1},2024-02-01" for i in range(3))
        + "\n",
    )
    sub = store.neighbourhood("HUB", hops=1, limit=5)
    assert sub.truncated
    assert len(sub.nodes) == 6
    assert sub.nodes[1] == "N7"  # strongest tie first: a friend who also sent three transfers
    assert not store.neighbourhood("N3", hops=1, limit=5).truncated


def test_shortest_paths(graph: GraphStore) -> None:
    search = graph.shortest_paths("A", "E", max_hops=4)
    assert (search.complete, search.cut_short, search.hubs_skipped) == (True, [], [])
    paths = search.paths
    assert [p.accounts for p in paths] == [["A", "C", "E"]]
    hop_relations = [{e.relation for e in hop} for hop in paths[0].hops]
    assert hop_relations == [{"TRANSFER"}, {"SHARES_DEVICE"}]
    via_friends = graph.shortest_paths("A", "D", relations=["FRIEND"]).paths
    assert [p.accounts for p in via_friends] == [["A", "B", "D"]]
    assert graph.shortest_paths("A", "F", max_hops=6).paths == []
    assert graph.shortest_paths("A", "E", max_hops=1).paths == []
    with pytest.raises(NotFound):
        graph.shortest_paths("A", "nobody")


def test_shortest_paths_lists_every_shortest_route(store: GraphStore, tmp_path: Path) -> None:
    load(
        store,
        tmp_path,
        accounts="account_id\nS\nX\nY\nZ\nT\n",
        links="src,dst,type\nS,X,FRIEND\nS,Y,FRIEND\nX,T,FRIEND\nY,T,FRIEND\nS,Z,FRIEND\n",
    )
    assert [p.accounts for p in store.shortest_paths("S", "T").paths] == [
        ["S", "X", "T"],
        ["S", "Y", "T"],
    ]
    assert len(store.shortest_paths("S", "T", limit=1).paths) == 1


def test_snapshot_contents(graph: GraphStore) -> None:
    snap = graph.snapshot()
    assert snap.account_ids == list("ABCDEFGH")
    assert snap.feature_names == ["kyc_level"]
    assert np.isnan(snap.features[2, 0])
    assert snap.features[3, 0] == 3.0
    assert np.isnan(snap.created_at[4])
    assert snap.labels.tolist() == [1, -1, -1, 0, -1, -1, -1, -1]
    tr = snap.edges[TRANSFER]
    pairs = list(zip(tr.src.tolist(), tr.dst.tolist(), strict=True))
    assert pairs == [(0, 1), (1, 2), (2, 0), (3, 4), (7, 0)]
    assert tr.count is not None
    assert tr.count.tolist() == [2, 1, 1, 1, 1]
    assert tr.total_amount is not None
    assert tr.total_amount[0] == pytest.approx(15.5)
    assert tr.first_ts is not None
    assert tr.last_ts is not None
    assert tr.last_ts[0] - tr.first_ts[0] == pytest.approx(2 * 86400)
    assert sorted(snap.edges) == ["FRIEND", "SHARES_DEVICE", TRANSFER]
    friend = snap.edges["FRIEND"]
    assert list(zip(friend.src.tolist(), friend.dst.tolist(), strict=True)) == [
        (0, 1),
        (1, 3),
        (5, 6),
    ]
    assert not friend.directed
    assert tr.directed


def test_scores_round_trip(graph: GraphStore) -> None:
    scores = [
        Score(
            "A", 0.9, 12.0, "v1", reasons=[{"code": "RING_MEMBER", "weight": 0.4}], scored_at=5.0
        ),
        Score("B", 0.1, 80.0, "v1"),
    ]
    assert graph.write_scores(scores) == 2
    assert graph.get_scores(["B", "A"]) == sorted(scores, key=lambda s: s.account_id)
    assert graph.get_account("A").score == scores[0]
    assert graph.counts().scores == 2
    with pytest.raises(NotFound):
        graph.write_scores([Score("nobody", 0.5, 50.0, "v1")])


def test_rings_round_trip_replace_delete(graph: GraphStore) -> None:
    ring = Ring("R1", "cycle", 0.8, ["C", "A", "B"], {"cycles": [["A", "B", "C"]]}, detected_at=1.0)
    other = Ring("R2", "shared_identity", 0.9, ["C", "E"], {"links": [["C", "E"]]})
    assert graph.write_rings([ring, other]) == 2
    assert [r.ring_id for r in graph.list_rings()] == ["R2", "R1"]
    got = graph.get_ring("R1")
    assert got.members == ["A", "B", "C"]
    assert got.evidence == ring.evidence
    assert got.status == "new"
    graph.write_rings([Ring("R1", "cycle", 0.7, ["A", "B"], {}, status="investigating", note="x")])
    again = graph.get_ring("R1")
    assert again.members == ["A", "B"]
    assert again.status == "investigating"
    assert again.note == "x"
    assert graph.delete_rings(["R1", "nope"]) == 1
    assert graph.counts().rings == 1
    with pytest.raises(NotFound):
        graph.get_ring("R1")
    with pytest.raises(NotFound):
        graph.write_rings([Ring("R3", "collusion", 0.5, ["A", "ghost"], {})])
