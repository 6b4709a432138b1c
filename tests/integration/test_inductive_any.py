"""Request-time scoring of champions that are not the relational GNN: the tree families, the
stacked blend and the wavelet GNN go through ``ml.center.ServedCenter`` on the same sampled
subgraph. Uncapped, a snapshot account's request-time score is its batch score; capped, it
stays close; a new account is scored with reasons that name relations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from creditgraph.domain import AccountColumns, TransferColumns
from creditgraph.ingest.csvfile import KINDS
from creditgraph.ml.artifact import load_artifact
from creditgraph.ml.scorer import INDUCTIVE_REASON_CODES
from creditgraph.registry import ModelRegistry
from creditgraph.services.inductive import InductiveScorer
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import (
    BaselineSection,
    CandidatesSection,
    Family,
    ModelConfig,
    OptimConfig,
    TrainingConfig,
)

UNCAPPED = (10**6,)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("net")
    generate(1_500, 11, out)
    return out


# One torch thread: the same seed gives the same scores only at the same thread count.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    ("families", "social_trees"), [(["stacked"], True), (["labels"], False), (["wavelet"], True)]
)
def test_any_champion_scores_at_request_time_like_the_batch(
    network: Path, tmp_path: Path, families: list[Family], social_trees: bool
) -> None:
    store = EmbeddedStore(tmp_path / "db.sqlite")
    store.apply_schema()
    try:
        for kind in KINDS:
            import_file(store, kind, network / f"{kind}.csv", batch_size=5_000)
        registry = ModelRegistry(tmp_path / "models")
        job = TrainingConfig(
            model=ModelConfig(hidden=8),
            optim=OptimConfig(max_epochs=15, patience=5),
            baseline=BaselineSection(max_rounds=60, early_stopping_rounds=15),
            candidates=CandidatesSection(
                families=families, social_trees=social_trees, stack_folds=2, wavelet_hidden=8
            ),
        )
        report = retrain(store, registry, job)
        assert report.selected["fraud"] == families[0]
        artifact = load_artifact(registry.path(report.version))
        snapshot = store.snapshot()
        batch = artifact.score(artifact.features(snapshot))

        full = InductiveScorer.build(artifact, report.version, snapshot, fanouts=UNCAPPED)
        rows = range(0, snapshot.num_accounts, 25)
        for i in rows:
            s = full.score(snapshot.account_ids[i])
            assert not s.sampled
            assert s.fraud_logit == pytest.approx(batch.fraud_logit[i], abs=1e-4)
            assert s.social_logit == pytest.approx(batch.social_logit[i], abs=1e-4)
            assert s.fraud_probability == pytest.approx(batch.fraud_probability[i], abs=1e-5)
            assert {r["code"] for r in s.reasons} <= INDUCTIVE_REASON_CODES

        capped = InductiveScorer.build(artifact, report.version, snapshot)
        got = np.array([capped.score(snapshot.account_ids[i]).fraud_probability for i in rows])
        want = batch.fraud_probability[list(rows)]
        # Capped at 15 then 10 neighbours, means and maxima are estimates from the sample.
        assert np.mean(np.abs(got - want)) < 0.02
        assert spearmanr(got, want).statistic > 0.8

        # A new account written after the snapshot, tied to the riskiest account's partners.
        riskiest = snapshot.account_ids[int(np.argmax(batch.fraud_probability))]
        partners = sorted(
            {e.dst if e.src == riskiest else e.src for e in store.adjacent([riskiest])}
        )[:5]
        store.upsert_accounts(AccountColumns(["NEW-1"], [None], [{}], [{}]))
        n = len(partners)
        store.upsert_transfers(
            TransferColumns(
                [f"T-NEW-{k}" for k in range(n)],
                ["NEW-1"] * n,
                partners,
                [10.0] * n,
                [1.7e9] * n,
                [None] * n,
                [None] * n,
            )
        )
        new = capped.score_new("NEW-1", store)
        assert new.inductive
        assert 0.0 <= new.fraud_probability <= 1.0
        assert 0.0 <= new.social_credit <= 100.0
        assert {r["code"] for r in new.reasons} <= INDUCTIVE_REASON_CODES
        assert any(r["code"].startswith("RELATION") for r in new.reasons)
        assert np.isfinite(new.fraud_logit)
    finally:
        store.close()
