"""``score_new``'s request path (own row straight from the edges, a GNN member's relation
occlusions in one forward) against the earlier path (``build_features`` on a one-account
snapshot, one forward per occluded relation): the same raw features to the bit, the same
scores and reasons within 1e-6, for new accounts with few and with many (capped) ties."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from creditgraph.domain import Account, AccountColumns, GraphEdge, LinkColumns, TransferColumns
from creditgraph.errors import InvalidInput
from creditgraph.ingest.csvfile import KINDS
from creditgraph.ml.artifact import load_artifact
from creditgraph.ml.scorer import InductiveModel, InductiveScore
from creditgraph.registry import ModelRegistry
from creditgraph.services.inductive import InductiveScorer
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import (
    BaselineSection,
    CandidatesSection,
    ModelConfig,
    OptimConfig,
    TrainingConfig,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The stacked blend: GNN fold members (occlusions) and trees; social credit by trees.
JOB = TrainingConfig(
    model=ModelConfig(hidden=8),
    optim=OptimConfig(max_epochs=10, patience=5),
    baseline=BaselineSection(max_rounds=40, early_stopping_rounds=10),
    candidates=CandidatesSection(
        families=["stacked"], social_trees=True, stack_folds=2, wavelet_hidden=8
    ),
)


def same(a: InductiveScore, b: InductiveScore) -> None:
    assert a.fraud_logit == pytest.approx(b.fraud_logit, abs=1e-6)
    assert a.social_logit == pytest.approx(b.social_logit, abs=1e-6)
    assert a.sampled == b.sampled
    assert [r["code"] for r in a.reasons] == [r["code"] for r in b.reasons]
    assert [r["weight"] for r in a.reasons] == pytest.approx(
        [r["weight"] for r in b.reasons], abs=1e-6
    )


def earlier(model: InductiveModel, on: bool) -> None:
    model.generic_own_row = on
    assert model.served_center is not None
    model.served_center.batch_occlusion = not on


def edge_lists(ids: list[str], rng: np.random.Generator) -> list[list[GraphEdge]]:
    """Edge lists of "NEW" as a store returns them, and harder: self-loops, mutual pairs,
    zero and negative amounts, a relation the snapshot lacks, undirected both ways."""
    out: list[list[GraphEdge]] = [[]]
    for k in range(30):
        edges: list[GraphEdge] = []
        for _ in range(int(rng.integers(1, 40))):
            other = ids[int(rng.integers(len(ids)))] if rng.random() > 0.1 else "NEW"
            if rng.random() < 0.3:
                other = f"UNSEEN-{int(rng.integers(5))}"
            kind = rng.random()
            if kind < 0.5:
                src, dst = ("NEW", other) if rng.random() < 0.5 else (other, "NEW")
                amount = float(rng.choice([0.0, -5.5, rng.uniform(1, 1e4)]))
                edges.append(GraphEdge(src, dst, "TRANSFER", True, int(rng.integers(1, 9)), amount))
                if rng.random() < 0.3:
                    edges.append(GraphEdge(dst, src, "TRANSFER", True, 2, 0.1 * (k + 1)))
            else:
                rel = str(rng.choice(["FRIEND", "SHARES_DEVICE", "NEW_RELATION"]))
                edges.append(GraphEdge("NEW", other, rel, False))
                if rng.random() < 0.2:
                    edges.append(GraphEdge(other, "NEW", rel, False))
        unique = {(e.src, e.dst, e.relation): e for e in edges}
        out.append([unique[key] for key in sorted(unique)])
    return out


def test_fast_request_path_equals_the_earlier_path(tmp_path: Path) -> None:
    network = tmp_path / "net"
    generate(1_000, 7, network)
    store = EmbeddedStore(tmp_path / "db.sqlite")
    store.apply_schema()
    try:
        for kind in KINDS:
            import_file(store, kind, network / f"{kind}.csv", batch_size=5_000)
        registry = ModelRegistry(tmp_path / "models")
        report = retrain(store, registry, JOB)
        assert report.selected["fraud"] == "stacked"
        artifact = load_artifact(registry.path(report.version))
        snapshot = store.snapshot()
        scorer = InductiveScorer.build(artifact, report.version, snapshot)
        model = scorer.model
        assert not model.generic_own_row

        # Own features: bit-equal to build_features on the one-account snapshot.
        rng = np.random.default_rng(0)
        as_of = model.as_of
        accounts: list[Account | None] = [
            None,
            Account("NEW", 1.6e9, {"kyc_level": 2.0, "declared_income": float("nan")}, {}),
            Account("NEW", None, {}, {}),
        ]
        for edges in edge_lists(snapshot.account_ids, rng):
            for account in accounts:
                got = model._own_features("NEW", account, edges, as_of)
                want = model._own_features_generic("NEW", account, edges, as_of)
                assert list(got) == list(want)
                assert all(
                    x == y or (math.isnan(x) and math.isnan(y))
                    for x, y in zip(got.values(), want.values(), strict=True)
                )
        clash = Account("NEW", 1.6e9, {"degree_FRIEND": 1.0}, {})
        edge = [GraphEdge("NEW", snapshot.account_ids[0], "FRIEND", False)]
        with pytest.raises(InvalidInput, match="clashes"):
            model._own_features("NEW", clash, edge, as_of)
        with pytest.raises(InvalidInput, match="clashes"):
            model._own_features_generic("NEW", clash, edge, as_of)

        # Transfer tie weights: log1p(count) as the batch computes it, table or not.
        assert model._log1p_counts == [float(np.log1p(c)) for c in range(len(model._log1p_counts))]
        a0, a1 = snapshot.account_ids[:2]
        heavy = [
            GraphEdge("NEW", a0, "TRANSFER", True, 50_000, 1.0),
            GraphEdge(a1, "NEW", "TRANSFER", True, 3, 1.0),
        ]
        _, degree, _, _ = model._ties(heavy, "NEW")
        assert degree == {
            "TRANSFER_out": float(np.log1p(50_000)),
            "TRANSFER_in": float(np.log1p(3)),
        }

        # New accounts in the store: few ties, and a hub past every cap.
        hub_partners = snapshot.account_ids[:120]
        few = snapshot.account_ids[200:203]
        store.upsert_accounts(
            AccountColumns(["NEW-FEW", "NEW-HUB"], [1.65e9, None], [{}, {}], [{}, {}])
        )
        pairs = [("NEW-FEW", b) for b in few] + [(b, "NEW-HUB") for b in hub_partners]
        pairs += [("NEW-HUB", b) for b in hub_partners[:30]]
        store.upsert_transfers(
            TransferColumns(
                [f"T-N-{k}" for k in range(len(pairs))],
                [a for a, _ in pairs],
                [b for _, b in pairs],
                [12.5 + k for k in range(len(pairs))],
                [1.7e9] * len(pairs),
                [None] * len(pairs),
                [None] * len(pairs),
            )
        )
        links = snapshot.account_ids[300:340]
        store.upsert_links(
            LinkColumns(
                ["NEW-HUB"] * len(links), links, ["SHARES_DEVICE"] * len(links), [None] * len(links)
            )
        )
        for account_id, capped in (("NEW-FEW", False), ("NEW-HUB", True)):
            fast = scorer.score_new(account_id, store)
            assert fast.sampled == capped
            again = scorer.score_new(account_id, store)
            assert (again.fraud_logit, again.social_logit) == (fast.fraud_logit, fast.social_logit)
            earlier(model, True)
            try:
                old = scorer.score_new(account_id, store)
            finally:
                earlier(model, False)
            same(fast, old)
        # Known accounts too (their occlusions go through the same forward).
        for i in range(0, snapshot.num_accounts, 97):
            a = snapshot.account_ids[i]
            fast = scorer.score(a)
            earlier(model, True)
            try:
                same(fast, scorer.score(a))
            finally:
                earlier(model, False)
    finally:
        store.close()
