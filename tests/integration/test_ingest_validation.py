"""Bad files get a file:line:column error and leave the store exactly as it was (every backend)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from creditgraph.errors import ValidationFailed
from creditgraph.services.ingest import import_file
from creditgraph.store.base import GraphStore

GOOD_ACCOUNTS = "account_id,created_at,score_a\nA,2024-01-01,1\nB,2024-01-02,2\nC,2024-01-03,3\n"


@pytest.fixture
def seeded(store: GraphStore, tmp_path: Path) -> GraphStore:
    path = tmp_path / "accounts.csv"
    path.write_text(GOOD_ACCOUNTS)
    import_file(store, "accounts", path)
    return store


def snapshot_state(store: GraphStore) -> tuple[object, ...]:
    snap = store.snapshot()
    return (
        asdict(store.counts()),
        snap.account_ids,
        snap.features.tolist(),
        {k: (v.src.tolist(), v.dst.tolist()) for k, v in snap.edges.items()},
        snap.labels.tolist(),
    )


CASES = [
    pytest.param(
        "transfers",
        b"transfer_id,src,dst,timestamp\nT1,A,B,2024-02-01\n",
        1,
        "missing required column(s) amount",
        id="missing-column",
    ),
    pytest.param(
        "transfers",
        b"transfer_id,src,dst,amount,timestamp\nT1,A,B,1,2024-02-01\nT2,A,C,12x,2024-02-01\n",
        3,
        "column 'amount': not a number: '12x'",
        id="bad-amount",
    ),
    pytest.param(
        "transfers",
        b"transfer_id,src,dst,amount,timestamp\nT1,A,B,-5,2024-02-01\n",
        2,
        "column 'amount': must not be negative",
        id="negative-amount",
    ),
    pytest.param(
        "transfers",
        b"transfer_id,src,dst,amount,timestamp\nT1,A,B,1e999,2024-02-01\n",
        2,
        "column 'amount': not a finite number",
        id="infinite-amount",
    ),
    pytest.param(
        "transfers",
        b"transfer_id,src,dst,amount,timestamp\nT1,A,B,1,yesterday\n",
        2,
        "column 'timestamp': not an ISO-8601 date/time",
        id="bad-timestamp",
    ),
    pytest.param(
        "transfers",
        b"transfer_id,src,dst,amount,timestamp\nT1,A,B,1,2024-02-01\nT1,B,C,2,2024-02-02\n",
        3,
        "column 'transfer_id': duplicate of line 2",
        id="duplicate-id",
    ),
    pytest.param(
        "labels",
        b"account_id,label\nA,fraud\nB,suspicious\n",
        3,
        "column 'label': 'suspicious' is not one of fraud, legit",
        id="unknown-label",
    ),
    pytest.param(
        "transfers",
        b"transfer_id,src,dst,amount,timestamp\nT1,A,B,1,2024-02-01\nT2,A,ZZ,1,2024-02-01\n",
        3,
        "column 'dst': account 'ZZ' does not exist",
        id="dangling-account",
    ),
    pytest.param(
        "links",
        b"src,dst,type\nA,B,FRIEND\nB,\xff\xfeC,FRIEND\n",
        3,
        "column 'dst': not valid UTF-8",
        id="malformed-utf8",
    ),
    pytest.param("accounts", b"", 1, "empty file", id="empty-file"),
    pytest.param("accounts", b"account_id\n", 1, "no data rows", id="header-only"),
    pytest.param(
        "links",
        b"src,dst,type\nA,B,FRIEND\nB,A,FRIEND\n",
        3,
        "duplicate of line 2",
        id="duplicate-undirected-link",
    ),
    pytest.param(
        "links",
        b"src,dst,type\nA,A,FRIEND\nA,B,friend\n",
        2,
        "a link from an account to itself",
        id="self-link-and-bad-type",
    ),
    pytest.param(
        "transfers",
        b"transfer_id,src,dst,amount,timestamp\nT1,A,B,1,2024-02-01\nT2,A,B,1\n",
        3,
        "expected 5 fields",
        id="ragged-row",
    ),
    pytest.param(
        "accounts",
        b'account_id,note\nD,"two\nlines"\nE,"x""y"\n,empty\n',
        5,
        "column 'account_id': missing value",
        id="quoted-newlines-keep-line-numbers",
    ),
]


@pytest.mark.parametrize(("kind", "content", "line", "message"), CASES)
def test_bad_file_names_line_and_writes_nothing(
    seeded: GraphStore, tmp_path: Path, kind: str, content: bytes, line: int, message: str
) -> None:
    before = snapshot_state(seeded)
    path = tmp_path / f"bad-{kind}.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationFailed) as info:
        import_file(seeded, kind, path)  # type: ignore[arg-type]
    first = info.value.errors[0]
    assert first.file == str(path)
    assert first.line == line
    assert message in str(info.value)
    assert snapshot_state(seeded) == before


def test_every_bad_row_is_reported_not_just_the_first(seeded: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = "".join(f"T{i},A,B,{'x' if i % 2 else '1'},2024-02-01\n" for i in range(10))
    path.write_text("transfer_id,src,dst,amount,timestamp\n" + rows)
    with pytest.raises(ValidationFailed) as info:
        import_file(seeded, "transfers", path)
    assert [e.line for e in info.value.errors] == [3, 5, 7, 9, 11]


def test_create_missing_accounts_flag(seeded: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("transfer_id,src,dst,amount,timestamp\nT1,A,NEW1,1,2024-02-01\n")
    report = import_file(seeded, "transfers", path, create_missing_accounts=True)
    assert report.created_accounts == 1
    assert seeded.get_account("NEW1").features == {}
    assert seeded.counts().transfers == 1
