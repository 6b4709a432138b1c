"""Hot reload onto a champion that is not a GNN: the running API trains nothing, a job
registers a tree-family champion, ``/v1/admin/reload`` swaps it in, and risk decisions for
known and never-seen accounts come from it, with reasons that name relations."""

from __future__ import annotations

import torch

from creditgraph.config import Settings
from creditgraph.registry import ModelRegistry
from creditgraph.services.retrain import retrain
from creditgraph.services.risk import RiskEngine
from creditgraph.store.factory import open_store
from creditgraph.training_config import BaselineSection, CandidatesSection, TrainingConfig
from tests.apitools import api_client

RISK = "/v1/risk/transfer"
TREES = TrainingConfig(
    baseline=BaselineSection(max_rounds=80, early_stopping_rounds=20),
    candidates=CandidatesSection(families=["trees", "labels"], social_trees=True),
)


def test_reload_serves_a_tree_champion(api_settings: Settings) -> None:
    with api_client(api_settings) as api:
        before = api.post(RISK, "payment", json={"src": "A0000001", "dst": "A0000002", "amount": 5})
        assert before.json()["model_version"] == "v0001"
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        store = open_store(api_settings)
        try:
            report = retrain(store, ModelRegistry(api_settings.models_dir), TREES, force=True)
        finally:
            store.close()
            torch.set_num_threads(threads)
        assert report.selected["fraud"] in ("trees", "labels")
        r = api.post("/v1/admin/reload", "admin")
        assert r.status_code == 200, r.text
        engine = api.client.app.state.api.serving.engine  # type: ignore[attr-defined]
        assert isinstance(engine, RiskEngine)
        assert engine.scorer.model.served_center is not None  # the any-champion path
        known = api.post(RISK, "payment", json={"src": "A0000001", "dst": "A0000002", "amount": 5})
        assert known.status_code == 200
        assert known.json()["model_version"] == report.version
        new = api.post(RISK, "payment", json={"src": "A0000001", "dst": "brand-new", "amount": 50})
        assert new.status_code == 200
        receiver = next(x for x in new.json()["reasons"] if x["code"] == "RECEIVER_RISK")
        assert receiver["evidence"]["source"] == "inductive"
        score = engine.scorer.score("A0000003")
        assert any(r["code"].startswith("RELATION") for r in score.reasons)
        assert 0.0 <= score.fraud_probability <= 1.0
