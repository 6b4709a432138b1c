"""Inductive one-account scoring against batch scoring on a small synthetic network.

The network (2,500 accounts, seed 7, embedded store, one thread) and the champion are built
once per module. Measured with the default caps (15 then 10 neighbours per relation and
hop), numbers in the asserts' comments; bounds sit a little outside them:
- snapshot accounts (``score``), every other account: mean |dp| 0.0005, Spearman 0.9994;
- accounts held out of the snapshot and scored from the store (``score_new``), 10 rounds of
  30: mean |dp| 0.012, Spearman 0.935;
- new accounts copying an existing account's attributes and transfers, added to the store
  after the scorer was built: mean |dp| to the original's batch score 0.021.
The gap of the last two is mostly the approximated transfer timing features and the
neighbours' snapshot rows, which lack the new ties.
Latency is measured by bench/train.py, never asserted here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from creditgraph.domain import AccountColumns, LinkColumns, Snapshot, TransferColumns
from creditgraph.errors import NotFound
from creditgraph.ingest.csvfile import KINDS, read_table
from creditgraph.ingest.records import parse
from creditgraph.ml.artifact import ModelArtifact, load_artifact
from creditgraph.ml.explain import explain
from creditgraph.ml.features import FeatureSet
from creditgraph.ml.inductive import DEFAULT_FANOUTS
from creditgraph.ml.scorer import INDUCTIVE_REASON_CODES, RECOMPUTED, UNKNOWN_ACCOUNT
from creditgraph.ml.train import Scores
from creditgraph.registry import ModelRegistry
from creditgraph.services.inductive import InductiveScore, InductiveScorer, load_inductive_scorer
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import (
    BaselineSection,
    CandidatesSection,
    OptimConfig,
    TrainingConfig,
)

FAST = TrainingConfig(
    optim=OptimConfig(max_epochs=80, patience=15),
    baseline=BaselineSection(enabled=False),
    # The relational GNN as champion: the request-time path these tests exercise.
    candidates=CandidatesSection(families=["gnn"]),
)
UNCAPPED = (10**6,)


@dataclass
class World:
    network: Path
    store: EmbeddedStore
    registry: ModelRegistry
    artifact: ModelArtifact
    snapshot: Snapshot
    features: FeatureSet
    batch: Scores
    fraudsters: set[str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("inductive")
    generate(2_500, 7, root / "net")
    store = EmbeddedStore(root / "db.sqlite")
    store.apply_schema()
    for kind in KINDS:
        import_file(store, kind, root / "net" / f"{kind}.csv", batch_size=5_000)
    registry = ModelRegistry(root / "models")
    retrain(store, registry, FAST)
    artifact = load_artifact(registry.path("v0001"))
    snapshot = store.snapshot()
    features = artifact.features(snapshot)
    truth = json.loads((root / "net" / "ground_truth.json").read_text(encoding="utf-8"))
    try:
        yield World(
            root / "net",
            store,
            registry,
            artifact,
            snapshot,
            features,
            artifact.score(features),
            set(truth["fraud_accounts"]),
        )
    finally:
        store.close()
        torch.set_num_threads(threads)


def scorer(
    world: World, snapshot: Snapshot | None = None, fanouts: tuple[int, ...] = DEFAULT_FANOUTS
) -> InductiveScorer:
    return InductiveScorer.build(
        world.artifact, "v0001", snapshot or world.snapshot, fanouts=fanouts
    )


def check_reasons(score: InductiveScore) -> None:
    assert score.reasons
    for r in score.reasons:
        assert set(r) == {"code", "message", "weight", "evidence"}
        assert r["code"] in INDUCTIVE_REASON_CODES
        assert np.isfinite(r["weight"])
    json.dumps(score.reasons)
    assert not any(r["evidence"].get("feature") == "age_years" for r in score.reasons)


def test_uncapped_scores_equal_the_batch_scores(world: World) -> None:
    full = scorer(world, fanouts=UNCAPPED)
    degree = np.bincount(
        np.concatenate([ei[1].numpy() for ei in world.features.edge_index.values()]),
        minlength=world.snapshot.num_accounts,
    )
    rows = [*range(0, world.snapshot.num_accounts, 10), int(np.argmax(degree))]
    for i in rows:
        s = full.score(world.snapshot.account_ids[i])
        assert not s.sampled
        assert not s.inductive
        assert s.fraud_logit == pytest.approx(world.batch.fraud_logit[i], abs=1e-4)
        assert s.social_logit == pytest.approx(world.batch.social_logit[i], abs=1e-4)
        assert s.fraud_probability == pytest.approx(world.batch.fraud_probability[i], abs=1e-5)
        assert s.social_credit == pytest.approx(world.batch.social_credit[i], abs=1e-3)


def test_reasons_match_the_on_demand_explanation_when_nothing_is_capped(world: World) -> None:
    full = scorer(world, fanouts=UNCAPPED)
    riskiest = int(np.argmax(world.batch.fraud_logit))
    s = full.score(world.snapshot.account_ids[riskiest])
    check_reasons(s)
    on_demand = explain(world.artifact.result, world.features, riskiest, top=3)
    features = {
        r["evidence"]["feature"]: r["weight"] for r in on_demand if "feature" in r["evidence"]
    }
    mine = {r["evidence"]["feature"]: r["weight"] for r in s.reasons if "feature" in r["evidence"]}
    assert mine == pytest.approx(features, abs=1e-4)
    ties = {
        r["evidence"]["account_id"]: r["weight"] for r in on_demand if r["code"].startswith("NEIGH")
    }
    mine = {
        r["evidence"]["account_id"]: r["weight"] for r in s.reasons if r["code"].startswith("NEIGH")
    }
    assert mine == pytest.approx(ties, abs=1e-4)


def test_capped_scores_stay_close_to_the_batch(world: World) -> None:
    capped = scorer(world)
    rows = np.arange(0, world.snapshot.num_accounts, 2)
    scores = [capped.score(world.snapshot.account_ids[i]) for i in rows]
    p = np.array([s.fraud_probability for s in scores])
    credit = np.array([s.social_credit for s in scores])
    dp = np.abs(p - world.batch.fraud_probability[rows])
    # Measured: mean |dp| 0.0005, p99 0.009, max 0.039; Spearman 0.9994 (probability) and
    # 0.992 (social credit, mean |d| 0.05 points).
    assert dp.mean() <= 0.002
    assert np.quantile(dp, 0.99) <= 0.03
    assert spearmanr(p, world.batch.fraud_probability[rows])[0] >= 0.998
    assert np.abs(credit - world.batch.social_credit[rows]).mean() <= 0.2
    assert spearmanr(credit, world.batch.social_credit[rows])[0] >= 0.98
    # Deterministic: the same scorer, and a scorer built again, give the same numbers.
    again = scorer(world)
    for i, s in list(zip(rows, scores, strict=True))[:50]:
        assert again.score(world.snapshot.account_ids[i]) == capped.score(s.account_id) == s


def without(snapshot: Snapshot, drop: np.ndarray) -> Snapshot:
    """``snapshot`` as if the accounts at ``drop`` (and their edges) had not existed yet."""
    keep = np.ones(snapshot.num_accounts, dtype=bool)
    keep[drop] = False
    new = np.cumsum(keep) - 1
    edges = {}
    for rel, es in snapshot.edges.items():
        m = keep[es.src] & keep[es.dst]
        edges[rel] = replace(
            es,
            src=new[es.src[m]],
            dst=new[es.dst[m]],
            count=None if es.count is None else es.count[m],
            total_amount=None if es.total_amount is None else es.total_amount[m],
            first_ts=None if es.first_ts is None else es.first_ts[m],
            last_ts=None if es.last_ts is None else es.last_ts[m],
        )
    return Snapshot(
        [a for a, k in zip(snapshot.account_ids, keep, strict=True) if k],
        snapshot.feature_names,
        snapshot.features[keep],
        snapshot.created_at[keep],
        snapshot.labels[keep],
        edges,
    )


def test_held_out_accounts_scored_from_the_store_stay_close(world: World) -> None:
    rng = np.random.default_rng(1)
    held = rng.permutation(world.snapshot.num_accounts)[:300]
    p, credit = [], []
    for chunk in np.split(held, 10):
        partial = scorer(world, without(world.snapshot, np.sort(chunk)))
        for i in chunk:
            s = partial.score_new(world.snapshot.account_ids[i], world.store)
            assert s.inductive
            check_reasons(s)
            p.append(s.fraud_probability)
            credit.append(s.social_credit)
    bp, bc = world.batch.fraud_probability[held], world.batch.social_credit[held]
    dp = np.abs(np.array(p) - bp)
    # Measured: mean |dp| 0.012, p90 0.017, max 0.32; Spearman 0.935; social credit mean
    # |d| 1.2 points, Spearman 0.948; AUROC against the planted truth 0.985 (batch 0.981).
    assert dp.mean() <= 0.025
    assert np.quantile(dp, 0.9) <= 0.04
    assert spearmanr(p, bp)[0] >= 0.88
    assert np.abs(np.array(credit) - bc).mean() <= 2.5
    assert spearmanr(credit, bc)[0] >= 0.9
    truth = [world.snapshot.account_ids[i] in world.fraudsters for i in held]
    assert roc_auc_score(truth, p) >= 0.95


@pytest.fixture
def fresh_store(world: World, tmp_path: Path) -> Iterator[EmbeddedStore]:
    """The same network in a store of its own, for tests that add accounts to it."""
    store = EmbeddedStore(tmp_path / "db.sqlite")
    store.apply_schema()
    for kind in KINDS:
        import_file(store, kind, world.network / f"{kind}.csv", batch_size=5_000)
    try:
        yield store
    finally:
        store.close()


def add_clone(store: EmbeddedStore, transfers: TransferColumns, original: str, clone: str) -> None:
    """``clone``: a new account with ``original``'s attributes, transfers and links."""
    account = store.get_account(original)
    store.upsert_accounts(
        AccountColumns([clone], [account.created_at], [account.features], [account.properties])
    )
    mine = [
        k
        for k, ends in enumerate(zip(transfers.src, transfers.dst, strict=True))
        if original in ends
    ]

    def swap(a: str) -> str:
        return clone if a == original else a

    store.upsert_transfers(
        TransferColumns(
            [f"{clone}-{transfers.transfer_id[k]}" for k in mine],
            [swap(transfers.src[k]) for k in mine],
            [swap(transfers.dst[k]) for k in mine],
            [transfers.amount[k] for k in mine],
            [transfers.timestamp[k] for k in mine],
            [None] * len(mine),
            [None] * len(mine),
        )
    )
    links = [e for e in store.adjacent([original]) if not e.directed]
    pairs = [sorted((clone, e.dst if e.src == original else e.src)) for e in links]
    store.upsert_links(
        LinkColumns(
            [a for a, _ in pairs],
            [b for _, b in pairs],
            [e.relation for e in links],
            [None] * len(links),
        )
    )


def test_new_accounts_added_after_the_snapshot_score_like_their_originals(
    world: World, fresh_store: EmbeddedStore
) -> None:
    fixed = load_inductive_scorer(fresh_store, world.registry)
    assert fixed.num_accounts == world.snapshot.num_accounts
    transfers = parse(read_table(world.network / "transfers.csv", "transfers")).batch
    assert isinstance(transfers, TransferColumns)
    rng = np.random.default_rng(2)
    ids = world.snapshot.account_ids
    fraud = [a for a in ids if a in world.fraudsters]
    legit = [a for a in ids if a not in world.fraudsters]
    originals = [*rng.choice(fraud, 15, replace=False), *rng.choice(legit, 15, replace=False)]
    for a in originals:
        add_clone(fresh_store, transfers, a, f"NEW-{a}")
    scores = [fixed.score_new(f"NEW-{a}", fresh_store) for a in originals]
    for s in scores:
        assert s.inductive
        assert not fixed.knows(s.account_id)
        assert s.model_version == "v0001"
        assert 0.0 <= s.fraud_probability <= 1.0
        assert 0.0 <= s.social_credit <= 100.0
        check_reasons(s)
        assert RECOMPUTED in {r["code"] for r in s.reasons}
    p = np.array([s.fraud_probability for s in scores])
    index = {a: i for i, a in enumerate(ids)}
    batch = world.batch.fraud_probability[[index[a] for a in originals]]
    # Measured: mean |p(clone) - p(original)| 0.021, max 0.27; the clones of fraudsters
    # outrank the clones of legitimate accounts with AUROC 0.996 (the originals' too).
    assert np.abs(p - batch).mean() <= 0.05
    assert roc_auc_score([1] * 15 + [0] * 15, p) >= 0.95


def test_accounts_without_edges_or_unknown_to_the_store_are_scored_from_priors(
    world: World, fresh_store: EmbeddedStore
) -> None:
    fixed = scorer(world)
    lonely = world.store.get_account(world.snapshot.account_ids[0])
    fresh_store.upsert_accounts(
        AccountColumns(["LONELY"], [lonely.created_at], [lonely.features], [{}])
    )
    alone = fixed.score_new("LONELY", fresh_store)
    unknown = fixed.score_new("NO-SUCH-ACCOUNT", fresh_store)
    for s in (alone, unknown):
        assert s.inductive
        assert 0.0 <= s.fraud_probability <= 1.0
        assert 0.0 <= s.social_credit <= 100.0
        check_reasons(s)
        assert "NO_RELATIONSHIPS" in {r["code"] for r in s.reasons}
    assert UNKNOWN_ACCOUNT in {r["code"] for r in unknown.reasons}
    assert UNKNOWN_ACCOUNT not in {r["code"] for r in alone.reasons}
    with pytest.raises(NotFound):
        fixed.score("NO-SUCH-ACCOUNT")
