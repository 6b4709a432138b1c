"""Snapshot → features and typed edges, the standardiser, graph primitives, metrics and the
calibrator, on tiny hand-made graphs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from creditgraph.domain import TRANSFER, EdgeSet, Snapshot
from creditgraph.ml.calibrate import Calibrator
from creditgraph.ml.features import CLIP, DAY, FeatureSet, Standardizer, build_features
from creditgraph.ml.graphops import incoming_subgraph, neighbour_max, weighted_mean
from creditgraph.ml.metrics import expected_calibration_error, ranking_metrics, recall_at_k
from creditgraph.ml.model import GraphInput, RelationalGNN

T0 = 1_700_000_000.0
A, B, C, D = 0, 1, 2, 3


def _ints(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def _floats(*v: float) -> np.ndarray:
    return np.array(v, dtype=np.float64)


def tiny_snapshot() -> Snapshot:
    """A pays B twice and C once, B pays A back, C pays itself; A-D friends, B-C share a
    device. D has a missing kyc_level and no transfers."""
    return Snapshot(
        account_ids=["A", "B", "C", "D"],
        feature_names=["age_years", "kyc_level"],
        features=np.array([[30, 2], [40, 1], [50, 3], [60, np.nan]], dtype=np.float64),
        created_at=_floats(T0 - 10 * DAY, T0 - 20 * DAY, T0 - 30 * DAY, np.nan),
        labels=np.array([0, 1, -1, 0], dtype=np.int8),
        edges={
            TRANSFER: EdgeSet(
                relation=TRANSFER,
                directed=True,
                src=_ints(A, A, B, C),
                dst=_ints(B, C, A, C),
                count=_ints(2, 1, 1, 1),
                total_amount=_floats(100.0, 50.0, 30.0, 5.0),
                first_ts=_floats(T0 - 4 * DAY, T0 - 3 * DAY, T0 - 2 * DAY, T0),
                last_ts=_floats(T0 - 1 * DAY, T0 - 3 * DAY, T0 - 2 * DAY, T0),
            ),
            "FRIEND": EdgeSet("FRIEND", directed=False, src=_ints(A), dst=_ints(D)),
            "SHARES_DEVICE": EdgeSet("SHARES_DEVICE", directed=False, src=_ints(B), dst=_ints(C)),
        },
    )


@pytest.fixture
def fs() -> FeatureSet:
    return build_features(tiny_snapshot(), {"age_years"})


def col(fs: FeatureSet, name: str) -> np.ndarray:
    return fs.x[:, fs.names.index(name)]


def test_sensitive_columns_are_never_features(fs: FeatureSet) -> None:
    assert "age_years" not in fs.names
    assert "kyc_level" in fs.names
    assert "age_years" not in Standardizer.fit(fs).output_names
    assert "age_years" in build_features(tiny_snapshot(), set()).names


def test_relations_split_transfers_by_direction_and_mirror_links(fs: FeatureSet) -> None:
    assert fs.relations == ["FRIEND", "SHARES_DEVICE", "TRANSFER_out", "TRANSFER_in"]
    # Row 0 sends the message, row 1 receives it: A's payees (B, C) reach A through _out.
    assert fs.edge_index["TRANSFER_out"].tolist() == [[B, C, A], [A, A, B]]
    assert fs.edge_index["TRANSFER_in"].tolist() == [[A, A, B], [B, C, A]]
    assert fs.edge_weight["TRANSFER_out"].tolist() == pytest.approx(np.log1p([2, 1, 1]).tolist())
    assert sorted(map(tuple, fs.edge_index["FRIEND"].T.tolist())) == [(A, D), (D, A)]
    assert fs.edge_weight["FRIEND"].tolist() == [1.0, 1.0]
    for ei in fs.edge_index.values():
        assert ei.dtype == torch.int64
        assert not bool((ei[0] == ei[1]).any()), "self-loops are dropped"


def test_engineered_transfer_and_degree_features(fs: FeatureSet) -> None:
    assert fs.x.dtype == np.float32
    assert col(fs, "transfer_out_count").tolist() == [3, 1, 0, 0]
    assert col(fs, "transfer_in_count").tolist() == [1, 2, 1, 0]
    assert col(fs, "transfer_out_amount").tolist() == [150, 30, 0, 0]
    assert col(fs, "transfer_partners").tolist() == [2, 1, 1, 0]
    assert col(fs, "transfer_reciprocity").tolist() == [0.5, 1.0, 0.0, 0.0]
    assert col(fs, "transfer_flow_balance")[A] == pytest.approx(120 / 180)
    assert col(fs, "degree_FRIEND").tolist() == [1, 0, 0, 1]
    assert col(fs, "degree_SHARES_DEVICE").tolist() == [0, 1, 1, 0]
    # as_of defaults to the last transfer (T0, C's self-payment, still counts as a time).
    assert col(fs, "account_age_days")[:3].tolist() == pytest.approx([10, 20, 30])
    assert col(fs, "transfer_active_days")[A] == pytest.approx(3)
    assert col(fs, "transfer_recency_days")[A] == pytest.approx(1)
    assert col(fs, "transfer_first_after_open_days")[A] == pytest.approx(6)
    assert math.isnan(col(fs, "transfer_active_days")[D])
    assert math.isnan(col(fs, "account_age_days")[D])


def test_a_snapshot_without_transfers_or_links_still_trains_the_model() -> None:
    snap = tiny_snapshot()
    empty = _ints()
    bare = Snapshot(
        snap.account_ids,
        snap.feature_names,
        snap.features,
        snap.created_at,
        snap.labels,
        {TRANSFER: EdgeSet(TRANSFER, True, empty, empty, empty, _floats(), _floats(), _floats())},
    )
    fs = build_features(bare, set())
    assert fs.relations == ["TRANSFER_out", "TRANSFER_in"]
    assert (col(fs, "transfer_partners") == 0).all()
    x = torch.from_numpy(Standardizer.fit(fs).transform(fs.x, fs.names))
    out = _model(fs, x.shape[1])(_graph(fs, x).with_adjacency())
    assert torch.isfinite(out.fraud_logit).all()
    assert torch.isfinite(out.social_logit).all()


def test_standardizer_is_finite_json_round_trips_and_matches_columns_by_name(
    fs: FeatureSet,
) -> None:
    st = Standardizer.fit(fs)
    z = st.transform(fs.x, fs.names)
    assert z.dtype == np.float32
    assert z.shape == (4, len(st.output_names))
    assert np.isfinite(z).all()
    assert np.abs(z).max() <= CLIP
    assert "kyc_level_missing" in st.output_names
    assert z[:, st.output_names.index("kyc_level_missing")].tolist() == [0, 0, 0, 1]
    # Missing reads as the median: 0 after scaling.
    assert z[D, st.output_names.index("kyc_level")] == 0.0

    again = Standardizer.from_state(json.loads(json.dumps(st.state())))
    assert np.array_equal(again.transform(fs.x, fs.names), z)

    # A snapshot without a relation the model knows: its columns read as missing, extra ones
    # are ignored, the layout stays that of the fitted standardiser.
    keep = [j for j, n in enumerate(fs.names) if n != "degree_FRIEND"]
    names = [fs.names[j] for j in keep] + ["degree_NEW"]
    x = np.concatenate([fs.x[:, keep], np.ones((4, 1), np.float32)], axis=1)
    moved = st.transform(x, names)
    assert moved.shape == z.shape
    assert (moved[:, st.output_names.index("degree_FRIEND")] == 0).all()


def test_weighted_mean_and_max_over_neighbours() -> None:
    h = torch.tensor([[1.0, -1.0], [3.0, 5.0], [0.0, 0.0]])
    ei = torch.tensor([[0, 1], [2, 2]])
    w = torch.tensor([1.0, 3.0])
    assert weighted_mean(h, ei, w, 3).tolist() == [[0, 0], [0, 0], [2.5, 3.5]]
    assert neighbour_max(h, ei, 3).tolist() == [[0, 0], [0, 0], [3, 5]]


def _model(fs: FeatureSet, in_dim: int) -> RelationalGNN:
    torch.manual_seed(0)
    return RelationalGNN(in_dim, fs.relations, hidden=8, layers=2, dropout=0.0).eval()


def _flat_grad(p: torch.Tensor) -> torch.Tensor:
    assert p.grad is not None
    return p.grad.flatten()


def _graph(fs: FeatureSet, x: torch.Tensor) -> GraphInput:
    return GraphInput(x, fs.edge_index, fs.edge_weight)


def test_social_pathway_ignores_the_accounts_own_features(fs: FeatureSet) -> None:
    st = Standardizer.fit(fs)
    x = torch.from_numpy(st.transform(fs.x, fs.names))
    model = _model(fs, x.shape[1])
    with torch.no_grad():
        before = model(_graph(fs, x))
        moved = x.clone()
        moved[A] += 3.0
        after = model(_graph(fs, moved))
    assert after.social_logit[A] == before.social_logit[A]
    assert after.fraud_logit[A] != before.fraud_logit[A]
    # ... but A's features are part of its neighbours' relationship evidence.
    assert after.social_logit[B] != before.social_logit[B]


def test_any_relation_names_and_missing_relations_work(fs: FeatureSet) -> None:
    x = torch.randn(4, 5)
    model = RelationalGNN(5, ["COLLEAGUE", "my.relation", "TRANSFER_out"], hidden=4)
    graph = GraphInput(
        x,
        {"COLLEAGUE": fs.edge_index["FRIEND"], "my.relation": fs.edge_index["SHARES_DEVICE"]},
        {"COLLEAGUE": fs.edge_weight["FRIEND"], "my.relation": fs.edge_weight["SHARES_DEVICE"]},
    )
    out = model.eval()(graph)
    assert out.fraud_logit.shape == out.social_logit.shape == (4,)
    assert torch.isfinite(out.fraud_logit).all()


def test_sparse_adjacency_path_matches_the_edge_list_path(fs: FeatureSet) -> None:
    st = Standardizer.fit(fs)
    graph = _graph(fs, torch.from_numpy(st.transform(fs.x, fs.names)))
    model = _model(fs, graph.x.shape[1])
    with torch.no_grad():
        edges, sparse = model(graph), model(graph.with_adjacency())
    assert torch.allclose(edges.fraud_logit, sparse.fraud_logit, atol=1e-5)
    assert torch.allclose(edges.social_logit, sparse.social_logit, atol=1e-5)


def test_sparse_path_gradients_match_the_edge_list_path(fs: FeatureSet) -> None:
    # The sparse path's backward uses a transpose built once (graphops._SpMM), not autograd's.
    st = Standardizer.fit(fs)
    x = torch.from_numpy(st.transform(fs.x, fs.names))
    model = _model(fs, x.shape[1])
    model.eval()
    grads = []
    for graph in (_graph(fs, x), _graph(fs, x).with_adjacency()):
        model.zero_grad()
        out = model(graph)
        (out.fraud_logit.square().sum() + out.social_logit.sum()).backward()
        grads.append(torch.cat([_flat_grad(p) for p in model.parameters()]))
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_incoming_subgraph_reproduces_the_full_graph_output(fs: FeatureSet) -> None:
    st = Standardizer.fit(fs)
    x = torch.from_numpy(st.transform(fs.x, fs.names))
    model = _model(fs, x.shape[1])
    with torch.no_grad():
        full = model(_graph(fs, x))
    for center in range(fs.num_accounts):
        nodes, masks = incoming_subgraph(fs.edge_index, fs.num_accounts, center, hops=2)
        local = torch.full((fs.num_accounts,), -1, dtype=torch.long)
        local[nodes] = torch.arange(len(nodes))
        sub = GraphInput(
            x[nodes],
            {r: local[ei[:, masks[r]]] for r, ei in fs.edge_index.items()},
            {r: w[masks[r]] for r, w in fs.edge_weight.items()},
        )
        with torch.no_grad():
            out = model(sub)
        i = int(local[center])
        assert out.fraud_logit[i] == pytest.approx(float(full.fraud_logit[center]), abs=1e-5)
        assert out.social_logit[i] == pytest.approx(float(full.social_logit[center]), abs=1e-5)


def test_recall_at_k_and_ranking_metrics() -> None:
    y = np.array([1, 0, 1, 0, 0])
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.3])
    assert recall_at_k(y, score, 1) == 0.5
    assert recall_at_k(y, score, 5) == 1.0
    m = ranking_metrics(y, score, 2)
    assert m["recall_at_k"] == 0.5
    assert m["positives"] == 2
    assert 0 < m["auroc"] < 1


def test_calibration_reduces_ece_and_keeps_the_order() -> None:
    rng = np.random.default_rng(0)
    true_logit = rng.normal(-3.0, 1.5, 20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    # What pos_weight training does: logits shifted up and stretched.
    model_logit = 2.0 * true_logit + 3.0
    raw = 1 / (1 + np.exp(-model_logit))
    fit, held = slice(0, 10_000), slice(10_000, None)
    for method in ("platt", "isotonic"):
        cal = Calibrator.fit(model_logit[fit], y[fit], method)
        p = cal(model_logit[held])
        assert expected_calibration_error(y[held], p) < 0.3 * expected_calibration_error(
            y[held], raw[held]
        )
        order = np.argsort(model_logit[held])
        assert (np.diff(p[order]) >= 0).all()
        again = Calibrator.from_state(json.loads(json.dumps(cal.state())))
        assert np.array_equal(again(model_logit[held]), p)
