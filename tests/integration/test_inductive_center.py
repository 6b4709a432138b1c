"""Request-time scoring of a tree champion (``trees`` + ``social_trees``, the 1M job's
families) through the centre-only path: the centre's aggregate row and single-row leaves.

It gives the earlier path's scores and reasons (``ServedCenter(center_only=False)``: every
family on the whole subgraph through ``Booster.predict``), capped or not, for snapshot
accounts and for a new account read from the store; uncapped, the batch scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from creditgraph.domain import AccountColumns, TransferColumns
from creditgraph.ingest.csvfile import KINDS
from creditgraph.ml.artifact import load_artifact
from creditgraph.ml.scorer import InductiveScore
from creditgraph.registry import ModelRegistry
from creditgraph.services.inductive import InductiveScorer
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import BaselineSection, CandidatesSection, TrainingConfig

TREES = TrainingConfig(
    baseline=BaselineSection(max_rounds=50, early_stopping_rounds=15),
    candidates=CandidatesSection(families=["trees"], social_trees=True),
)


# One torch thread: the same seed gives the same scores only at the same thread count.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def same(a: InductiveScore, b: InductiveScore) -> None:
    assert a.fraud_logit == pytest.approx(b.fraud_logit, abs=1e-9)
    assert a.social_logit == pytest.approx(b.social_logit, abs=1e-9)
    assert a.sampled == b.sampled
    assert [(r["code"], r["message"]) for r in a.reasons] == [
        (r["code"], r["message"]) for r in b.reasons
    ]
    assert [r["weight"] for r in a.reasons] == pytest.approx(
        [r["weight"] for r in b.reasons], abs=1e-9
    )


def test_center_only_path_equals_the_previous_path_and_the_batch(tmp_path: Path) -> None:
    network = tmp_path / "net"
    generate(1_000, 11, network)
    store = EmbeddedStore(tmp_path / "db.sqlite")
    try:
        for kind in KINDS:
            import_file(store, kind, network / f"{kind}.csv", batch_size=5_000)
        registry = ModelRegistry(tmp_path / "models")
        report = retrain(store, registry, TREES)
        assert (report.selected["fraud"], report.selected["social"]) == ("trees", "social_trees")
        artifact = load_artifact(registry.path(report.version))
        snapshot = store.snapshot()
        batch = artifact.score(artifact.features(snapshot))

        capped = InductiveScorer.build(artifact, report.version, snapshot)
        center = capped.model.served_center
        assert center is not None
        assert center.center_only
        rows = range(0, snapshot.num_accounts, 15)
        sampled = 0
        for i in rows:
            a = snapshot.account_ids[i]
            center.center_only = True
            new = capped.score(a)
            center.center_only = False
            same(new, capped.score(a))
            sampled += new.sampled
        assert sampled > 0  # caps bound for some accounts: estimates, equal on both paths

        # A new account, read from the store, on both paths.
        partners = snapshot.account_ids[:4]
        store.upsert_accounts(AccountColumns(["NEW-1"], [None], [{}], [{}]))
        store.upsert_transfers(
            TransferColumns(
                [f"T-NEW-{k}" for k in range(4)],
                ["NEW-1"] * 4,
                partners,
                [10.0] * 4,
                [1.7e9] * 4,
                [None] * 4,
                [None] * 4,
            )
        )
        center.center_only = True
        new = capped.score_new("NEW-1", store)
        center.center_only = False
        same(new, capped.score_new("NEW-1", store))
        assert any(r["code"].startswith("RELATION") for r in new.reasons)

        # Uncapped, the request-time score is the batch score.
        full = InductiveScorer.build(artifact, report.version, snapshot, fanouts=(10**6,))
        for i in rows:
            s = full.score(snapshot.account_ids[i])
            assert not s.sampled
            assert s.fraud_logit == pytest.approx(batch.fraud_logit[i], abs=1e-6)
            assert s.social_logit == pytest.approx(batch.social_logit[i], abs=1e-6)
        assert np.ptp(batch.fraud_logit[list(rows)]) > 1.0  # not one score for everyone
    finally:
        store.close()
