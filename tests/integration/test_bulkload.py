"""The offline bulk load gives exactly the graph a normal import gives, and refuses safely.

These tests stop and restart the Neo4j server the suite runs against (the one
``CREDITGRAPH_NEO4J_HOME`` / ``_BOLT_PORT`` / ``_URI`` describe, as ``scripts/test.sh``
exports them); a fixture makes sure it is up again when each test ends, pass or fail.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from neo4j import GraphDatabase

from creditgraph.config import Settings
from creditgraph.devtools import neo4j_server
from creditgraph.devtools.bulkload import initial_load
from creditgraph.errors import Conflict, ValidationFailed
from creditgraph.ingest.csvfile import KINDS
from creditgraph.services.ingest import import_file
from creditgraph.store.neo4j import Neo4jStore
from creditgraph.synth import generate

from ..conftest import assert_same_snapshot, wipe_neo4j

pytestmark = pytest.mark.neo4j

# Rows that exercise what the importer treats differently from Cypher: missing optional
# values, quotes and commas, a line break inside a value, non-ASCII ids, a link given
# larger-id first, labels without source or time. Columns left out are empty.
EXTRA_ROWS: dict[str, list[dict[str, str]]] = {
    "accounts": [
        {"account_id": "Z-empty"},
        {
            "account_id": "Z-quote",
            "created_at": "2024-02-29T12:00:00.123456+02:00",
            "kyc_level": "1",
            "avg_session_minutes": "0.1",
            "region": 'Main, "5"',
        },
        {"account_id": "Z-multi", "created_at": "2024-01-01", "region": "line one\nline two"},
        {"account_id": "Zé-ünï", "kyc_level": "3", "age_years": "1e-7", "region": "Zürich ✓"},
    ],
    "transfers": [
        {
            "transfer_id": "TZ1",
            "src": "Z-empty",
            "dst": "Z-quote",
            "amount": "0.1",
            "timestamp": "2024-03-01T00:00:00Z",
        },
        {
            "transfer_id": "TZ2",
            "src": "Z-quote",
            "dst": "Z-empty",
            "amount": "1e3",
            "timestamp": "2024-03-01",
            "currency": "USD",
        },
        {
            "transfer_id": "TZ3",
            "src": "Zé-ünï",
            "dst": "Z-multi",
            "amount": "12.345",
            "timestamp": "2024-03-02T10:00:00.5Z",
            "channel": "web",
        },
    ],
    "links": [
        {"src": "Z-quote", "dst": "Z-empty", "type": "SHARES_DEVICE"},
        {"src": "Zé-ünï", "dst": "Z-multi", "type": "FRIEND", "since": "2023-05-05"},
        {"src": "Z-multi", "dst": "Z-empty", "type": "SHARES_PHONE", "since": "2022-01-01"},
    ],
    "labels": [
        {"account_id": "Z-empty", "label": "fraud"},
        {
            "account_id": "Z-quote",
            "label": "legit",
            "source": 'analyst, team "B"',
            "observed_at": "2024-04-01",
        },
    ],
}


def _append(path: Path, rows: list[dict[str, str]]) -> None:
    """Append rows under the file's own header (a column the file lacks is an error)."""
    with path.open(encoding="utf-8") as f:
        header = next(csv.reader(f))
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.DictWriter(f, header, restval="", lineterminator="\n").writerows(rows)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """The suite's Neo4j, emptied; started again afterwards whatever the test did to it."""
    s = Settings(store="neo4j", data_dir=tmp_path / "data")
    wipe_neo4j(s)
    try:
        yield s
    finally:
        neo4j_server.start(s)


@pytest.fixture
def network(tmp_path: Path) -> Path:
    """A small synthetic network plus the awkward rows above."""
    out = tmp_path / "net"
    generate(300, 5, out)
    for kind, rows in EXTRA_ROWS.items():
        _append(out / f"{kind}.csv", rows)
    return out


def _dump(settings: Settings) -> dict[str, Any]:
    """Every property of every node and relationship (bar the write stamp), and the schema."""
    with GraphDatabase.driver(
        settings.neo4j_uri,
        auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
    ) as driver:

        def rows(query: str) -> list[str]:
            records, _, _ = driver.execute_query(query, database_=settings.neo4j_database)
            return sorted(
                repr([sorted(v.items()) if isinstance(v, dict) else v for v in r.values()])
                for r in records
            )

        return {
            "nodes": rows("MATCH (n) RETURN labels(n), n {.*, seq: null}"),
            "rels": rows(
                "MATCH (a)-[r]->(b) RETURN type(r), a.account_id, b.account_id, r {.*, seq: null}"
            ),
            "constraints": rows("SHOW CONSTRAINTS YIELD name, type RETURN name, type"),
            "indexes": rows("SHOW INDEXES YIELD name, state RETURN name, state"),
        }


@pytest.mark.slow
def test_bulk_load_equals_a_normal_import(settings: Settings, network: Path) -> None:
    store = Neo4jStore.connect(settings)
    try:
        for kind in KINDS:
            import_file(store, kind, network / f"{kind}.csv", batch_size=500)
        counts, snap, dump = store.counts(), store.snapshot(), _dump(settings)
        accounts = {a: store.get_account(a) for a in snap.account_ids}
    finally:
        store.close()

    # --force replaces the normally imported copy of the same graph.
    report = initial_load(settings, network, force=True)

    assert asdict(report.counts) == asdict(counts)
    assert report.rows == {
        "accounts": counts.accounts,
        "labels": counts.labels,
        "transfers": counts.transfers,
        "links": counts.links,
    }
    store = Neo4jStore.connect(settings)
    try:
        assert asdict(store.counts()) == asdict(counts)
        assert_same_snapshot(store.snapshot(), snap)
        assert {a: store.get_account(a) for a in snap.account_ids} == accounts
        assert _dump(settings) == dump
        assert accounts["Z-multi"].properties == {"region": "line one\nline two"}
        assert accounts["Z-empty"].created_at is None
        assert accounts["Z-empty"].features == {}

        # Bulk-loaded data carries seq 0, so incremental imports stamp after it and a
        # snapshot keeps seeing everything.
        more = network / "more.csv"
        more.write_text("transfer_id,src,dst,amount,timestamp\nTZ9,Z-empty,Z-multi,5,2024-05-01\n")
        import_file(store, "transfers", more)
        assert store.counts().transfers == counts.transfers + 1
        per_pair = store.snapshot().edges["TRANSFER"].count
        assert per_pair is not None
        assert int(per_pair.sum()) == counts.transfers + 1
    finally:
        store.close()


def test_refuses_a_non_empty_database_without_force(settings: Settings, network: Path) -> None:
    store = Neo4jStore.connect(settings)
    try:
        import_file(store, "accounts", network / "accounts.csv")
        before = asdict(store.counts())
        with pytest.raises(Conflict, match=r"not empty .*304 accounts.*--force"):
            initial_load(settings, network)
        assert asdict(store.counts()) == before
    finally:
        store.close()


@pytest.mark.parametrize(
    ("kind", "row", "message"),
    [
        pytest.param(
            "transfers",
            {
                "transfer_id": "TZ8",
                "src": "Z-empty",
                "dst": "NOPE",
                "amount": "1",
                "timestamp": "2024-01-01",
            },
            "column 'dst': account 'NOPE' is not in accounts.csv",
            id="dangling-transfer",
        ),
        pytest.param(
            "links",
            {"src": "Z-empty", "dst": "Z-multi", "type": "FRIEND", "since": "yesterday"},
            "column 'since': not an ISO-8601 date/time: 'yesterday'",
            id="bad-since",
        ),
        pytest.param(
            "labels",
            {"account_id": "GHOST", "label": "fraud"},
            "column 'account_id': account 'GHOST' is not in accounts.csv",
            id="dangling-label",
        ),
    ],
)
def test_a_bad_file_leaves_the_database_untouched(
    settings: Settings, network: Path, kind: str, row: dict[str, str], message: str
) -> None:
    path = network / f"{kind}.csv"
    line = len(path.read_text(encoding="utf-8").splitlines()) + 1
    _append(path, [row])
    store = Neo4jStore.connect(settings)
    try:
        import_file(store, "accounts", network / "accounts.csv")
        before = _dump(settings)
        with pytest.raises(ValidationFailed) as failed:
            initial_load(settings, network, force=True)
        assert f"{path}:{line}: {message}" in str(failed.value)
        assert _dump(settings) == before
    finally:
        store.close()
