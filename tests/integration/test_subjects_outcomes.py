"""Data-subject rights over what later issues added, on every backend (issue 15, item 9): the
export lists the person's transfer outcomes, obligations with their status history, consent,
attribute history, review items and credit outputs; the erasure removes the outcomes of their
transfers, the review items naming them and their obligations, and leaves other people's."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.config import Settings
from creditgraph.ingest.csvfile import Kind
from creditgraph.ledger import Ledger
from creditgraph.outcomes import ReviewItem
from creditgraph.services import subjects
from creditgraph.services.ingest import import_file
from creditgraph.store.base import GraphStore

WHO = {"key_id": None, "key_name": "test", "role": "admin"}
ACCOUNTS = """account_id,created_at,kyc_level,social_scoring
A,2023-01-01T00:00:00Z,1,granted
B,2023-01-02T00:00:00Z,2,withdrawn
C,2023-01-03T00:00:00Z,2,
"""
TRANSFERS = (
    "transfer_id,src,dst,amount,timestamp,channel,device\n"
    "T1,A,B,10.5,2024-02-01T10:00:00Z,app,d1\n"
    "T2,B,C,99,2024-02-01T09:00:00Z,web,d2\n"
    "T3,C,A,7,2024-02-02,app,d3\n"
)
TRANSFER_LABELS = (
    "transfer_id,label,source,observed_at\n"
    "T1,fraud,chargeback,2024-03-01\nT2,legit,,\nT3,fraud,victim_report,\n"
)
OBLIGATIONS = (
    "obligation_id,account_id,kind,amount,opened_at,due_at,status,closed_at\n"
    "O1,A,pay_later,120.50,2024-01-01,2024-02-01,open,\n"
    "O2,B,rent,700,2024-01-01,2024-02-01,late,2024-02-15\n"
)


def _review(review_id: str, src: str, dst: str, at: float) -> ReviewItem:
    return ReviewItem(
        review_id=review_id,
        transfer_id=f"p-{review_id}",  # a proposed payment: not a stored transfer
        src=src,
        dst=dst,
        amount=50.0,
        timestamp=at,
        created_at=at,
        risk=0.4,
        model_version="t0001",
    )


@pytest.fixture
def graph(store: GraphStore, tmp_path: Path) -> GraphStore:
    files: list[tuple[Kind, str]] = [
        ("accounts", ACCOUNTS),
        ("transfers", TRANSFERS),
        ("transfer_labels", TRANSFER_LABELS),
        ("obligations", OBLIGATIONS),
        # The repayment, a later status of O1 (kept in its history), and a changed attribute
        # of A (an operator's import: versioned).
        ("obligations", OBLIGATIONS.replace("open,", "repaid,2024-01-20")),
        ("accounts", ACCOUNTS.replace("A,2023-01-01T00:00:00Z,1,", "A,2023-01-01T00:00:00Z,3,")),
    ]
    for i, (kind, text) in enumerate(files):
        path = tmp_path / f"{i}-{kind}.csv"
        path.write_text(text)
        import_file(store, kind, path)
    store.add_review(_review("r1", "A", "B", 10.0))
    store.add_review(_review("r2", "B", "C", 20.0))
    store.add_review(_review("r3", "C", "A", 30.0))
    store.resolve_review("r3", "approved", "alice", "known payee", 40.0)
    return store


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    led = Ledger.from_settings(settings)
    led.append(
        "audit",
        {**WHO, "action": "credit.profile", "target": "A", "purpose": "loan application 9"},
        accounts=["A"],
    )
    led.append(
        "decisions",
        {"kind": "credit.profile", "output": {"credit_score": 712}, "model_version": "c0001"},
        accounts=["A"],
        inputs={"account_id": "A"},
    )
    led.append(
        "decisions",
        {"kind": "risk.transfer", "decision": "review", "risk": 0.4, "model_version": "t0001"},
        accounts=["A", "B"],
        inputs={"src": "A", "dst": "B"},
    )
    return led


def test_export_covers_outcomes_obligations_consent_history_reviews_and_credit(
    graph: GraphStore, ledger: Ledger
) -> None:
    out = subjects.export(graph, ledger, "A")
    assert out["consent"] == {"social_scoring": "granted"}
    assert [(t["transfer_id"], t["label"], t["source"]) for t in out["transfer_labels"]] == [
        ("T1", "fraud", "chargeback"),
        ("T3", "fraud", "victim_report"),
    ]
    (o1,) = out["obligations"]
    assert (o1["obligation_id"], o1["status"]) == ("O1", "repaid")
    assert [h["status"] for h in o1["history"]] == ["open", "repaid"]
    (change,) = out["history"]
    assert (change["before"], change["after"]) == (
        {"features.kyc_level": 1.0},
        {"features.kyc_level": 3.0},
    )
    assert [(r["review_id"], r["status"]) for r in out["reviews"]] == [
        ("r1", "open"),
        ("r3", "approved"),
    ]
    (credit,) = out["credit_outputs"]
    assert credit["output"] == {"credit_score": 712}
    assert [d["kind"] for d in out["decisions"]] == ["credit.profile", "risk.transfer"]
    (lookup,) = out["lookups"]
    assert lookup["purpose"] == "loan application 9"
    # Someone else's export names none of A's records.
    other = subjects.export(graph, ledger, "C")
    assert [t["transfer_id"] for t in other["transfer_labels"]] == ["T2", "T3"]
    assert other["obligations"] == []
    assert other["history"] == []
    assert [r["review_id"] for r in other["reviews"]] == ["r2", "r3"]
    ledger.close()


def test_erase_removes_outcomes_reviews_and_obligations_of_the_person_only(
    graph: GraphStore, ledger: Ledger, tmp_path: Path
) -> None:
    done = subjects.erase(graph, ledger, "A", who=WHO, purpose="DSR-7")
    ledger.close()
    assert (done["transfers"], done["transfer_labels"], done["reviews"], done["obligations"]) == (
        2,
        2,
        2,
        1,
    )
    got = graph.transfer_labels()
    assert (got.transfer_id, got.label) == (["T2"], ["legit"])
    assert [r.review_id for r in graph.list_reviews(None).items] == ["r2"]
    assert graph.reviews_of("A") == []
    assert sorted(graph.get_obligations()) == ["O2"]
    assert graph.get_obligations(account_ids=["A"]) == {}
    assert [h.status for h in graph.get_obligations(["O2"])["O2"].history] == ["open", "late"]
    # Nothing of A's transfers survives to meet a re-import: re-admitted by force, the same
    # transfer ids come back without their old outcome or properties.
    accounts = tmp_path / "again.csv"
    accounts.write_text(ACCOUNTS)
    import_file(graph, "accounts", accounts, allow_erased=True)
    transfers = tmp_path / "again-t.csv"
    transfers.write_text("transfer_id,src,dst,amount,timestamp\nT1,A,B,10.5,2024-02-01\n")
    import_file(graph, "transfers", transfers)
    log = graph.transfer_log()
    assert dict(zip(log.transfer_id, log.properties, strict=True))["T1"] == {}
    assert graph.transfer_labels_of(["T1", "T2"]).transfer_id == ["T2"]
