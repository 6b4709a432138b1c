"""The transfer model's columnar serving state gives the features of the reference path
(``store.transfer_log`` + ``PairContext`` + ``HistoryState``, Python objects per transfer)
on a small synthetic network in every backend, before and after ingest-time updates; and
``transfer_arrays`` is the log's order, ties by transfer id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from creditgraph.domain import Ring
from creditgraph.ingest.csvfile import KINDS
from creditgraph.services.ingest import import_file
from creditgraph.services.transfers.features import NUMERIC, HistoryState, PairContext
from creditgraph.services.transfers.scorer import serving_state
from creditgraph.store.base import GraphStore
from creditgraph.synth import generate

CATEGORICAL = ["channel", "device"]


@pytest.fixture
def network(store: GraphStore, tmp_path: Path) -> GraphStore:
    generate(300, 11, tmp_path / "net")
    for kind in KINDS:
        import_file(store, kind, tmp_path / "net" / f"{kind}.csv")
    return store


def test_transfer_arrays_follow_the_log_order_with_ties_by_id(
    store: GraphStore, tmp_path: Path
) -> None:
    (tmp_path / "accounts.csv").write_text("account_id\nA\nB\nC\n")
    (tmp_path / "transfers.csv").write_text(
        "transfer_id,src,dst,amount,timestamp\n"
        "T9,A,B,1,2024-02-01T10:00:00Z\n"
        "T2,B,C,2,2024-02-01T10:00:00Z\n"
        "T5,C,A,3,2024-02-01T09:00:00Z\n"
        "T1,A,C,4,2024-02-02T00:00:00Z\n"
    )
    import_file(store, "accounts", tmp_path / "accounts.csv")
    import_file(store, "transfers", tmp_path / "transfers.csv")
    log = store.transfer_log()
    arrays = store.transfer_arrays(["B", "C"])  # A is not in the list: it gets the next code
    assert arrays.account_ids == ["B", "C", "A"]
    assert [arrays.account_ids[i] for i in arrays.src.tolist()] == log.src == ["C", "B", "A", "A"]
    assert [arrays.account_ids[i] for i in arrays.dst.tolist()] == log.dst
    assert arrays.amount.tolist() == log.amount.tolist() == [3.0, 2.0, 1.0, 4.0]
    assert arrays.ts.tolist() == log.ts.tolist()


def test_columnar_state_gives_the_reference_features(network: GraphStore) -> None:
    store = network
    snapshot = store.snapshot()
    rng = np.random.default_rng(5)
    ids = snapshot.account_ids
    # Rings as a detector would store them (one dismissed: it must not count).
    rings = [
        Ring(f"R{k}", "cycle", 0.3 + 0.1 * k, [ids[int(i)] for i in rng.integers(0, 60, 5)], {})
        for k in range(5)
    ]
    rings.append(Ring("R9", "cycle", 0.99, ids[:4], {}, status="dismissed"))
    fraud_p = {a: float(p) for a, p in zip(ids, rng.random(len(ids)).tolist(), strict=True)}
    log = store.transfer_log()
    assert len(log) > 1000
    reference = HistoryState.from_log(log, PairContext.build(snapshot, rings, fraud_p), CATEGORICAL)
    columnar = serving_state(store, snapshot, rings, fraud_p, CATEGORICAL)
    assert columnar.transfers == len(log)
    assert {r for r in snapshot.edges} - {"TRANSFER", "FRIEND"}, "no identity links to compare"
    end = float(log.ts[-1])
    # Busy senders and receivers (hour/day windows non-empty), random pairs, pairs with
    # history both ways, and accounts neither side has seen.
    busy = [log.src[i] for i in range(len(log) - 40, len(log))]
    pairs = [(log.src[i], log.dst[i]) for i in rng.integers(0, len(log), 150).tolist()]
    pairs += [(log.dst[i], log.src[i]) for i in rng.integers(0, len(log), 50).tolist()]
    pairs += [(s, ids[int(k)]) for s, k in zip(busy, rng.integers(0, len(ids), 40), strict=True)]
    pairs += [(ids[0], "never-seen"), ("never-seen", ids[1]), ("x-new", "y-new")]
    ring_members = [m for r in rings for m in r.members]
    pairs += [(a, b) for a in ring_members[:8] for b in ring_members[:8]]
    for rel, es in snapshot.edges.items():  # friends and identity links, either order
        if rel != "TRANSFER":
            for i in range(0, min(len(es), 200), 10):
                a, b = ids[int(es.src[i])], ids[int(es.dst[i])]
                pairs += [(a, b), (b, a)]

    def same(when: float) -> None:
        for k, (s, d) in enumerate(pairs):
            args = (s, d, 10.0 + 37 * k, when, "app", {"device": "d1"})
            a, b = columnar.features(*args), reference.features(*args)
            np.testing.assert_allclose(
                a.numeric, b.numeric, rtol=1e-9, equal_nan=True, err_msg=f"{s}->{d} at {when}"
            )
            assert a.categorical == b.categorical

    for later in (1.0, 1800.0, 7200.0, 2 * 86400.0):
        same(end + later)
    # Ingest: the same transfers recorded in both, including new accounts.
    extra = [(s, d) for s, d in pairs[:60]] + [("x-new", "y-new"), ("y-new", ids[3])]
    for k, (s, d) in enumerate(extra):
        when = end + 60.0 * (k + 1)
        columnar.add(s, d, 5.0 + k, when)
        reference.add(s, d, 5.0 + k, when)
    assert columnar.transfers == len(log) + len(extra)
    for later in (60.0 * len(extra) + 1, 3 * 3600.0):
        same(end + later)
    # The comparison covered every feature with non-trivial values somewhere.
    when = end + 60.0 * len(extra) + 1
    x = np.vstack([reference.features(s, d, 50.0, when, None, {}).numeric for s, d in pairs])
    seen = {n for j, n in enumerate(NUMERIC) if np.nansum(x[:, j] != 0) > 0}
    assert set(NUMERIC) - seen == set()
