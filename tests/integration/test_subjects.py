"""Data-subject rights on every backend: export everything held about a person, erase them
from the store (ties, labels, rings, scores, next snapshot) with a tombstone that refuses a
re-import by file and line unless forced, and unlink the log entries without breaking the
hash chains."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.config import Settings
from creditgraph.domain import Ring, Score
from creditgraph.errors import NotFound, ValidationFailed
from creditgraph.ledger import Ledger, verify
from creditgraph.services import subjects
from creditgraph.services.ingest import import_file
from creditgraph.store.base import ERASED, GraphStore
from tests.integration.test_store_contract import ACCOUNTS, LABELS, LINKS, TRANSFERS, load

WHO = {"key_id": None, "key_name": "test", "role": "admin"}


@pytest.fixture
def graph(store: GraphStore, tmp_path: Path) -> GraphStore:
    load(store, tmp_path, accounts=ACCOUNTS, transfers=TRANSFERS, links=LINKS, labels=LABELS)
    reasons = [{"code": "FEATURE_RAISES_RISK", "message": "kyc", "evidence": {}}]
    store.write_scores(
        [Score("A", 0.9, 0.2, "v0001", reasons, 1.0), Score("B", 0.1, 0.7, "v0001", [], 1.0)]
    )
    store.write_rings(
        [
            Ring("R1", "cycle", 0.8, ["A", "B", "C"], {"cycles": [["A", "B", "C"]], "hubs": ["A"]}),
            Ring("R2", "mule_fan_in", 0.6, ["A", "H"], {"hubs": ["A"]}),
        ]
    )
    return store


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    led = Ledger.from_settings(settings)
    # Who looked A up and why; a decision about A and B.
    led.append(
        "audit",
        {**WHO, "key_name": "alice", "role": "investigator", "action": "investigate.account",
         "target": "A", "result": "rings=2", "purpose": "case 117 about A"},
        accounts=["A"],
    )  # fmt: skip
    led.append(
        "decisions",
        {"kind": "risk.transfer", "decision": "review", "risk": 0.6, "model_version": "v0001"},
        accounts=["A", "B"],
        inputs={"src": "A", "dst": "B", "amount": 10.0},
    )
    led.append("audit", {**WHO, "action": "investigate.account", "target": "B"}, accounts=["B"])
    return led


def test_export_holds_everything_about_the_person(graph: GraphStore, ledger: Ledger) -> None:
    out = subjects.export(graph, ledger, "A")
    assert out["attributes"]["features"] == {"kyc_level": 1.0}
    assert out["attributes"]["properties"] == {"region": "north"}
    assert sorted(t["transfer_id"] for t in out["transfers"]) == ["T1", "T2", "T4", "T6"]
    assert out["transfers_total"] == 4
    assert {(e["src"], e["dst"], e["relation"]) for e in out["ties"]} >= {("A", "B", "FRIEND")}
    assert [lab["label"] for lab in out["labels"]] == ["fraud"]
    assert [(s["fraud_probability"], s["reasons"][0]["code"]) for s in out["scores"]] == [
        (0.9, "FEATURE_RAISES_RISK")
    ]
    assert sorted(r["ring_id"] for r in out["rings"]) == ["R1", "R2"]
    (lookup,) = out["lookups"]
    assert (lookup["key_name"], lookup["target"], lookup["purpose"]) == (
        "alice",
        "A",
        "case 117 about A",
    )
    (decision,) = out["decisions"]
    assert decision["decision"] == "review"
    assert decision["subjects"][0] == "A"
    assert decision["subjects"][1].startswith("p_")  # the other person stays a pseudonym
    ledger.close()


def test_export_of_an_unknown_person_is_not_found(graph: GraphStore, ledger: Ledger) -> None:
    with pytest.raises(NotFound):
        subjects.export(graph, ledger, "nobody")
    ledger.close()


def test_erase_removes_the_person_and_keeps_the_chains(
    graph: GraphStore, ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    pseudonym = ledger.pseudonyms.lookup("A")
    assert pseudonym is not None
    done = subjects.erase(graph, ledger, "A", who=WHO, purpose="DSR-1")
    assert (done["transfers"], done["links"], done["label"], done["score"]) == (4, 1, True, True)
    assert (done["rings_left"], done["rings_deleted"]) == (["R1"], ["R2"])

    # The store: the account, its ties, label, score and rings membership are gone.
    assert graph.missing_accounts(["A"]) == ["A"]
    c = graph.counts()
    assert (c.accounts, c.transfers, c.links, c.labels, c.scores, c.rings) == (7, 2, 3, 1, 1, 1)
    ring = graph.get_ring("R1")
    assert ring.members == ["B", "C"]
    assert ring.evidence == {"cycles": [[ERASED, "B", "C"]], "hubs": [ERASED]}
    snap = graph.snapshot()
    assert "A" not in snap.account_ids
    # The neighbours' relationship counts are true again (what the investigator sees).
    b = graph.expand(["B"], None, 10)["B"]
    assert b.degree == {"TRANSFER": 1, "FRIEND": 1}
    assert b.ties is not None
    assert sorted(other for other, _ in b.ties) == ["C", "D"]

    # The logs: every line is still there and verifies; nothing links them to A.
    for stream in ("audit", "decisions"):
        v = verify(ledger.path(stream))
        assert v.ok, v.broken
    assert ledger.pseudonyms.lookup("A") is None
    assert ledger.pseudonyms.reverse([pseudonym]) == {}
    assert list(ledger.about("A")) == []
    raw = settings.audit_log_path.read_text()
    assert pseudonym in raw  # the lines stayed, byte for byte
    assert "case 117 about p_" in raw  # the id in the purpose text was never written

    # Erasing again says so; a person never held is not found.
    assert subjects.erase(graph, ledger, "A", who=WHO, purpose="DSR-1")["already_erased"]
    with pytest.raises(NotFound):
        subjects.erase(graph, ledger, "nobody", who=WHO, purpose="DSR-2")
    ledger.close()


def test_a_reimport_of_an_erased_person_is_refused_unless_forced(
    graph: GraphStore, ledger: Ledger, tmp_path: Path
) -> None:
    subjects.erase(graph, ledger, "A", who=WHO, purpose="DSR-1")
    ledger.close()
    accounts = tmp_path / "again.csv"
    accounts.write_text(ACCOUNTS)
    with pytest.raises(ValidationFailed) as info:
        import_file(graph, "accounts", accounts)
    assert f"{accounts}:2: column 'account_id'" in str(info.value)
    assert "erased" in str(info.value)
    transfers = tmp_path / "t.csv"
    transfers.write_text(TRANSFERS)
    with pytest.raises(ValidationFailed) as info:
        import_file(graph, "transfers", transfers)
    assert f"{transfers}:2: column 'src'" in str(info.value)  # T1,A,B
    assert graph.missing_accounts(["A"]) == ["A"]  # nothing was written
    assert graph.counts().transfers == 2

    import_file(graph, "accounts", accounts, allow_erased=True)
    assert graph.missing_accounts(["A"]) == []
    assert graph.erased(["A"]) == {}  # re-admitted: later imports need no force
    import_file(graph, "transfers", transfers)
    assert graph.counts().transfers == 6
