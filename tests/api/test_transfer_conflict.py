"""A ``transfer_id`` sent again: the same content is idempotent (200, nothing changed), other
content is a 409 naming the differing fields over HTTP, and a ``file:line`` error (exit 4)
from ``creditgraph import``; nothing of the batch or file is written either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from creditgraph.api.keys import create_key
from creditgraph.cli import app
from creditgraph.config import Settings
from creditgraph.store.factory import open_store
from tests.apitools import bearer, running_server

T1 = {
    "transfer_id": "t1",
    "src": "A",
    "dst": "B",
    "amount": 10.0,
    "timestamp": "2026-01-01T10:00:00Z",
    "currency": "EUR",
}


@pytest.fixture
def feeder(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Settings]]:
    s = Settings(data_dir=tmp_path / "data")
    headers = bearer(create_key(s, "payment", "feeder"))
    with running_server(s) as url:
        r = httpx.post(
            f"{url}/v1/accounts",
            json={"items": [{"account_id": a} for a in "ABC"]},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        yield url, headers, s


def test_a_resent_transfer_id_with_other_content_is_409_naming_the_fields(
    feeder: tuple[str, dict[str, str], Settings],
) -> None:
    url, headers, s = feeder
    r = httpx.post(f"{url}/v1/transfers", json={"items": [T1]}, headers=headers)
    assert r.json()["changed"] == 1
    r = httpx.post(f"{url}/v1/transfers", json={"items": [T1]}, headers=headers)
    assert r.status_code == 200
    assert r.json()["changed"] == 0  # identical: idempotent
    new = {**T1, "transfer_id": "t2"}
    changed = {**T1, "amount": 99.0, "dst": "C"}
    r = httpx.post(f"{url}/v1/transfers", json={"items": [new, changed]}, headers=headers)
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "conflict"
    assert "'t1'" in error["message"]
    assert "dst, amount" in error["message"]
    assert error["fields"] == [
        {
            "loc": ["body", "items", 1, "transfer_id"],
            "message": "already stored with a different dst, amount",
            "differing": ["dst", "amount"],
        }
    ]
    store = open_store(s)
    try:
        assert store.counts().transfers == 1  # t2 was not written either
    finally:
        store.close()


def test_the_csv_import_names_file_and_line(tmp_path: Path) -> None:
    env = {"CREDITGRAPH_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    (tmp_path / "a.csv").write_text("account_id\nA\nB\n")
    header = "transfer_id,src,dst,amount,timestamp\n"
    (tmp_path / "t.csv").write_text(header + "t1,A,B,10,2026-01-01\nt2,B,A,5,2026-01-02\n")
    (tmp_path / "t2.csv").write_text(header + "t3,A,B,1,2026-01-03\nt2,B,A,6,2026-01-02\n")
    for kind, name in (("accounts", "a.csv"), ("transfers", "t.csv"), ("transfers", "t.csv")):
        r = runner.invoke(app, ["import", kind, str(tmp_path / name)], env=env)
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["import", "transfers", str(tmp_path / "t2.csv")], env=env)
    assert r.exit_code == 4
    assert f"{tmp_path / 't2.csv'}:3: column 'transfer_id': transfer_id 't2'" in r.output
    assert "different amount" in r.output
    store = open_store(Settings(data_dir=tmp_path / "data"))
    try:
        assert store.counts().transfers == 2  # t3 not written
    finally:
        store.close()
