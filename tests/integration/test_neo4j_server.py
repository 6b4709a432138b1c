"""The project's own Neo4j: fetch, start, stop, status, admin — against a real server.

Every server here lives in its own NEO4J_HOME under tmp_path and listens on 7697/7484, so the
main development server (7687, default home) that other tests use is never touched. Nothing is
skipped: without Maven, Java 17/21 or a working server these tests fail.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import GraphDatabase
from pydantic import SecretStr

from creditgraph.config import Settings
from creditgraph.devtools import neo4j_server
from creditgraph.errors import StoreUnavailable

pytestmark = pytest.mark.neo4j

ISO_BOLT_PORT = 7697
ISO_HTTP_PORT = 7484
ISO_PASSWORD = "iso-test-password"
START_TIMEOUT_S = 120.0


def iso_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for a small, isolated server that cannot collide with the main one."""
    values: dict[str, Any] = {
        "neo4j_home": home,
        "neo4j_bolt_port": ISO_BOLT_PORT,
        "neo4j_http_port": ISO_HTTP_PORT,
        "neo4j_uri": f"bolt://127.0.0.1:{ISO_BOLT_PORT}",
        "neo4j_user": "neo4j",
        "neo4j_password": SecretStr(ISO_PASSWORD),
        "neo4j_database": "neo4j",
        "neo4j_heap": "512m",
        "neo4j_pagecache": "64m",
        "neo4j_start_timeout_s": START_TIMEOUT_S,
    }
    values.update(overrides)
    return Settings(**values)


def run_cypher(settings: Settings, query: str, **params: Any) -> list[dict[str, Any]]:
    with GraphDatabase.driver(
        neo4j_server.bolt_uri(settings),
        auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
    ) as driver:
        records, _, _ = driver.execute_query(query, params, database_=settings.neo4j_database)
        return [record.data() for record in records]


@pytest.fixture(scope="module")
def initialised_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home that has been started once (password set, databases created), now stopped."""
    home = tmp_path_factory.mktemp("neo4j-iso") / "home"
    settings = iso_settings(home)
    try:
        neo4j_server.start(settings)
        neo4j_server.stop(settings)
        yield home
    finally:
        neo4j_server.stop(settings)


@pytest.fixture
def stopped_after() -> Iterator[Callable[[Settings], Settings]]:
    """Register settings whose server must be stopped however the test ends."""
    registered: list[Settings] = []

    def register(settings: Settings) -> Settings:
        registered.append(settings)
        return settings

    yield register
    for settings in registered:
        neo4j_server.stop(settings)


def test_fetch_twice_is_a_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = iso_settings(Path("unused"))
    lib = neo4j_server.fetch(settings)
    marker = lib.parent / ".complete"
    marker_mtime = marker.stat().st_mtime_ns
    lib_inode = lib.stat().st_ino

    calls: list[list[str]] = []
    real_run = subprocess.run

    def spy(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        calls.append([str(a) for a in args])
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    started = time.monotonic()
    assert neo4j_server.fetch(settings) == lib
    elapsed = time.monotonic() - started

    assert not [c for c in calls if Path(c[0]).name == "mvn"], calls
    assert elapsed < 2.0
    assert marker.stat().st_mtime_ns == marker_mtime
    assert lib.stat().st_ino == lib_inode
    assert (lib / f"neo4j-server-{settings.neo4j_version}.jar").is_file()


def test_interrupted_fetch_is_redone(tmp_path: Path) -> None:
    settings = iso_settings(tmp_path / "home")
    cache = tmp_path / "cache"
    # What a fetch killed half-way leaves behind: jars in place, no completion marker.
    partial_lib = neo4j_server.jars_dir(settings, cache)
    partial_lib.mkdir(parents=True)
    (partial_lib / "half-copied.jar").write_bytes(b"PK")

    lib = neo4j_server.fetch(settings, cache_dir=cache)

    assert lib == partial_lib
    assert (lib.parent / ".complete").is_file()
    assert not (lib / "half-copied.jar").exists()
    assert len(list(lib.glob("*.jar"))) > 100


def test_status_of_a_home_never_started(tmp_path: Path) -> None:
    state = neo4j_server.status(iso_settings(tmp_path / "never-started"))
    assert not state.running
    assert state.pid is None
    assert not state.responsive


def test_data_persists_across_restarts(
    initialised_home: Path, stopped_after: Callable[[Settings], Settings]
) -> None:
    settings = stopped_after(iso_settings(initialised_home))
    marker = str(uuid.uuid4())

    started = neo4j_server.start(settings)
    assert started.running
    assert started.responsive
    assert started.version == settings.neo4j_version
    state = neo4j_server.status(settings)
    assert state.running
    assert state.responsive
    assert state.pid is not None
    assert state.pid == started.pid
    # Already running: start only verifies, it does not launch a second server.
    assert neo4j_server.start(settings).pid == started.pid

    run_cypher(settings, "CREATE (:PersistenceProbe {marker: $marker})", marker=marker)
    neo4j_server.stop(settings)
    stopped = neo4j_server.status(settings)
    assert not stopped.running
    assert not stopped.responsive
    neo4j_server.stop(settings)  # stopping a stopped server is a no-op

    restarted = neo4j_server.start(settings)
    assert restarted.pid != started.pid
    rows = run_cypher(
        settings, "MATCH (p:PersistenceProbe {marker: $marker}) RETURN count(p) AS n", marker=marker
    )
    assert rows == [{"n": 1}]
    neo4j_server.stop(settings)
    assert not neo4j_server.status(settings).running


def test_wrong_password_fails_clearly_within_the_timeout(
    initialised_home: Path, stopped_after: Callable[[Settings], Settings]
) -> None:
    timeout_s = 90.0
    settings = stopped_after(
        iso_settings(
            initialised_home,
            neo4j_password=SecretStr("not-the-password"),
            neo4j_start_timeout_s=timeout_s,
        )
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="rejected user 'neo4j'"):
        neo4j_server.start(settings)
    assert time.monotonic() - started < timeout_s

    state = neo4j_server.status(settings)
    assert state.running
    assert not state.responsive
    assert state.error is not None


def test_admin_offline_import_is_served_after_restart(
    tmp_path: Path, stopped_after: Callable[[Settings], Settings]
) -> None:
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "accounts.csv").write_text("account_id:ID,:LABEL\na1,Account\na2,Account\n")
    (csv_dir / "transfers.csv").write_text(":START_ID,:END_ID,:TYPE\na1,a2,TRANSFER\n")
    settings = stopped_after(iso_settings(tmp_path / "home", neo4j_database="imported"))

    # A home never started yet: the import writes the store, start then serves it.
    proc = neo4j_server.admin(
        settings,
        [
            "database",
            "import",
            "full",
            "imported",
            f"--nodes={csv_dir / 'accounts.csv'}",
            f"--relationships={csv_dir / 'transfers.csv'}",
        ],
        heap="256m",
    )
    assert "IMPORT DONE" in proc.stdout

    neo4j_server.start(settings)
    rows = run_cypher(settings, "MATCH (:Account)-[t:TRANSFER]->(:Account) RETURN count(t) AS n")
    assert rows == [{"n": 1}]

    # The database the running server serves cannot be imported into.
    busy = neo4j_server.admin(
        settings,
        [
            "database",
            "import",
            "full",
            "imported",
            f"--nodes={csv_dir / 'accounts.csv'}",
            "--overwrite-destination",
        ],
        check=False,
    )
    assert busy.returncode != 0
    assert "in use" in busy.stdout + busy.stderr
    neo4j_server.stop(settings)
