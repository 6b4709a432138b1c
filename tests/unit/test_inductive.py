"""The inductive pieces on tiny random graphs: CSR sampling, the multi-hop expansion, and the
centre-only forward pass against ``RelationalGNN`` itself (untrained weights suffice)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from creditgraph.domain import EdgeSet, Snapshot
from creditgraph.ml.features import Standardizer, build_features
from creditgraph.ml.graphops import incoming_subgraph
from creditgraph.ml.inductive import (
    CSR,
    TIME_FEATURES,
    CenterModel,
    ComputationGraph,
    Edges,
    approximate_time_features,
    edge_keys,
    localise,
    median_value,
    sample,
)
from creditgraph.ml.model import GraphInput, RelationalGNN

RELATIONS = ["A", "B", "C"]


def random_graph(
    n: int, edges: int, seed: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n, 6)).astype(np.float32))
    edge_index, edge_weight = {}, {}
    for k, rel in enumerate(RELATIONS[:2]):
        pairs = np.unique(rng.integers(0, n, size=(edges // (k + 1), 2)), axis=0)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        edge_index[rel] = torch.from_numpy(pairs.T.copy())
        edge_weight[rel] = torch.from_numpy(rng.uniform(0.5, 3.0, len(pairs)).astype(np.float32))
    # Relation C has no edges at all in this graph: it must read as "no neighbours".
    return x, edge_index, edge_weight


def csrs(
    edge_index: dict[str, torch.Tensor], edge_weight: dict[str, torch.Tensor], n: int
) -> dict[str, CSR]:
    return {
        rel: CSR.build(ei[0].numpy(), ei[1].numpy(), edge_weight[rel].numpy(), n, seed=3)
        for rel, ei in edge_index.items()
    }


def test_csr_rows_hold_every_incoming_edge_in_hash_order() -> None:
    _, edge_index, edge_weight = random_graph(40, 300, 0)
    ei, w = edge_index["A"].numpy(), edge_weight["A"].numpy()
    csr = CSR.build(ei[0], ei[1], w, 40, seed=3)
    for i in range(40):
        into = ei[1] == i
        row = slice(csr.indptr[i], csr.indptr[i + 1])
        assert sorted(csr.sender[row].tolist()) == sorted(ei[0][into].tolist())
        keys = edge_keys(np.full(into.sum(), i), csr.sender[row].astype(np.int64), 3)
        assert (np.diff((keys >> np.uint64(32)).astype(np.int64)) >= 0).all()
        assert csr.degree[i] == pytest.approx(w[into].sum(), rel=1e-6)
    senders, receivers, weights, cut = csr.take(np.array([5, 7]), 2)
    assert cut == bool(((np.bincount(ei[1], minlength=40)[[5, 7]]) > 2).any())
    for row_id in (5, 7):
        start = csr.indptr[row_id]
        mine = receivers == row_id
        assert senders[mine].tolist() == csr.sender[start : start + 2].tolist()[: mine.sum()]
        assert weights[mine].tolist() == csr.weight[start : start + 2].tolist()[: mine.sum()]


def test_uncapped_sampling_covers_the_incoming_subgraph() -> None:
    n = 60
    _, edge_index, edge_weight = random_graph(n, 200, 1)
    drawn = sample(csrs(edge_index, edge_weight, n), np.array([4]), [10**6], hops=2)
    assert not drawn.truncated
    _, masks = incoming_subgraph(edge_index, n, 4, hops=2)
    for rel, ei in edge_index.items():
        expected = {tuple(e) for e in ei[:, masks[rel]].T.tolist()}
        got = {(s, r) for p in drawn.edges[rel] for s, r in zip(p.sender, p.receiver, strict=True)}
        assert got == expected


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_center_model_equals_the_full_graph_model(layers: int) -> None:
    n = 50
    x, edge_index, edge_weight = random_graph(n, 150, layers)
    torch.manual_seed(layers)
    model = RelationalGNN(6, RELATIONS, hidden=8, layers=layers).eval()
    with torch.no_grad():
        full = model(GraphInput(x, edge_index, edge_weight).with_adjacency())
    tables = csrs(edge_index, edge_weight, n)
    center_model = CenterModel(model)
    for center in range(n):
        drawn = sample(tables, np.array([center]), [10**6], hops=layers)
        parts = [p for ps in drawn.edges.values() for p in ps]
        nodes = np.unique(np.concatenate([[center], *(np.r_[p.sender, p.receiver] for p in parts)]))
        degree = np.array(
            [tables[r].degree[center] if r in tables else 0.0 for r in RELATIONS], dtype=np.float32
        )
        graph = ComputationGraph(
            x[torch.from_numpy(nodes)],
            int(np.searchsorted(nodes, center)),
            *localise(nodes, drawn.edges, RELATIONS),
            degree,
        )
        out = center_model(graph, attribute=center % 7 == 0)
        assert out.fraud_logit == pytest.approx(float(full.fraud_logit[center]), abs=1e-5)
        assert out.social_logit == pytest.approx(float(full.social_logit[center]), abs=1e-5)


def test_capped_sampling_keeps_the_full_degree_for_the_social_head() -> None:
    n = 30
    x, edge_index, edge_weight = random_graph(n, 400, 5)
    model = RelationalGNN(6, RELATIONS, hidden=8, layers=2).eval()
    tables = csrs(edge_index, edge_weight, n)
    center = int(np.argmax(tables["A"].indptr[1:] - tables["A"].indptr[:-1]))
    drawn = sample(tables, np.array([center]), [2, 2], hops=2)
    assert drawn.truncated
    parts = [p for ps in drawn.edges.values() for p in ps]
    nodes = np.unique(np.concatenate([[center], *(np.r_[p.sender, p.receiver] for p in parts)]))
    local = localise(nodes, drawn.edges, RELATIONS)
    args = (x[torch.from_numpy(nodes)], int(np.searchsorted(nodes, center)), *local)
    full = np.array([tables[r].degree[center] if r in tables else 0.0 for r in RELATIONS])
    sampled = np.zeros(3)
    np.add.at(sampled, local[2][local[1] == args[1]], local[3][local[1] == args[1]])
    assert (sampled < full)[:2].any()
    center_model = CenterModel(model)
    a = center_model(ComputationGraph(*args, full.astype(np.float32)))
    b = center_model(ComputationGraph(*args, sampled.astype(np.float32)))
    assert a.fraud_logit == b.fraud_logit
    assert a.social_logit != b.social_logit


def test_localise_drops_relations_the_model_lacks() -> None:
    edges = {"A": [Edges(np.array([7]), np.array([3]), np.array([2.0], dtype=np.float32))]}
    edges["Z"] = [Edges(np.array([3]), np.array([7]), np.array([1.0], dtype=np.float32))]
    s, r, rel, w = localise(np.array([3, 7]), edges, ["B", "A"])
    assert (s.tolist(), r.tolist(), rel.tolist(), w.tolist()) == ([1], [0], [1], [2.0])


def test_time_feature_names_match_build_features_and_medians_invert() -> None:
    snapshot = Snapshot(
        account_ids=["a", "b", "c"],
        feature_names=[],
        features=np.empty((3, 0)),
        created_at=np.array([0.0, 0.0, 0.0]),
        labels=np.full(3, -1, dtype=np.int8),
        edges={
            "TRANSFER": EdgeSet(
                "TRANSFER",
                True,
                np.array([0, 1]),
                np.array([1, 2]),
                count=np.array([3, 1]),
                total_amount=np.array([30.0, 5.0]),
                first_ts=np.array([86_400.0, 2 * 86_400.0]),
                last_ts=np.array([5 * 86_400.0, 9 * 86_400.0]),
            )
        },
    )
    features = build_features(snapshot, [], as_of=10 * 86_400.0)
    assert {f"transfer_{s}" for s in TIME_FEATURES} <= set(features.names)
    standardizer = Standardizer.fit(features)
    for name in standardizer.names:
        value = median_value(standardizer, name)
        z = standardizer.transform(np.array([[value]], dtype=np.float32), [name])
        assert z[0, standardizer.names.index(name)] == pytest.approx(0.0, abs=1e-5)
    filled = approximate_time_features(standardizer, "transfer", transfers=8)
    assert set(filled) == {f"transfer_{s}" for s in TIME_FEATURES}
    assert filled["transfer_per_day"] == pytest.approx(8 / max(filled["transfer_active_days"], 1))
    assert all(np.isnan(v) for v in approximate_time_features(standardizer, "transfer", 0).values())
