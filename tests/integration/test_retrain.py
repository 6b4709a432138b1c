"""The retraining job and batch scoring on both store backends: train → gate → register →
score, on a small synthetic network imported through the normal CSV path.

The network (2,500 accounts, seed 7) has 746 labels (31 fraud); the test split holds 149
accounts with 6 fraud. Measured with ``FAST`` below, one thread: GNN test AUROC 0.99 and
AUPRC 0.92, a retraining job in about 4 s and scoring in 0.3 s on the embedded store. The
``WORSE`` job (one epoch, 4 hidden units) reaches AUPRC 0.34, far outside the gate's
tolerance. Thresholds below sit well under the measured values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
from sklearn.metrics import roc_auc_score

from creditgraph.errors import InvalidInput, ModelNotReady
from creditgraph.ingest.csvfile import KINDS
from creditgraph.ml.artifact import load_artifact
from creditgraph.ml.attribution import attribute
from creditgraph.ml.explain import REASON_CODES, Target, explain
from creditgraph.ml.train import FloatArray
from creditgraph.registry import ModelRegistry
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import promote_version, retrain
from creditgraph.services.scoring import score_all
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import (
    BaselineSection,
    CandidatesSection,
    ModelConfig,
    OptimConfig,
    TrainingConfig,
    load_training_config,
)

REPO = Path(__file__).resolve().parents[2]
FAST = TrainingConfig(
    optim=OptimConfig(max_epochs=80, patience=15), baseline=BaselineSection(max_rounds=200)
)
#: The relational GNN alone: for the checks of its own explanation paths.
GNN_ONLY = FAST.model_copy(
    update={"candidates": CandidatesSection(families=["gnn"], social_trees=False)}
)
WORSE = FAST.model_copy(
    update={
        "model": ModelConfig(hidden=4),
        "optim": OptimConfig(max_epochs=1),
        "candidates": CandidatesSection(families=["gnn"], social_trees=False),
    }
)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("net")
    generate(2_500, 7, out)
    return out


# One torch thread: the same seed gives the same scores only at the same thread count.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def load(store: GraphStore, network: Path) -> None:
    for kind in KINDS:
        import_file(store, kind, network / f"{kind}.csv", batch_size=5_000)


@pytest.fixture
def embedded(network: Path, tmp_path: Path) -> Iterator[EmbeddedStore]:
    """The network in an embedded store, for checks that do not depend on the backend."""
    store = EmbeddedStore(tmp_path / "db.sqlite")
    store.apply_schema()
    load(store, network)
    try:
        yield store
    finally:
        store.close()


def test_train_registers_a_champion_and_scoring_covers_every_account(
    store: GraphStore, network: Path, tmp_path: Path
) -> None:
    load(store, network)
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(ModelNotReady):
        score_all(store, registry)

    report = retrain(store, registry, FAST)
    assert (report.version, report.promoted, report.forced) == ("v0001", True, False)
    assert registry.champion_version() == "v0001"
    assert registry.history()[-1]["reason"] == "no champion yet"
    # Real learning, and every candidate measured on the very same test accounts.
    champion, baseline = report.metrics["champion"], report.metrics["baseline"]
    assert report.metrics[report.selected["fraud"]] == champion
    assert champion["auroc"] >= 0.9
    assert champion["auprc"] >= 0.5
    for family in ("gnn", "wavelet", "trees", "labels", "stacked", report.selected["social"]):
        m = report.metrics[family]
        assert (m["n"], m["positives"]) == (champion["n"], champion["positives"])
    record = registry.get("v0001")
    assert record.metrics["auprc"] == champion["auprc"]
    assert record.metrics["baseline_auprc"] == baseline["auprc"]
    assert record.data_summary["accounts"] == store.counts().accounts
    assert record.data_summary["sensitive_excluded"] == ["age_years"]
    assert "age_years" not in record.data_summary["features"]
    folder = registry.path("v0001")
    for plot in ("roc.png", "pr.png", "calibration.png"):
        assert (folder / plot).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    card = (folder / "model_card.md").read_text(encoding="utf-8")
    for section in ("## Data", "## Metrics", "## Intended use", "## Limitations", "## Fairness"):
        assert section in card
    for family in ("gnn", "wavelet", "trees", "labels", "stacked"):
        assert f"| {family}" in card
    assert f"| {report.selected['fraud']} **(champion)**" in card
    assert "![roc](roc.png)" in card

    out = tmp_path / "scores.csv"
    scored = score_all(store, registry, out=out, batch_size=1_000)
    assert scored.model_version == "v0001"
    assert scored.written == scored.accounts == store.counts().accounts
    stored = store.get_scores()
    assert len(stored) == scored.accounts
    for s in stored:
        assert s.model_version == "v0001"
        assert 0.0 <= s.fraud_probability <= 1.0
        assert 0.0 <= s.social_credit <= 100.0
        assert s.reasons
        assert {r["code"] for r in s.reasons} <= REASON_CODES
        assert not any(r["evidence"].get("feature") == "age_years" for r in s.reasons)
    # Accounts nobody labelled are scored like the rest, and against the planted truth
    # the scores rank the fraudsters among them.
    truth = json.loads((network / "ground_truth.json").read_text(encoding="utf-8"))
    fraudsters = set(truth["fraud_accounts"])
    snapshot = store.snapshot()
    unlabelled = {snapshot.account_ids[i] for i in np.flatnonzero(snapshot.labels < 0)}
    assert scored.unlabelled == len(unlabelled)
    never_labelled = [s for s in stored if s.account_id in unlabelled]
    assert (
        roc_auc_score(
            [s.account_id in fraudsters for s in never_labelled],
            [s.fraud_probability for s in never_labelled],
        )
        >= 0.9
    )

    table = pacsv.read_csv(out).to_pydict()
    assert {"account_id", "fraud_probability", "social_credit", "model_version"} <= set(table)
    assert table["account_id"] == [s.account_id for s in stored]
    assert table["fraud_probability"] == [s.fraud_probability for s in stored]
    assert set(table["model_version"]) == {"v0001"}

    # Same data and seed, a fresh registry: the same model, bit for bit, through the
    # artifact on disk and the whole scoring path.
    again = ModelRegistry(tmp_path / "again")
    retrain(store, again, FAST)
    score_all(store, again, out=tmp_path / "again.csv")
    repeat = pacsv.read_csv(tmp_path / "again.csv").to_pydict()
    assert repeat["fraud_probability"] == table["fraud_probability"]
    assert repeat["social_credit"] == table["social_credit"]


def test_batch_reasons_agree_with_the_on_demand_explanation(
    embedded: EmbeddedStore, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    retrain(embedded, registry, GNN_ONLY)
    artifact = load_artifact(registry.path("v0001"))
    features = artifact.features(embedded.snapshot())
    attribution = attribute(artifact.result, features)
    riskiest = int(np.argmax(artifact.result.score(features).fraud_logit))
    for account in (riskiest, 0, features.num_accounts // 2):
        targets: tuple[tuple[Target, FloatArray], ...] = (
            ("fraud", attribution.fraud_relations),
            ("social", attribution.social_relations),
        )
        for target, table in targets:
            on_demand = {
                r["evidence"]["relation"]: r["weight"]
                for r in explain(artifact.result, features, account, target=target)
                if r["code"].startswith("RELATION")
            }
            batch = {
                rel: table[account, k]
                for k, rel in enumerate(attribution.relations)
                if attribution.neighbours[account, k] > 0
            }
            assert batch == pytest.approx(on_demand, abs=1e-4)
    # Own-feature attributions differ from explain's only by echoes through neighbours:
    # the riskiest account's strongest batch feature is among explain's strongest three,
    # with the same sign.
    own = {
        r["evidence"]["feature"]: r["weight"]
        for r in explain(artifact.result, features, riskiest, top=3)
        if r["code"].startswith("FEATURE")
    }
    top = attribution.reasons([riskiest], top_features=1)[0][0]
    assert top["evidence"]["feature"] in own
    assert np.sign(top["weight"]) == np.sign(own[top["evidence"]["feature"]])


def test_gate_refuses_a_worse_challenger_unless_forced(
    store: GraphStore, network: Path, tmp_path: Path
) -> None:
    load(store, network)
    registry = ModelRegistry(tmp_path / "models")
    champion = retrain(store, registry, FAST)

    refused = retrain(store, registry, WORSE)
    assert (refused.version, refused.promoted, refused.forced) == ("v0002", False, False)
    assert not refused.gate.promote
    assert "worse than the champion" in refused.gate.reason
    assert "NOT promoted" in refused.outcome
    assert registry.champion_version() == "v0001"
    assert [r.version for r in registry.records()] == ["v0001", "v0002"]
    # The champion was re-scored from its artifact on the same test labels: exactly the
    # metric it was registered with.
    assert refused.champion_before is not None
    assert refused.champion_before.version == "v0001"
    assert refused.champion_before.metrics["auprc"] == champion.metrics["champion"]["auprc"]
    assert refused.gate.champion == champion.metrics["champion"]["auprc"]
    card = (refused.path / "model_card.md").read_text(encoding="utf-8")
    assert "- Promoted: no" in card
    assert "champion v0001" in card

    forced = retrain(store, registry, WORSE, force=True)
    assert (forced.version, forced.promoted, forced.forced) == ("v0003", True, True)
    assert "by force" in forced.outcome
    assert registry.champion_version() == "v0003"
    assert registry.history()[-1]["reason"].startswith("forced: gate refused")
    assert score_all(store, registry).model_version == "v0003"

    promote_version(registry, "v0001", reason="roll back the forced model")
    assert registry.champion_version() == "v0001"


def test_an_unreadable_champion_blocks_the_gate_but_not_force(
    embedded: EmbeddedStore, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    retrain(embedded, registry, WORSE)
    weights = registry.path("v0001") / "gnn-gnn.pt"
    weights.write_bytes(weights.read_bytes() + b"tampered")
    with pytest.raises(ModelNotReady, match="checksum"):
        score_all(embedded, registry)
    with pytest.raises(ModelNotReady, match="use force"):
        retrain(embedded, registry, WORSE)
    assert registry.champion_version() == "v0001"
    forced = retrain(embedded, registry, WORSE, force=True)
    assert (forced.promoted, forced.forced) == (True, True)
    assert "could not be evaluated" in forced.gate.reason
    assert registry.champion_version() == forced.version
    with pytest.raises(ModelNotReady):
        promote_version(registry, "v0001")
    assert registry.champion_version() == forced.version


def test_default_job_file_matches_the_built_in_defaults() -> None:
    config = load_training_config(REPO / "training" / "default.toml")
    assert config.description
    assert config.model_copy(update={"description": ""}) == TrainingConfig()
    assert config.sensitive == ["age_years"]


def test_every_shipped_job_file_loads() -> None:
    # A typo in a shipped job would only surface when a cron job runs it.
    for path in sorted((REPO / "training").glob("*.toml")):
        assert load_training_config(path).description, path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model]\nhiden = 64\n", "unknown key 'model.hiden'"),
        ("epochs = 3\n", "unknown key 'epochs'"),
        ("[gate]\nmetric = 'accuracy'\n", "'gate.metric'"),
        ("[split]\nval = 0.5\ntest = 0.5\n", "val + test must be below 1"),
        ("[model\n", "not a readable TOML file"),
    ],
)
def test_bad_job_files_are_refused_with_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "job.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"job\.toml") as err:
        load_training_config(path)
    assert message in str(err.value)


def test_a_missing_job_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        load_training_config(tmp_path / "nope.toml")
