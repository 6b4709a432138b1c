"""The same synthetic network imported into both stores gives identical counts and snapshots."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from creditgraph.config import Settings
from creditgraph.ingest.csvfile import KINDS
from creditgraph.services.ingest import import_file
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore
from creditgraph.synth import generate

from ..conftest import assert_same_snapshot, wipe_neo4j


def same_view(view: Any) -> Any:
    """A view with transfer totals rounded: sums in another order differ in the last bits."""
    if isinstance(view, dict):
        return {k: round(v, 6) if k == "total_amount" else same_view(v) for k, v in view.items()}
    if isinstance(view, list):
        return [same_view(v) for v in view]
    return view


@pytest.mark.neo4j
@pytest.mark.slow
def test_both_backends_hold_the_same_graph(tmp_path: Path) -> None:
    generate(2_000, 11, tmp_path / "net")
    settings = Settings(data_dir=tmp_path / "data")
    wipe_neo4j(settings)
    embedded = EmbeddedStore(settings.embedded_path)
    neo = Neo4jStore.connect(settings)
    # Low enough that many accounts keep their strongest ties, maintained batch by batch.
    neo.tie_list_degree = 20
    try:
        for store in (embedded, neo):
            for kind in KINDS:
                import_file(store, kind, tmp_path / "net" / f"{kind}.csv", batch_size=5_000)
        with neo._driver.session(database=neo._database) as session:
            listed = session.run("MATCH (a:Account) WHERE a.ties_top IS NOT NULL RETURN count(a)")
            assert listed.single(strict=True)[0] > 20
        assert asdict(embedded.counts()) == asdict(neo.counts())
        a, b = embedded.snapshot(), neo.snapshot()
        assert_same_snapshot(a, b)
        center = a.account_ids[int(np.argmax(a.edges["FRIEND"].src == 0))]
        na, nb = embedded.neighbourhood(center, hops=2), neo.neighbourhood(center, hops=2)
        assert (na.nodes, na.truncated) == (nb.nodes, nb.truncated)
        assert [(e.src, e.dst, e.relation, e.count) for e in na.edges] == [
            (e.src, e.dst, e.relation, e.count) for e in nb.edges
        ]
        # The capped, hub-aware views and path searches agree too, markers included: with a
        # low hub threshold some accounts are hubs, and the top accounts are walked from.
        ids = a.account_ids[:: len(a.account_ids) // 40]
        for rels in (None, frozenset({"TRANSFER"}), frozenset({"FRIEND", "SHARES_DEVICE"})):
            assert embedded.expand(ids, rels, 5, hub_degree=30) == neo.expand(
                ids, rels, 5, hub_degree=30
            )
        summarised = 0
        for c in ids[:10]:
            va = embedded.neighbourhood(c, hops=2, limit=10, hub_degree=30)
            vb = neo.neighbourhood(c, hops=2, limit=10, hub_degree=30)
            assert same_view(asdict(va)) == same_view(asdict(vb))
            summarised += len(va.summarised)
        assert summarised > 0, "the threshold should make some account a hub"
        for s, t in zip(ids[:10], ids[10:20], strict=True):
            pa = embedded.shortest_paths(s, t, max_hops=6, hub_degree=30, deadline_s=60)
            pb = neo.shortest_paths(s, t, max_hops=6, hub_degree=30, deadline_s=60)
            assert same_view(asdict(pa)) == same_view(asdict(pb))
    finally:
        embedded.close()
        neo.close()
