"""Shared fixtures: one contract suite runs against every backend.

The Neo4j half talks to the real server that ``scripts/neo4j.sh start`` (or ``.ci/run``)
started; if it cannot be reached the tests fail, they are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from neo4j import GraphDatabase

from creditgraph.config import Settings
from creditgraph.domain import Snapshot
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore

BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("neo4j", id="neo4j", marks=pytest.mark.neo4j),
]


def wipe_neo4j(settings: Settings) -> None:
    """Empty the (single, Community) database between tests; the schema stays."""
    with (
        GraphDatabase.driver(
            settings.neo4j_uri,
            auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
        ) as driver,
        driver.session(database=settings.neo4j_database) as session,
    ):
        # CALL ... IN TRANSACTIONS needs an auto-commit transaction, hence session.run.
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def assert_same_snapshot(a: Snapshot, b: Snapshot) -> None:
    """Equal ids, features, labels and edges; float totals to the last bits of order."""
    assert a.account_ids == b.account_ids
    assert a.feature_names == b.feature_names
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.created_at, b.created_at)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert sorted(a.edges) == sorted(b.edges)
    for rel, ea in a.edges.items():
        eb = b.edges[rel]
        assert ea.directed == eb.directed
        for field in ("src", "dst", "count", "first_ts", "last_ts"):
            np.testing.assert_array_equal(getattr(ea, field), getattr(eb, field))
        if ea.total_amount is not None:
            assert eb.total_amount is not None
            # The same amounts summed in another order may differ in the last bit.
            np.testing.assert_allclose(ea.total_amount, eb.total_amount, rtol=1e-12)


def make_settings(backend: str, tmp_path: Path) -> Settings:
    return Settings(store=backend, data_dir=tmp_path / "data")  # type: ignore[arg-type]


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test (``pytestmark = pytest.mark.usefixtures(...)``): the
    same seed gives the same scores only at the same thread count, and one keeps CI light."""
    import torch  # here, not at the top: most tests never need torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With CREDITGRAPH_REQUIRE_NEO4J=1 (CI), a run in which no Neo4j test passed fails."""
    if os.environ.get("CREDITGRAPH_REQUIRE_NEO4J") != "1" or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    assert reporter is not None
    passed = [r for r in reporter.stats.get("passed", []) if "neo4j" in r.keywords]
    if not passed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nerror: no Neo4j test ran and passed, but CREDITGRAPH_REQUIRE_NEO4J=1")
