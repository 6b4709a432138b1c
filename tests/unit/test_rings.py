"""Ring detection on small hand-built graphs: every candidate pattern, time order, scoring,
typing, evidence, and the id / verdict rules of the rings service."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from creditgraph.domain import LabelColumns, Ring
from creditgraph.rings import DetectConfig, DetectedRing, detect
from creditgraph.rings import candidates as cand
from creditgraph.rings.graph import RingGraph
from creditgraph.services.rings import match_previous, ring_id_for, verdict_labels
from tests.ringnet import (
    COLLUSION,
    CYCLE,
    DAY,
    FAN_IN,
    FAN_OUT,
    SHARED,
    T0,
    Net,
    background,
    plant_cycle,
    planted,
)

ALL = DetectConfig(min_score=0.0)


def groups(net: Net, generator: str) -> list[list[str]]:
    snap = net.snapshot()
    found = getattr(cand, generator)(RingGraph.build(snap), ALL)
    return [[snap.account_ids[i] for i in c.members] for c in found]


def test_shared_identifiers_of_any_link_type_form_a_group_but_friendship_does_not() -> None:
    got = groups(planted(), "shared_identity")
    assert got == [SHARED]  # SHARES_PHONE and SHARES_ADDRESS; the FRIEND pairs are ignored


def test_cycle_of_repeated_similar_amounts_is_found_once() -> None:
    assert groups(planted(), "cycles") == [sorted(CYCLE)]


def test_cycle_that_breaks_time_order_is_not_a_cycle() -> None:
    net = Net()
    background(net)
    a, b, c, d = CYCLE
    for h, (x, y) in enumerate(((a, b), (b, c), (c, d))):
        net.pay(x, y, 5_000, T0 + (100 + h) * DAY, times=3)
    # The closing hop was over before the money reached its payer.
    net.pay(d, a, 5_000, T0 + 10 * DAY, times=3)
    assert groups(net, "cycles") == []


def test_cycle_with_unrelated_amounts_is_not_a_cycle() -> None:
    net = Net()
    background(net)
    plant_cycle(net)
    net.transfers = [
        (s, d, 20_000.0 if (s, d) == ("C2", "C3") else amt, ts) for s, d, amt, ts in net.transfers
    ]
    assert groups(net, "cycles") == []


def test_fan_in_collector_with_feeders_and_cash_out() -> None:
    got = groups(planted(), "mule_fan_in")
    assert sorted(FAN_IN) in got


def test_merchant_with_many_payers_and_no_outflow_is_not_a_fan_in() -> None:
    net = Net()
    background(net)
    for i in range(10):
        net.pay(f"P{i}", "SHOP", 900, T0 + i * DAY)
    assert all("SHOP" not in g for g in groups(net, "mule_fan_in"))


def test_fan_out_source_with_pass_through_mules() -> None:
    assert groups(planted(), "mule_fan_out") == [sorted(FAN_OUT)]


def test_dense_repeated_transfers_form_a_collusion_group() -> None:
    assert groups(planted(), "collusion") == [COLLUSION]


def test_communities_need_seeds_and_find_the_seeded_group() -> None:
    net = planted()
    assert groups(net, "communities") == []  # no labels, no scores: nothing seeds it
    net.labels.update({m: "fraud" for m in COLLUSION[:4]})
    assert any(set(COLLUSION) <= set(g) for g in groups(net, "communities"))


def test_detect_types_scores_and_explains_every_planted_group() -> None:
    found = detect(planted().snapshot(), config=ALL)
    by_members = {tuple(r.members): r for r in found.rings}
    expected = {
        tuple(sorted(CYCLE)): "cycle",
        tuple(sorted(FAN_IN)): "mule_fan_in",
        tuple(sorted(FAN_OUT)): "mule_fan_out",
        tuple(SHARED): "shared_identity",
        tuple(COLLUSION): "collusion",
    }
    for members, kind in expected.items():
        ring = by_members[members]
        assert ring.kind == kind
        assert 0.0 <= ring.score <= 1.0
        assert ring.evidence["transfers"] or ring.evidence["shared_links"]
        orjson.dumps(ring.evidence)  # JSON-able as stored
    cycle = by_members[tuple(sorted(CYCLE))]
    assert cycle.evidence["cycles"] == [CYCLE]
    assert {t["src"] for t in cycle.evidence["transfers"]} == set(CYCLE)
    shared = by_members[tuple(SHARED)]
    assert {link["type"] for link in shared.evidence["shared_links"]} == {
        "SHARES_PHONE",
        "SHARES_ADDRESS",
    }
    assert by_members[tuple(sorted(FAN_IN))].evidence["hubs"] == [FAN_IN[0]]
    # The planted groups outrank anything the background offers.
    planted_min = min(by_members[m].score for m in expected)
    others = [r.score for r in found.rings if tuple(r.members) not in expected]
    assert all(s < planted_min for s in others)
    # The default threshold keeps the planted groups and drops the background.
    default = {tuple(r.members) for r in detect(planted().snapshot()).rings}
    assert default == set(expected)


def test_member_risk_raises_the_score_and_is_optional() -> None:
    net = planted()
    snap = net.snapshot()
    plain = {tuple(r.members): r.score for r in detect(snap, config=ALL).rings}
    risk = np.full(snap.num_accounts, np.nan)
    risk[[snap.account_ids.index(m) for m in CYCLE]] = 0.95
    scored = {tuple(r.members): r for r in detect(snap, risk, config=ALL).rings}
    key = tuple(sorted(CYCLE))
    assert scored[key].score > plain[key]
    assert scored[key].evidence["features"]["risk_all"] == pytest.approx(0.95)
    assert scored[key].evidence["features"]["risk_mean"] == pytest.approx(0.95)
    legit = dataclasses.replace(snap, labels=snap.labels.copy())
    legit.labels[[snap.account_ids.index(m) for m in CYCLE]] = 0
    lowered = {tuple(r.members): r.score for r in detect(legit, config=ALL).rings}
    assert lowered[key] < plain[key]


def test_empty_graph_and_graph_without_links() -> None:
    empty = Net()
    empty.add("A", "B")
    assert detect(empty.snapshot()).rings == []
    net = Net()
    background(net)
    plant_cycle(net)
    net.links = []
    assert [r.kind for r in detect(net.snapshot()).rings] == ["cycle"]


def test_new_ring_ids_come_from_members() -> None:
    assert ring_id_for(["B", "A"]) == ring_id_for(["A", "B"])
    assert ring_id_for(["A", "B"]) != ring_id_for(["A", "C"])
    assert ring_id_for(["A"]).startswith("ring-")


def test_matching_previous_rings_by_jaccard_each_used_once() -> None:
    old = [
        Ring("old-1", "cycle", 0.8, ["A", "B", "C", "D"], {}),
        Ring("old-2", "collusion", 0.8, ["P", "Q", "R"], {}),
    ]
    new = [
        DetectedRing(["A", "B", "C", "D", "E"], "cycle", 0.9, {}),  # 4/5: continues old-1
        DetectedRing(["A", "B", "C"], "cycle", 0.7, {}),  # 3/4, but old-1 is taken by a better
        DetectedRing(["P", "X", "Y", "Z"], "collusion", 0.7, {}),  # 1/6: a new ring
    ]
    got = match_previous(new, old)
    assert {i: r.ring_id for i, r in got.items()} == {0: "old-1"}


def test_verdict_labels() -> None:
    ring = Ring("ring-x", "cycle", 0.9, ["A", "B", "C"], {}, status="confirmed")
    current = LabelColumns(["B", "C"], ["legit", "fraud"], ["kyc_review", "ring:ring-x"], [1, 2])
    confirmed = verdict_labels(ring, current, 10.0)
    assert confirmed.account_id == ["A", "B", "C"]
    assert set(confirmed.label) == {"fraud"}
    assert set(confirmed.source) == {"ring:ring-x"}
    dismissed = verdict_labels(dataclasses.replace(ring, status="dismissed"), current, 10.0)
    # B keeps its independent label; C's label came from this ring and is reversed.
    assert dismissed.account_id == ["A", "C"]
    assert set(dismissed.label) == {"legit"}
    for status in ("new", "investigating"):
        assert len(verdict_labels(dataclasses.replace(ring, status=status), current, 1.0)) == 0
