"""The patterns as they occur (one-off victims, round sums at night), the learned scorer with
weak supervision and verdicts, and the look-alike worlds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from creditgraph.errors import InvalidInput
from creditgraph.rings import DetectConfig, detect
from creditgraph.rings import candidates as cand
from creditgraph.rings.graph import RingGraph
from creditgraph.rings.scorer import FEATURE_NAMES, MIN_PER_CLASS, RingScorer, weak_labels
from creditgraph.synth.lookalike import LOOKALIKE_KINDS, RING_KINDS, generate_world
from tests.ringnet import DAY, T0, Net, background

ALL = DetectConfig(min_score=0.0)
MULES = ["MA", "MB", "MC"]
COLLECTOR = "KC"


def plant_victim_mules(net: Net, prefix: str = "") -> list[str]:
    """Three fresh mules, each paid once by eight different victims, each forwarding every
    payment to one collector within two hours."""
    mules = [prefix + m for m in MULES]
    collector = prefix + COLLECTOR
    net.add(*mules, collector, created=T0 + 100 * DAY)
    for i, mule in enumerate(mules):
        for v in range(8):
            ts = T0 + (120 + i) * DAY + v * 3 * 3_600
            net.pay(f"{prefix}V{i}{v}", mule, 600 + 10 * v + 0.37, ts)
            net.pay(mule, collector, 0.95 * (600 + 10 * v + 0.37), ts + 2 * 3_600)
    net.pay(collector, "X1", 12_000, T0 + 125 * DAY)
    return sorted([*mules, collector])


def groups(net: Net, generator: str) -> list[list[str]]:
    snap = net.snapshot()
    found = getattr(cand, generator)(RingGraph.build(snap), ALL)
    return [[snap.account_ids[i] for i in c.members] for c in found]


def test_mules_paid_once_by_each_victim_are_one_fan_in_group_without_the_victims() -> None:
    net = Net()
    background(net)
    ring = plant_victim_mules(net)
    assert ring in groups(net, "mule_fan_in")


def test_fan_in_features_tell_hours_from_days() -> None:
    net = Net()
    background(net)
    ring = plant_victim_mules(net)
    # A shop paid once by many customers that pays its owner a week later.
    net.add("SHOP", "OWNER", "SUPPLIER")
    for c in range(12):
        net.pay(f"CU{c}", "SHOP", 40 + c + 0.5, T0 + (10 + 2 * c) * DAY)
    net.pay("SHOP", "OWNER", 300.0, T0 + 30 * DAY)
    net.pay("SHOP", "SUPPLIER", 200.0, T0 + 40 * DAY)
    found = {tuple(r.members): r for r in detect(net.snapshot(), config=ALL).rings}
    mule = found[tuple(ring)].evidence["features"]
    shop = found[("OWNER", "SHOP", "SUPPLIER")].evidence["features"]
    assert mule["one_off_share"] == 1.0
    assert mule["dwell_hours"] < np.log1p(3) < np.log1p(24 * 5) < shop["dwell_hours"]
    assert mule["fresh_share"] == 1.0 > shop["fresh_share"]


def test_round_sums_in_rounds_form_a_candidate_and_odd_amounts_do_not() -> None:
    net = Net()
    background(net)
    club = ["Q1", "Q2", "Q3", "Q4"]
    for month in range(4):
        for m in club[1:]:
            net.pay(m, club[0], 100.0, T0 + (30 * month + 1) * DAY)
        net.pay(club[0], club[1 + month % 3], 300.0, T0 + (30 * month + 5) * DAY)
    assert club in groups(net, "round_trading")
    odd = Net()
    background(odd)
    for month in range(4):
        for m in club[1:]:
            odd.pay(m, club[0], 100.37, T0 + (30 * month + 1) * DAY + 12 * 3_600)
    assert club not in groups(odd, "round_trading")


def test_weak_labels_from_verdicts_and_labelled_members() -> None:
    labels = np.array([1, 0, -1, -1, 0, 1], dtype=np.int64)
    risk = np.array([0.9, 0.1, 0.2, 0.8, 0.1, 0.9])
    members = [
        np.array([0, 3]),  # a fraud label and a suspicious unlabelled member: a ring
        np.array([0, 2]),  # one fraudster among ordinary accounts: a lone scammer, unknown
        np.array([0, 5]),  # two fraud labels: a ring
        np.array([1, 2]),  # legit labels only: not a ring
        np.array([2, 3]),  # no label: unknown
        np.array([0, 1, 4]),  # more legit than fraud labels: ambiguous, unknown
        np.array([2, 3]),  # an investigator dismissed it
    ]
    weak = weak_labels(members, labels, [None] * 6 + ["dismissed"], risk)
    assert weak.y.tolist() == [1, -1, 1, 0, -1, -1, 0]
    assert weak.weight[6] > weak.weight[0]
    assert weak.source[6] == "verdict:dismissed"


def test_scorer_learns_from_weak_labels_and_names_its_reasons() -> None:
    rng = np.random.default_rng(0)
    n = 6 * MIN_PER_CLASS
    x = rng.normal(size=(n, len(FEATURE_NAMES)))
    y = np.where(np.arange(n) % 2 == 0, 1, 0)
    fresh = FEATURE_NAMES.index("fresh_share")
    x[:, fresh] += 3.0 * y  # the only informative feature
    lab = np.repeat(y, 2).astype(np.int64)  # two labelled members per group
    weak = weak_labels([np.array([2 * i, 2 * i + 1]) for i in range(n)], lab)
    scorer = RingScorer.fit(x, weak)
    assert scorer.mode == "logistic"
    p = scorer.score(x, [])
    assert p[y == 1].mean() > 0.8 > 0.2 > p[y == 0].mean()
    top = scorer.reasons(x[y == 1][:1])[0]
    assert top[0]["feature"] == "fresh_share"
    # Too few weak labels of a class: the unsupervised prior.
    few = weak_labels([np.array([2 * i, 2 * i + 1]) for i in range(n)], np.where(lab == 1, 1, -1))
    assert RingScorer.fit(x, few).mode == "unsupervised"


def test_verdicts_supervise_the_next_run() -> None:
    net = Net()
    background(net)
    rings = [plant_victim_mules(net, f"R{i}") for i in range(MIN_PER_CLASS)]
    fakes = []
    for i in range(MIN_PER_CLASS):
        # Old friends paying each other small sums: candidates an investigator dismissed.
        fam = [f"F{i}{j}" for j in range(3)]
        for a in fam:
            for b in fam:
                if a != b:
                    net.pay(a, b, 25.5 + i, T0 + (5 + i) * DAY, times=3)
            net.link(a, fam[0], "SHARES_ADDRESS") if a != fam[0] else None
        fakes.append(fam)
    snap = net.snapshot()
    plain = detect(snap, config=ALL)
    assert plain.scorer["mode"] == "unsupervised"
    verdicts = [(r, "confirmed") for r in rings] + [(f, "dismissed") for f in fakes]
    taught = detect(snap, config=ALL, verdicts=verdicts)
    assert taught.scorer["mode"] == "logistic"
    assert taught.scorer["trained_on"]["positive"] >= MIN_PER_CLASS
    by = {tuple(r.members): r for r in taught.rings}
    assert min(by[tuple(r)].score for r in rings) > max(by[tuple(sorted(f))].score for f in fakes)
    assert by[tuple(rings[0])].evidence["weak_label"] == "verdict:confirmed"
    assert by[tuple(rings[0])].evidence["reasons"]


@pytest.mark.slow
def test_lookalike_world_plants_hidden_rings_among_lookalikes(tmp_path: Path) -> None:
    generate_world(20_000, 3, tmp_path / "a", "heldout")
    generate_world(20_000, 3, tmp_path / "b", "heldout")
    for f in ("accounts.csv", "transfers.csv", "links.csv", "labels.csv", "ground_truth.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    truth = json.loads((tmp_path / "a" / "ground_truth.json").read_text())
    assert [r["kind"] for r in truth["rings"]].count("mule_fan_in") == 15
    assert {r["kind"] for r in truth["rings"]} == set(RING_KINDS)
    assert {g["kind"] for g in truth["lookalikes"]} == set(LOOKALIKE_KINDS)
    assert len(truth["lookalikes"]) == 1300
    with (tmp_path / "a" / "labels.csv").open() as fh:
        fraud_labelled = {r["account_id"] for r in csv.DictReader(fh) if r["label"] == "fraud"}
    for r in truth["rings"]:
        assert bool(fraud_labelled & set(r["members"])) == r["labelled"]
    assert sum(not r["labelled"] for r in truth["rings"]) == 30
    assert sum(r["aged"] for r in truth["rings"]) == 30
    with (tmp_path / "a" / "links.csv").open() as fh:
        assert "SHARES_PHONE" in {r["type"] for r in csv.DictReader(fh)}
    with pytest.raises(InvalidInput, match="unknown world"):
        generate_world(20_000, 3, tmp_path / "c", "nope")
