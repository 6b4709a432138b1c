"""Obligations and consent in the data contract, on every backend: validation with file:line,
forward-only status with its history, nothing half-applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.domain import CONSENT_PROPERTY
from creditgraph.errors import NotFound, ObligationConflict, ValidationFailed
from creditgraph.services.consent import set_consent
from creditgraph.services.ingest import import_file, import_records
from creditgraph.store.base import GraphStore

ACCOUNTS = """account_id,created_at,kyc_level,social_scoring
A,2023-01-01T00:00:00Z,1,granted
B,2023-01-02T00:00:00Z,2,withdrawn
C,2023-01-03T00:00:00Z,2,
"""
HEADER = "obligation_id,account_id,kind,amount,opened_at,due_at,status,closed_at\n"
OBLIGATIONS = HEADER + (
    "O1,A,pay_later,120.50,2024-01-01,2024-02-01,repaid,2024-01-20\n"
    "O2,A,consumer_loan,900,2024-03-01,2024-09-01,open,\n"
    "O3,B,rent,700,2024-01-01,2024-02-01,late,2024-02-15T09:30:00Z\n"
    "O4,C,pay_later,60,2024-01-05,2024-02-05,defaulted,\n"
)
TS = 1704067200.0  # 2024-01-01


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def loaded(store: GraphStore, tmp_path: Path) -> GraphStore:
    import_file(store, "accounts", _write(tmp_path, "accounts.csv", ACCOUNTS))
    report = import_file(store, "obligations", _write(tmp_path, "obligations.csv", OBLIGATIONS))
    assert report.rows == 4
    assert report.changed == 4
    return store


def test_import_stores_terms_status_and_history(loaded: GraphStore) -> None:
    got = loaded.get_obligations()
    assert sorted(got) == ["O1", "O2", "O3", "O4"]
    o1 = got["O1"]
    assert (o1.account_id, o1.kind, o1.amount, o1.status) == ("A", "pay_later", 120.5, "repaid")
    assert o1.opened_at == TS
    assert o1.closed_at == TS + 19 * 86400
    # Imported final: opened, then repaid at its closing time.
    assert [(c.status, c.at) for c in o1.history] == [("open", TS), ("repaid", TS + 19 * 86400)]
    # A default takes effect at the due date; no closed_at.
    o4 = got["O4"]
    assert o4.closed_at is None
    assert [c.status for c in o4.history] == ["open", "defaulted"]
    assert o4.history[-1].at == o4.due_at
    assert [c.status for c in got["O2"].history] == ["open"]
    by_account = loaded.get_obligations(account_ids=["A"])
    assert sorted(by_account) == ["O1", "O2"]
    assert sorted(loaded.get_obligations(["O3", "nope"])) == ["O3"]


def test_reimport_is_idempotent(loaded: GraphStore, tmp_path: Path) -> None:
    report = import_file(loaded, "obligations", _write(tmp_path, "again.csv", OBLIGATIONS))
    assert report.changed == 0
    assert len(loaded.get_obligations()["O1"].history) == 2


def test_status_moves_forward_and_each_change_is_kept(loaded: GraphStore, tmp_path: Path) -> None:
    update = HEADER + "O2,A,consumer_loan,900,2024-03-01,2024-09-01,late,2024-09-20\n"
    report = import_file(loaded, "obligations", _write(tmp_path, "update.csv", update))
    assert report.changed == 1
    o2 = loaded.get_obligations(["O2"])["O2"]
    assert o2.status == "late"
    assert [c.status for c in o2.history] == ["open", "late"]
    assert o2.history[1].at == TS + (31 + 29 + 31 + 30 + 31 + 30 + 31 + 31 + 19) * 86400
    assert o2.history[1].recorded_at >= o2.history[0].recorded_at


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("O1,A,pay_later,120.50,2024-01-01,2024-02-01,open,", "never moves backwards"),
        ("O3,B,rent,700,2024-01-01,2024-02-01,defaulted,", "cannot become defaulted"),
        ("O1,A,pay_later,999,2024-01-01,2024-02-01,repaid,2024-01-20", "different amount"),
        ("O1,A,pay_later,120.50,2024-01-01,2024-02-01,repaid,2024-01-21", "another closed_at"),
    ],
)
def test_backward_or_changed_rows_are_refused_whole_file(
    loaded: GraphStore, tmp_path: Path, row: str, needle: str
) -> None:
    # A valid advance first, then the refused row: the advance must not be written either.
    text = HEADER + "O2,A,consumer_loan,900,2024-03-01,2024-09-01,repaid,2024-08-01\n" + row + "\n"
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(ObligationConflict) as e:
        import_file(loaded, "obligations", path, batch_size=1)
    assert needle in str(e.value)
    assert f"{path}:3:" in str(e.value)
    assert loaded.get_obligations(["O2"])["O2"].status == "open"


@pytest.mark.parametrize(
    ("row", "column", "needle"),
    [
        ("O9,A,pay_later,10,2024-01-01,2024-02-01,paid,", "status", "is not one of"),
        ("O9,A,pay_later,10,2024-01-01,2024-02-01,repaid,", "closed_at", "required when"),
        ("O9,A,pay_later,10,2024-01-01,2024-02-01,open,2024-01-10", "closed_at", "must be empty"),
        ("O9,A,pay_later,10,2024-03-01,2024-02-01,open,", "due_at", "before opened_at"),
        ("O9,A,pay_later,-1,2024-01-01,2024-02-01,open,", "amount", "negative"),
        ("O9,A,pay_later,10,2024-13-01,2024-02-01,open,", "opened_at", "date/time"),
        ("O9,Z,pay_later,10,2024-01-01,2024-02-01,open,", "account_id", "does not exist"),
        ("O1,A,pay_later,10,2024-01-01,2024-02-01,open,", "obligation_id", "duplicate"),
    ],
)
def test_bad_rows_name_file_line_and_column(
    loaded: GraphStore, tmp_path: Path, row: str, column: str, needle: str
) -> None:
    good = "O8,A,rent,5,2024-01-01,2024-02-01,open,\n"
    dup = "O1,A,pay_later,120.50,2024-01-01,2024-02-01,repaid,2024-01-20\n"
    text = HEADER + good + (dup if column == "obligation_id" else "") + row + "\n"
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(ValidationFailed) as e:
        import_file(loaded, "obligations", path)
    line = 4 if column == "obligation_id" else 3
    err = next(x for x in e.value.errors if x.column == column)
    assert (err.file, err.line) == (str(path), line)
    assert needle in err.reason
    assert "O8" not in loaded.get_obligations()


def test_http_batch_refuses_backwards(loaded: GraphStore) -> None:
    row = {
        "obligation_id": "O4",
        "account_id": "C",
        "kind": "pay_later",
        "amount": "60",
        "opened_at": "2024-01-05",
        "due_at": "2024-02-05",
        "status": "open",
    }
    with pytest.raises(ObligationConflict) as e:
        import_records(loaded, "obligations", [row])
    assert e.value.refused[0].row == 0


def test_consent_column_is_validated_and_stored(loaded: GraphStore, tmp_path: Path) -> None:
    assert loaded.get_account("A").properties[CONSENT_PROPERTY] == "granted"
    assert loaded.get_account("B").properties[CONSENT_PROPERTY] == "withdrawn"
    assert CONSENT_PROPERTY not in loaded.get_account("C").properties
    bad = "account_id,social_scoring\nD,granted\nE,maybe\n"
    path = _write(tmp_path, "bad_accounts.csv", bad)
    with pytest.raises(ValidationFailed) as e:
        import_file(loaded, "accounts", path)
    assert e.value.errors[0].line == 3
    assert e.value.errors[0].column == CONSENT_PROPERTY
    assert loaded.missing_accounts(["D"]) == ["D"]


def test_set_consent(loaded: GraphStore) -> None:
    change = set_consent(loaded, "C", "withdrawn", "granted")
    assert (change.previous, change.social_scoring, change.explicit) == (
        "granted",
        "withdrawn",
        False,
    )
    assert loaded.get_account("C").properties[CONSENT_PROPERTY] == "withdrawn"
    again = set_consent(loaded, "C", "granted", "granted")
    assert (again.previous, again.explicit) == ("withdrawn", True)
    with pytest.raises(NotFound):
        set_consent(loaded, "nobody", "granted", "granted")


def test_credit_reads_property_values_and_single_transfers(
    loaded: GraphStore, tmp_path: Path
) -> None:
    assert loaded.property_values(CONSENT_PROPERTY) == {"A": "granted", "B": "withdrawn"}
    assert loaded.property_values(CONSENT_PROPERTY, ["B", "C", "nobody"]) == {"B": "withdrawn"}
    transfers = (
        "transfer_id,src,dst,amount,timestamp\n"
        "T2,A,B,5,2024-02-02T00:00:00Z\n"
        "T1,A,B,7.5,2024-02-01T00:00:00Z\n"
        "T3,C,B,1,2024-02-03T00:00:00Z\n"
    )
    import_file(loaded, "transfers", _write(tmp_path, "transfers.csv", transfers))
    every = loaded.transfer_events()
    # Single transfers (not aggregated per pair), oldest first.
    assert list(zip(every.src, every.dst, every.amount, strict=True)) == [
        ("A", "B", 7.5),
        ("A", "B", 5.0),
        ("C", "B", 1.0),
    ]
    of_c = loaded.transfer_events(["C"])
    assert (of_c.src, of_c.dst, of_c.ts) == (["C"], ["B"], [TS + 33 * 86400])
    assert len(loaded.transfer_events(["B"])) == 3


def test_erasing_a_subject_takes_its_obligations(loaded: GraphStore) -> None:
    loaded.erase_account("A")
    assert sorted(loaded.get_obligations()) == ["O3", "O4"]
    assert loaded.get_obligations(account_ids=["A"]) == {}
