"""Key life cycle on a running server: revoke, rotate and expiry take effect within a second
(``KeyRing`` stats the key file at most every 0.5 s), and the ``keys`` commands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from creditgraph.api.keys import create_key
from creditgraph.cli import app
from creditgraph.config import Settings
from tests.apitools import bearer, running_server

runner = CliRunner()
#: The promise: a change to the key file counts on a running server within this long.
EFFECTIVE_S = 1.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def cli(settings: Settings, *args: str) -> str:
    result = runner.invoke(
        app, ["keys", *args], env={"CREDITGRAPH_DATA_DIR": str(settings.data_dir)}
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def status_of(url: str, key: str) -> int:
    return httpx.get(f"{url}/v1/models", headers=bearer(key), timeout=10).status_code


def test_a_revoked_key_is_refused_by_running_servers_within_a_second(
    settings: Settings,
) -> None:
    key = create_key(settings, "investigator", "alice")
    other = create_key(settings, "investigator", "bob")
    # Two servers over one key file: each worker sees the revocation by itself.
    with running_server(settings) as url, running_server(settings) as url2:
        assert status_of(url, key) == 200
        assert status_of(url2, key) == 200
        key_id = key.split("_")[1]
        record = json.loads(cli(settings, "revoke", key_id))
        assert (record["key_id"], record["status"]) == (key_id, "revoked")
        time.sleep(EFFECTIVE_S)
        for u in (url, url2):
            r = httpx.get(f"{u}/v1/models", headers=bearer(key), timeout=10)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "unauthorized"
            assert status_of(u, other) == 200  # only that key


def test_rotate_replaces_a_key_with_one_of_the_same_role(settings: Settings) -> None:
    old = create_key(settings, "investigator", "carol")
    with running_server(settings) as url:
        new = cli(settings, "rotate", old.split("_")[1]).strip()
        assert new.startswith("cg_")
        assert new != old
        time.sleep(EFFECTIVE_S)
        assert status_of(url, old) == 401
        assert status_of(url, new) == 200
    by_id = {r["key_id"]: r for r in map(json.loads, cli(settings, "list").splitlines())}
    assert by_id[new.split("_")[1]]["role"] == "investigator"
    assert by_id[new.split("_")[1]]["name"] == "carol"
    assert by_id[old.split("_")[1]]["status"] == "revoked"


def test_rotate_with_grace_keeps_the_old_key_until_it_expires(settings: Settings) -> None:
    old = create_key(settings, "investigator", "dave")
    with running_server(settings) as url:
        new = cli(settings, "rotate", old.split("_")[1], "--grace", "2").strip()
        assert status_of(url, old) == 200  # both work during the grace period
        assert status_of(url, new) == 200
        time.sleep(2 + EFFECTIVE_S)
        assert status_of(url, old) == 401
        assert status_of(url, new) == 200


def test_an_expired_key_is_refused(settings: Settings) -> None:
    lasting = cli(
        settings,
        "create",
        "--role",
        "investigator",
        "--name",
        "frank",
        "--expires-at",
        "2999-01-01",
    ).strip()
    with running_server(settings) as url:
        # Created once the server runs, so a slow start cannot eat its lifetime.
        short = cli(
            settings, "create", "--role", "investigator", "--name", "eve", "--expires-in", "4s"
        ).strip()
        assert status_of(url, short) == 200
        assert status_of(url, lasting) == 200
        time.sleep(4.1)
        assert status_of(url, short) == 401
        assert status_of(url, lasting) == 200


def test_keys_list_shows_every_key_and_its_status(settings: Settings) -> None:
    a = create_key(settings, "payment", "feeder").split("_")[1]
    b = create_key(settings, "admin", "ops").split("_")[1]
    cli(settings, "revoke", b)
    rows = [json.loads(line) for line in cli(settings, "list").splitlines()]
    assert {(r["key_id"], r["role"], r["status"]) for r in rows} == {
        (a, "payment", "active"),
        (b, "admin", "revoked"),
    }
    assert all("secret" not in json.dumps(r) and "sha256" not in json.dumps(r) for r in rows)


def test_key_commands_refuse_bad_input(settings: Settings) -> None:
    env = {"CREDITGRAPH_DATA_DIR": str(settings.data_dir)}
    r = runner.invoke(app, ["keys", "revoke", "nosuchkey"], env=env)
    assert r.exit_code == 3
    assert "nosuchkey" in r.output
    r = runner.invoke(
        app, ["keys", "create", "--role", "payment", "--name", "x", "--expires-in", "soon"], env=env
    )
    assert r.exit_code == 2
    assert "--expires-in" in r.output
    r = runner.invoke(
        app,
        ["keys", "create", "--role", "payment", "--name", "x", "--expires-at", "2001-01-01"],
        env=env,
    )
    assert r.exit_code == 2
    assert "future" in r.output
    assert cli(settings, "list") == ""


def test_the_key_file_is_private(settings: Settings) -> None:
    create_key(settings, "payment", "feeder")
    assert settings.api_keys_path.stat().st_mode & 0o077 == 0
