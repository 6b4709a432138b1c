"""Transfer outcomes in the data contract, on every backend: ``import transfer_labels`` with
file:line errors and nothing half-applied, transfer properties kept, the review queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.errors import Conflict, NotFound, ValidationFailed
from creditgraph.outcomes import ReviewItem
from creditgraph.services.ingest import import_file
from creditgraph.store.base import GraphStore

ACCOUNTS = "account_id\nA\nB\nC\n"
TRANSFERS = (
    "transfer_id,src,dst,amount,timestamp,channel,device,merchant_category,basket\n"
    "T1,A,B,10.5,2024-02-01T10:00:00Z,app,d1,grocery,3\n"
    "T2,B,C,99,2024-02-01T09:00:00Z,web,d2,,\n"
    "T3,A,C,7,2024-02-02,app,,electronics,1\n"
)


@pytest.fixture
def seeded(store: GraphStore, tmp_path: Path) -> GraphStore:
    for kind, text in (("accounts", ACCOUNTS), ("transfers", TRANSFERS)):
        path = tmp_path / f"{kind}.csv"
        path.write_text(text)
        import_file(store, "accounts" if kind == "accounts" else "transfers", path)
    return store


def test_transfer_properties_are_kept_and_the_log_is_time_ordered(seeded: GraphStore) -> None:
    log = seeded.transfer_log()
    assert log.transfer_id == ["T2", "T1", "T3"]
    assert log.src == ["B", "A", "A"]
    assert log.amount.tolist() == [99.0, 10.5, 7.0]
    assert log.channel == ["web", "app", "app"]
    assert log.properties == [
        {"device": "d2"},
        {"device": "d1", "merchant_category": "grocery", "basket": "3"},
        {"merchant_category": "electronics", "basket": "1"},
    ]


def test_import_transfer_labels_is_idempotent_and_latest_wins(
    seeded: GraphStore, tmp_path: Path
) -> None:
    path = tmp_path / "transfer_labels.csv"
    path.write_text(
        "transfer_id,label,source,observed_at\nT1,fraud,chargeback,2024-03-01\nT2,legit,,\n"
    )
    first = import_file(seeded, "transfer_labels", path)
    assert (first.rows, first.changed) == (2, 2)
    assert import_file(seeded, "transfer_labels", path).changed == 0
    got = seeded.transfer_labels()
    assert got.transfer_id == ["T1", "T2"]
    assert got.label == ["fraud", "legit"]
    assert got.source == ["chargeback", None]
    assert got.observed_at[0] == pytest.approx(1709251200.0)
    path.write_text("transfer_id,label\nT1,legit\n")
    assert import_file(seeded, "transfer_labels", path).changed == 1
    assert seeded.transfer_labels().label == ["legit", "legit"]


BAD = [
    pytest.param(
        "transfer_id,label\nT1,fraud\nT9,fraud\n",
        3,
        "column 'transfer_id': transfer 'T9' does not exist",
        id="unknown-transfer",
    ),
    pytest.param(
        "transfer_id,label\nT1,chargeback\n",
        2,
        "'chargeback' is not one of fraud, legit",
        id="label",
    ),
    pytest.param("transfer_id,label\nT1,fraud\nT1,legit\n", 3, "duplicate of line 2", id="dup"),
    pytest.param(
        "transfer_id,label,observed_at\nT1,fraud,yesterday\n",
        2,
        "not an ISO-8601 date/time",
        id="time",
    ),
    pytest.param("transfer_id,source\nT1,x\n", 1, "missing required column(s) label", id="header"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_bad_transfer_label_files_name_file_and_line_and_change_nothing(
    seeded: GraphStore, tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "transfer_labels.csv"
    path.write_text(text)
    with pytest.raises(ValidationFailed) as info:
        import_file(seeded, "transfer_labels", path)
    assert f"{path}:{line}" in str(info.value)
    assert message in str(info.value)
    assert len(seeded.transfer_labels()) == 0


def _item(review_id: str, created_at: float) -> ReviewItem:
    return ReviewItem(
        review_id=review_id,
        transfer_id=f"t-{review_id}",
        src="A",
        dst="B",
        amount=500.0,
        timestamp=created_at,
        created_at=created_at,
        risk=0.41,
        model_version="t0001",
        reasons=[{"code": "TRANSFER_MODEL", "message": "P(fraud) 0.410", "evidence": {}}],
        attributes={"device": "d1"},
    )


def test_review_queue_lists_resolves_once_and_refuses_a_second_verdict(
    store: GraphStore,
) -> None:
    assert store.add_review(_item("r2", 20.0))
    assert store.add_review(_item("r1", 10.0))
    assert not store.add_review(_item("r1", 10.0))  # queued once
    page = store.list_reviews("open")
    assert [r.review_id for r in page.items] == ["r1", "r2"]
    assert page.total == 2
    assert page.items[0].attributes == {"device": "d1"}
    done = store.resolve_review("r1", "rejected", "alice", "victim confirmed", 30.0)
    assert (done.status, done.reviewer, done.note, done.resolved_at) == (
        "rejected",
        "alice",
        "victim confirmed",
        30.0,
    )
    assert store.get_review("r1") == done
    assert [r.review_id for r in store.list_reviews("open").items] == ["r2"]
    assert [r.review_id for r in store.list_reviews(None).items] == ["r1", "r2"]
    with pytest.raises(Conflict):
        store.resolve_review("r1", "approved", "bob", "", 40.0)
    with pytest.raises(NotFound):
        store.resolve_review("nope", "approved", "bob", "", 40.0)
    with pytest.raises(NotFound):
        store.get_review("nope")


def test_add_reviews_queues_a_batch_in_one_call_each_id_once(store: GraphStore) -> None:
    """The group-committed review queue's store call: per item, as ``add_review``."""
    assert store.add_review(_item("r0", 5.0))
    batch = [_item("r3", 30.0), _item("r0", 5.0), _item("r1", 10.0), _item("r3", 31.0)]
    # r0 queued before, r3 repeated within the batch: the first r3 wins.
    assert store.add_reviews(batch) == [True, False, True, False]
    assert store.add_reviews([]) == []
    page = store.list_reviews("open")
    assert [r.review_id for r in page.items] == ["r0", "r1", "r3"]
    assert store.get_review("r3").created_at == 30.0
    assert store.get_review("r1") == batch[2]
