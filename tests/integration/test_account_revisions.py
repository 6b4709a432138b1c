"""Who may change an existing account (issue 15, defect 5), on every backend: a writer may
add accounts and attributes; changing a recorded value needs a revision that allows it,
and every change is kept with its values before and after, when, who and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.domain import AccountColumns
from creditgraph.errors import AccountConflict
from creditgraph.services.ingest import import_file, import_records
from creditgraph.store.base import GraphStore, Revision

FEEDER = Revision(actor="key:feeder", may_change=frozenset({"properties.social_scoring"}))
ADMIN = Revision(actor="key:admin", reason="KYC correction, case 7")


def _one(
    account_id: str, created_at: float | None, features: dict[str, float], **props: str
) -> AccountColumns:
    return AccountColumns([account_id], [created_at], [features], [dict(props)])


def test_a_feeder_adds_facts_but_cannot_rewrite_them(store: GraphStore) -> None:
    store.upsert_accounts(_one("A", 1.7e9, {"age": 30.0}, city="Lyon"), FEEDER)
    # New attributes and the same values again: allowed, nothing versioned.
    store.upsert_accounts(_one("A", 1.7e9, {"age": 30.0, "kyc": 2.0}, phone="x"), FEEDER)
    with pytest.raises(AccountConflict) as e:
        store.upsert_accounts(
            AccountColumns(
                ["B", "A"], [None, 1.0], [{}, {"age": 99.0, "kyc": 2.0}], [{}, {"city": "Lyon"}]
            ),
            FEEDER,
        )
    assert [(c.account_id, c.fields, c.row) for c in e.value.changed] == [
        ("A", ("created_at", "features.age"), 1)
    ]
    account = store.get_account("A")
    assert (account.created_at, account.features) == (1.7e9, {"age": 30.0, "kyc": 2.0})
    assert account.properties == {"city": "Lyon", "phone": "x"}
    assert store.missing_accounts(["B"]) == ["B"]  # nothing of the refused batch written
    assert store.account_history("A") == []


def test_an_allowed_change_is_versioned_with_before_after_who_and_why(
    store: GraphStore,
) -> None:
    store.upsert_accounts(_one("A", 1.7e9, {"age": 30.0}, social_scoring="granted"), FEEDER)
    store.upsert_accounts(_one("A", None, {}, social_scoring="withdrawn"), FEEDER)  # consent
    store.upsert_accounts(_one("A", 1.6e9, {"age": 31.0}), ADMIN)
    account = store.get_account("A")
    assert (account.created_at, account.features["age"]) == (1.6e9, 31.0)
    assert account.properties["social_scoring"] == "withdrawn"
    history = store.account_history("A")
    assert [(v.version, v.actor, v.reason) for v in history] == [
        (1, "key:feeder", None),
        (2, "key:admin", "KYC correction, case 7"),
    ]
    assert history[0].before == {"properties.social_scoring": "granted"}
    assert history[0].after == {"properties.social_scoring": "withdrawn"}
    assert history[1].before == {"created_at": 1.7e9, "features.age": 30.0}
    assert history[1].after == {"created_at": 1.6e9, "features.age": 31.0}
    assert history[0].changed_at <= history[1].changed_at


def test_a_refused_http_batch_names_the_items(store: GraphStore) -> None:
    store.upsert_accounts(_one("A", 1.7e9, {"age": 30.0}))
    records: list[dict[str, str | None]] = [
        {"account_id": "N1", "created_at": None},
        {"account_id": " A ", "created_at": "2020-01-01T00:00:00Z"},
    ]
    with pytest.raises(AccountConflict) as e:
        import_records(store, "accounts", records, revision=FEEDER)
    assert [(c.account_id, c.fields, c.row) for c in e.value.changed] == [("A", ("created_at",), 1)]
    assert store.missing_accounts(["N1"]) == ["N1"]


def test_a_csv_import_by_the_operator_changes_and_versions(
    store: GraphStore, tmp_path: Path
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("account_id,created_at,age\nA,2024-01-01T00:00:00Z,30\n")
    import_file(store, "accounts", path)
    path.write_text("account_id,created_at,age\nA,2024-01-01T00:00:00Z,32\n")
    import_file(store, "accounts", path)
    history = store.account_history("A")
    assert [(v.actor, v.before, v.after) for v in history] == [
        ("import", {"features.age": 30.0}, {"features.age": 32.0})
    ]
