"""The credit profile reads the same from every backend: a model trained on the embedded
store gives identical profiles and batch outputs over a Neo4j store holding the same files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from creditgraph.config import CreditSettings
from creditgraph.ingest.csvfile import Kind
from creditgraph.services.credit import (
    credit_profile,
    load_credit_model,
    score_all_credit,
    train_credit_model,
)
from creditgraph.services.ingest import import_file
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import TrainingConfig

KINDS: tuple[Kind, ...] = ("accounts", "transfers", "links", "labels", "obligations")


@pytest.fixture(scope="module", params=["trees", "gnn"])
def reference(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, Path]:
    """Both social learners: the graph network reads two hops per request."""
    root = tmp_path_factory.mktemp("credit-ref")
    generate(1_200, 5, root / "net")
    store = EmbeddedStore(root / "ref.db")
    job = TrainingConfig()
    job = job.model_copy(
        update={"credit": job.credit.model_copy(update={"social_model": request.param})}
    )
    try:
        for kind in KINDS:
            import_file(store, kind, root / "net" / f"{kind}.csv")
        train_credit_model(store, root / "models", job, CreditSettings())
    finally:
        store.close()
    return root / "net", root / "models"


def test_profiles_match_the_embedded_reference(
    store: GraphStore, reference: tuple[Path, Path]
) -> None:
    net, models = reference
    for kind in KINDS:
        import_file(store, kind, net / f"{kind}.csv")
    model = load_credit_model(models)
    ref = EmbeddedStore(models.parent / "ref.db")
    try:
        settings = CreditSettings(social_policy="symmetric")
        mine = score_all_credit(store, model, settings)
        theirs = score_all_credit(ref, model, settings)
        assert mine.account_ids == theirs.account_ids
        np.testing.assert_allclose(mine.p_default, theirs.p_default, rtol=1e-9)
        np.testing.assert_array_equal(mine.credit_score, theirs.credit_score)
        for account in (mine.account_ids[3], mine.account_ids[500], mine.account_ids[-2]):
            assert credit_profile(store, model, account, settings) == credit_profile(
                ref, model, account, settings
            )
    finally:
        ref.close()
