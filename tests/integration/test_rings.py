"""Ring detection and the investigator workflow through the store: the same tests against
every backend (detect -> persisted with evidence, stable ids, retirement, verdict labels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.domain import LabelColumns, LabelValue, Ring, Score
from creditgraph.errors import InvalidInput, NotFound
from creditgraph.rings import DetectConfig
from creditgraph.services.ingest import import_file
from creditgraph.services.rings import detect_rings, set_ring_status
from creditgraph.store.base import GraphStore
from tests.ringnet import COLLUSION, CYCLE, FAN_IN, FAN_OUT, SHARED, T0, Net, planted

EXPECTED = {
    frozenset(CYCLE): "cycle",
    frozenset(FAN_IN): "mule_fan_in",
    frozenset(FAN_OUT): "mule_fan_out",
    frozenset(SHARED): "shared_identity",
    frozenset(COLLUSION): "collusion",
}


def load(store: GraphStore, net: Net, directory: Path) -> None:
    files = net.write_csv(directory)
    for kind in ("accounts", "transfers", "links", "labels"):
        import_file(store, kind, files[kind])


@pytest.fixture
def loaded(store: GraphStore, tmp_path: Path) -> GraphStore:
    net = planted()
    net.labels["B01"] = "legit"
    load(store, net, tmp_path / "net")
    return store


def by_members(store: GraphStore) -> dict[frozenset[str], Ring]:
    return {frozenset(r.members): r for r in store.list_rings()}


def test_detect_persists_typed_rings_with_evidence(loaded: GraphStore) -> None:
    report = detect_rings(loaded, now=100.0)
    assert report.detected == 5
    assert (report.new, report.matched, report.retired) == (5, 0, 0)
    assert not report.used_scores
    assert report.by_kind == {k: 1 for k in EXPECTED.values()}
    rings = by_members(loaded)
    assert {m: r.kind for m, r in rings.items()} == EXPECTED
    cycle = loaded.get_ring(rings[frozenset(CYCLE)].ring_id)
    assert cycle.status == "new"
    assert cycle.detected_at == 100.0
    assert cycle.evidence["cycles"] == [CYCLE]
    assert cycle.evidence["transfers"][0]["count"] == 3
    shared = rings[frozenset(SHARED)]
    assert {x["type"] for x in shared.evidence["shared_links"]} == {
        "SHARES_PHONE",
        "SHARES_ADDRESS",
    }
    assert loaded.counts().rings == 5
    assert [r.ring_id for r in loaded.rings_of(CYCLE[0])] == [cycle.ring_id]
    assert loaded.rings_of("B02") == []


def test_rerun_keeps_ids_status_and_notes_and_retires_untouched(
    loaded: GraphStore, tmp_path: Path
) -> None:
    detect_rings(loaded)
    first = by_members(loaded)
    cycle_id = first[frozenset(CYCLE)].ring_id
    fan_id = first[frozenset(FAN_IN)].ring_id
    loaded.update_ring(cycle_id, "investigating", "round-tripping, call the bank")
    # Two stale rings from an earlier run: one untouched, one an investigator works on.
    loaded.write_rings(
        [
            Ring("ring-stale", "collusion", 0.8, ["B10", "B11", "B12"], {}),
            Ring("ring-kept", "collusion", 0.8, ["B20", "B21", "B22"], {}, note="look"),
        ]
    )
    # New activity: a fifth account joins the cycle (membership changes a little).
    more = Net()
    more.add(*CYCLE, "C5")
    for r in range(3):
        more.pay("C4", "C5", 4_900, T0 + (50 + 10 * r) * 86_400 + 4 * 3_600)
        more.pay("C5", "C1", 4_880, T0 + (50 + 10 * r) * 86_400 + 5 * 3_600)
    files = more.write_csv(tmp_path / "more")
    files["transfers"].write_text(files["transfers"].read_text().replace("\nT", "\nX"))
    import_file(loaded, "accounts", files["accounts"])
    import_file(loaded, "transfers", files["transfers"])

    report = detect_rings(loaded)
    assert (report.matched, report.new, report.retired, report.kept_untouched) == (5, 0, 1, 1)
    after = {r.ring_id: r for r in loaded.list_rings()}
    assert set(after) == {*(r.ring_id for r in first.values()), "ring-kept"}
    cycle = after[cycle_id]
    assert "C5" in cycle.members
    assert (cycle.status, cycle.note) == ("investigating", "round-tripping, call the bank")
    assert after[fan_id].members == sorted(FAN_IN)
    assert after["ring-kept"].note == "look"
    # A third run changes nothing.
    again = detect_rings(loaded)
    assert (again.matched, again.new, again.retired) == (5, 0, 0)


def test_verdicts_become_labels(loaded: GraphStore) -> None:
    detect_rings(loaded)
    ring = by_members(loaded)[frozenset(FAN_OUT)]
    source = f"ring:{ring.ring_id}"
    loaded.upsert_labels(_labels(["U1"], "fraud", "chargeback"))
    change = set_ring_status(loaded, ring.ring_id, "confirmed", "mule herd", now=50.0)
    assert change.ring.status == "confirmed"
    assert change.labels_written == len(FAN_OUT)
    labels = loaded.get_labels(FAN_OUT)
    assert set(labels.label) == {"fraud"}
    assert set(labels.source) == {source}
    assert set(labels.observed_at) == {50.0}
    assert int((loaded.snapshot().labels == 1).sum()) == len(FAN_OUT)

    # Dismissing afterwards reverses what this ring wrote; an independent label stays.
    loaded.upsert_labels(_labels(["U2"], "fraud", "chargeback"))
    change = set_ring_status(loaded, ring.ring_id, "dismissed", now=60.0)
    assert change.ring.note == "mule herd"  # no --note keeps the note
    labels = loaded.get_labels(FAN_OUT)
    got = dict(zip(labels.account_id, zip(labels.label, labels.source, strict=True), strict=True))
    assert got["U2"] == ("fraud", "chargeback")
    assert all(got[m] == ("legit", source) for m in FAN_OUT if m != "U2")

    # Investigating writes nothing.
    assert set_ring_status(loaded, ring.ring_id, "investigating").labels_written == 0


def test_bad_status_unknown_ring_unknown_account(loaded: GraphStore) -> None:
    detect_rings(loaded)
    ring_id = loaded.list_rings()[0].ring_id
    with pytest.raises(InvalidInput, match="unknown ring status 'closed'"):
        set_ring_status(loaded, ring_id, "closed")
    with pytest.raises(InvalidInput):
        loaded.update_ring(ring_id, "closed")
    assert loaded.get_ring(ring_id).status == "new"
    with pytest.raises(NotFound, match="ring 'ring-nope' not found"):
        set_ring_status(loaded, "ring-nope", "confirmed")
    with pytest.raises(NotFound):
        loaded.update_ring("ring-nope", "new")
    with pytest.raises(NotFound):
        loaded.rings_of("ghost")


def test_detection_uses_stored_scores(loaded: GraphStore) -> None:
    loaded.write_scores([Score(m, 0.97, 10.0, "v1") for m in CYCLE])
    report = detect_rings(loaded, DetectConfig(min_score=0.0))
    assert report.used_scores
    cycle = by_members(loaded)[frozenset(CYCLE)]
    assert cycle.evidence["model_scores"] is True
    assert cycle.evidence["features"]["risk"] == pytest.approx(0.97)
    plain = detect_rings(loaded, DetectConfig(min_score=0.0), use_scores=False)
    assert not plain.used_scores
    assert by_members(loaded)[frozenset(CYCLE)].score < cycle.score


def _labels(ids: list[str], label: LabelValue, source: str) -> LabelColumns:
    return LabelColumns(ids, [label] * len(ids), [source] * len(ids), [1.0] * len(ids))
