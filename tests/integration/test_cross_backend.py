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

from ..conftest import assert_same_snapshot, wipe_neo4j


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
        assert_same_snapshot(a, b)
        center = a.account_ids[int(np.argmax(a.edges["FRIEND"].src == 0))]
        na, nb = embedded.neighbourhood(center, hops=2), neo.neighbourhood(center, hops=2)
        assert (na.nodes, na.truncated) == (nb.nodes, nb.truncated)
        assert [(e.src, e.dst, e.relation, e.count) for e in na.edges] == [
            (e.src, e.dst, e.relation, e.count) for e in nb.edges
        ]
    finally:
        embedded.close()
        neo.close()
