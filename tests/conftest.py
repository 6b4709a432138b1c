"""Shared fixtures: one contract suite runs against every backend.

The Neo4j half talks to the real server that ``scripts/neo4j.sh start`` (or ``.ci/run``)
started; if it cannot be reached the tests fail, they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import GraphDatabase

from creditgraph.config import Settings
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore

BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("neo4j", id="neo4j", marks=pytest.mark.neo4j),
]


def wipe_neo4j(settings: Settings) -> None:
    """Empty the (single, Community) database between tests; the schema stays."""
    with GraphDatabase.driver(
        settings.neo4j_uri,
        auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
    ) as driver:
        driver.execute_query(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",
            database_=settings.neo4j_database,
        )


def make_settings(backend: str, tmp_path: Path) -> Settings:
    return Settings(store=backend, data_dir=tmp_path / "data")  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Settings:
    s = make_settings(backend, tmp_path)
    if backend == "neo4j":
        wipe_neo4j(s)
    return s


@pytest.fixture
def store(settings: Settings) -> Iterator[GraphStore]:
    st: GraphStore
    if settings.store == "neo4j":
        st = Neo4jStore.connect(settings)
    else:
        st = EmbeddedStore(settings.embedded_path)
    st.apply_schema()
    try:
        yield st
    finally:
        st.close()
