"""The same synthetic network imported into both stores gives identical counts and snapshots."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from creditgraph.config import Settings
from creditgraph.ingest.csvfile import KINDS
from creditgraph.services.ingest import import_file
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore
from creditgraph.synth import generate

from ..conftest import wipe_neo4j


@pytest.mark.neo4j
@pytest.mark.slow
def test_both_backends_hold_the_same_graph(tmp_path: Path) -> None:
    generate(2_000, 11, tmp_path / "net")
    settings = Settings(data_dir=tmp_path / "data")
    wipe_neo4j(settings)
    embedded = EmbeddedStore(settings.embedded_path)
    neo = Neo4jStore.connect(settings)
    try:
        for store in (embedded, neo):
            for kind in KINDS:
                import_file(store, kind, tmp_path / "net" / f"{kind}.csv", batch_size=5_000)
        assert asdict(embedded.counts()) == asdict(neo.counts())
        a, b = embedded.snapshot(), neo.snapshot()
        assert a.account_ids == b.account_ids
        assert a.feature_names == b.feature_names
        np.testing.assert_array_equal(a.features, b.features)
        np.testing.assert_array_equal(a.created_at, b.created_at)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert sorted(a.edges) == sorted(b.edges)
        for rel, ea in a.edges.items():
            eb = b.edges[rel]
            assert ea.directed == eb.directed
            np.testing.assert_array_equal(ea.src, eb.src)
            np.testing.assert_array_equal(ea.dst, eb.dst)
            for field in ("count", "first_ts", "last_ts"):
                np.testing.assert_array_equal(getattr(ea, field), getattr(eb, field))
            if ea.total_amount is not None:
                # Sums of the same amounts in another order may differ in the last bit.
                np.testing.assert_allclose(ea.total_amount, eb.total_amount, rtol=1e-12)
        center = a.account_ids[int(np.argmax(a.edges["FRIEND"].src == 0))]
        na, nb = embedded.neighbourhood(center, hops=2), neo.neighbourhood(center, hops=2)
        assert (na.nodes, na.truncated) == (nb.nodes, nb.truncated)
        assert [(e.src, e.dst, e.relation, e.count) for e in na.edges] == [
            (e.src, e.dst, e.relation, e.count) for e in nb.edges
        ]
    finally:
        embedded.close()
        neo.close()
