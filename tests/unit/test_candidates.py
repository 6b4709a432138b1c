"""Label-aware neighbour columns and out-of-fold GNN logits: no label reaches its own row.

The graphs are small and random (a few hundred accounts, two relations, one directed); the
checks flip ONE label at a time and recompute, so any path from a label to its own account's
input would show up as a changed value.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from creditgraph.domain import EdgeSet, Snapshot
from creditgraph.ml.artifact import load_artifact, save_artifact
from creditgraph.ml.candidates import (
    STACK_MEMBERS,
    Blend,
    Candidate,
    CandidatesConfig,
    _out_of_fold,
    inner_split,
    select,
    train_candidates,
)
from creditgraph.ml.features import FeatureSet, Standardizer, build_features
from creditgraph.ml.neighbours import LABEL_COLUMNS, assign_folds, label_features
from creditgraph.ml.reasons import served_attribution
from creditgraph.ml.train import Split, TrainConfig, stratified_split
from creditgraph.ml.trees import TreeConfig, design, known_labels

N = 240


def random_snapshot(seed: int, n: int = N) -> Snapshot:
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n) < 0.25, 1, 0).astype(np.int8)
    labels[rng.random(n) < 0.2] = -1
    x = rng.normal(size=(n, 3)) + labels[:, None].clip(0) * 0.8
    a, b = rng.integers(0, n, 3 * n), rng.integers(0, n, 3 * n)
    keep = a < b
    pairs = np.unique(np.stack([a[keep], b[keep]], 1), axis=0)
    s, d = rng.integers(0, n, 2 * n), rng.integers(0, n, 2 * n)
    ordered = np.unique(np.stack([s, d], 1), axis=0)
    ordered = ordered[ordered[:, 0] != ordered[:, 1]]
    edges = {
        "FRIEND": EdgeSet("FRIEND", False, pairs[:, 0], pairs[:, 1]),
        "TRANSFER": EdgeSet(
            "TRANSFER",
            True,
            ordered[:, 0],
            ordered[:, 1],
            count=np.ones(len(ordered), dtype=np.int64),
            total_amount=rng.uniform(1, 100, len(ordered)),
            first_ts=np.full(len(ordered), 1.0e9),
            last_ts=np.full(len(ordered), 1.1e9),
        ),
    }
    return Snapshot(
        account_ids=[f"a{i:04d}" for i in range(n)],
        feature_names=["f0", "f1", "f2"],
        features=x,
        created_at=np.full(n, 0.9e9),
        labels=labels,
        edges=edges,
    )


@pytest.fixture(scope="module")
def world() -> tuple[Snapshot, FeatureSet, Split]:
    snap = random_snapshot(3)
    return snap, build_features(snap, []), stratified_split(snap.labels, seed=0)


def test_label_columns_of_an_account_never_depend_on_its_own_label(
    world: tuple[Snapshot, FeatureSet, Split],
) -> None:
    snap, fs, split = world
    folds = 5
    fold = assign_folds(split.train, fs.num_accounts, folds, seed=0)
    known = known_labels(snap.labels, split.train)
    base, names = label_features(fs, known, fold, folds)
    assert len(names) == len(LABEL_COLUMNS) * len(fs.relations)
    # The columns do carry labels: flipping every training label changes many rows.
    flipped_all = known.copy()
    flipped_all[split.train] = 1 - flipped_all[split.train]
    assert (label_features(fs, flipped_all, fold, folds)[0] != base).any(axis=1).sum() > N // 4
    changed_elsewhere = 0
    for i in split.train[:40]:
        flipped = known.copy()
        flipped[i] = 1 - flipped[i]
        after, _ = label_features(fs, flipped, fold, folds)
        np.testing.assert_array_equal(after[i], base[i])
        changed_elsewhere += int((after != base).any(axis=1).sum())
    # ... and a training label does reach other accounts (else the test proves nothing).
    assert changed_elsewhere > 0


def test_scoring_time_label_columns_exclude_the_accounts_own_label(
    world: tuple[Snapshot, FeatureSet, Split],
) -> None:
    """At scoring every account sees every training label (fold -1), its own included in
    ``known``: the one-hop sums have no self-loop and the two-hop sums subtract the paths
    back to the account, so its own row still does not move."""
    snap, fs, split = world
    known = known_labels(snap.labels, split.train)
    nobody = np.full(fs.num_accounts, -1, dtype=np.int64)
    base, _ = label_features(fs, known, nobody, 1)
    for i in split.train[:40]:
        flipped = known.copy()
        flipped[i] = 1 - flipped[i]
        np.testing.assert_array_equal(label_features(fs, flipped, nobody, 1)[0][i], base[i])


def test_validation_and_test_labels_never_enter_label_columns(
    world: tuple[Snapshot, FeatureSet, Split],
) -> None:
    snap, fs, split = world
    fold = assign_folds(split.train, fs.num_accounts, 5, seed=0)
    base, _ = label_features(fs, known_labels(snap.labels, split.train), fold, 5)
    other = snap.labels.copy()
    held_out = np.concatenate([split.val, split.test])
    other[held_out] = 1 - other[held_out]
    after, _ = label_features(fs, known_labels(other, split.train), fold, 5)
    np.testing.assert_array_equal(after, base)


def test_out_of_fold_gnn_logit_of_a_training_account_ignores_its_label(
    world: tuple[Snapshot, FeatureSet, Split],
) -> None:
    snap, fs, split = world
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit_idx, stop_idx = inner_split(snap.labels, split.train, 0.2, seed=0)
        inner = Split(train=fit_idx, val=stop_idx, test=split.test)
        cfg = CandidatesConfig(stack_folds=2, gnn=TrainConfig(hidden=8, max_epochs=8, patience=8))
        base = _out_of_fold(fs, snap.labels, inner, cfg, {}, lambda _: None)
        i, j = int(fit_idx[0]), int(fit_idx[-1])
        flipped = snap.labels.copy()
        flipped[[i, j]] = 1 - flipped[[i, j]]
        after = _out_of_fold(fs, flipped, inner, cfg, {}, lambda _: None)
    finally:
        torch.set_num_threads(threads)
    fold = assign_folds(fit_idx, fs.num_accounts, 2, cfg.trees.seed + 1)
    # An account's own column comes from the fold model that never saw its label ...
    for k in (i, j):
        assert after[k] == base[k]
    # ... while the flipped labels do change the other fold's model (so the test can fail).
    other = fold == 1 - fold[i]
    assert not np.array_equal(after[other], base[other])


def test_selection_uses_validation_and_breaks_ties_by_auroc_then_cost() -> None:
    from creditgraph.ml.calibrate import Calibrator

    cal = Calibrator("platt", {"a": [1.0], "b": [0.0]})

    def cand(name: str, auprc: float, auroc: float, seconds: float) -> Candidate:
        c = Candidate(name, np.zeros(1), cal, seconds)
        c.val = {"auprc": auprc, "auroc": auroc}
        # Test metrics that would choose differently: selection must not read them.
        c.test = {"auprc": 1.0 - auprc, "auroc": 1.0 - auroc}
        return c

    a, b, c, d = (
        cand("a", 0.5, 0.9, 10.0),
        cand("b", 0.6, 0.8, 10.0),
        cand("c", 0.6, 0.85, 50.0),
        cand("d", 0.6, 0.85, 5.0),
    )
    assert select([a, b]).name == "b"
    assert select([b, c]).name == "c"
    assert select([c, d]).name == "d"


def test_selection_inside_the_validation_noise_band_prefers_the_blend_but_not_beyond_it() -> None:
    from creditgraph.ml.calibrate import Calibrator
    from creditgraph.ml.candidates import measure

    cal = Calibrator("platt", {"a": [1.0], "b": [0.0]})
    rng = np.random.default_rng(0)
    y = np.zeros(2000, dtype=np.int8)
    y[:20] = 1  # twenty validation frauds: a noisy AUPRC
    val = np.arange(len(y), dtype=np.int64)

    def cand(name: str, logit: npt.NDArray[np.float64], seconds: float) -> Candidate:
        c = Candidate(name, logit, cal, seconds)
        c.val = measure(y, logit, cal, 0.05)
        return c

    # Two models that differ in one fraud's rank only: the one ranking it higher leads
    # on validation, but only in resamples that draw that fraud.
    lead = 2.0 * y + rng.normal(0.0, 1.0, len(y))
    other = lead.copy()
    other[int(np.argsort(lead[:20])[10])] -= 0.5
    lucky, blend = cand("labels", lead, 3.0), cand("stacked", other, 30.0)
    assert select([blend, lucky]).name == "labels"  # no bootstrap: the raw order
    assert select([blend, lucky], y, val).name == "stacked"
    assert lucky.val["level_share"] == 1.0
    assert blend.val["level_share"] >= 0.1
    # A candidate that is better beyond the noise wins whatever the preference.
    sharp = cand("gnn", 4.0 * y + rng.normal(0.0, 0.3, len(y)), 100.0)
    assert select([blend, sharp], y, val).name == "gnn"
    assert blend.val["level_share"] < 0.1


def test_level_social_candidates_are_chosen_by_a_fixed_order_not_a_measured_time() -> None:
    from creditgraph.ml.calibrate import Calibrator
    from creditgraph.ml.candidates import measure

    cal = Calibrator("platt", {"a": [1.0], "b": [0.0]})
    rng = np.random.default_rng(1)
    y = np.zeros(1000, dtype=np.int8)
    y[:15] = 1
    val = np.arange(len(y), dtype=np.int64)
    logit = 2.0 * y + rng.normal(0.0, 1.0, len(y))

    def cand(name: str, seconds: float) -> Candidate:
        c = Candidate(name, logit.copy(), cal, seconds, social=True)
        c.val = measure(y, logit, cal, 0.05)
        return c

    # The same scores: level. The trees took longer this time (a busy machine, a seed bag),
    # yet the choice is the one the same data and seed always make.
    pool = [cand("gnn:social", 1.0), cand("wavelet:social", 0.5), cand("social_trees", 3.0)]
    assert select(pool, y, val).name == "social_trees"
    assert select(pool[:2], y, val).name == "gnn:social"


def test_every_family_trains_and_the_served_model_reproduces_the_selected_scores(
    world: tuple[Snapshot, FeatureSet, Split], tmp_path: Path
) -> None:
    snap, fs, split = world
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = CandidatesConfig(
            families=("gnn", "wavelet", "trees", "labels", "stacked"),
            stack_folds=2,
            gnn=TrainConfig(hidden=8, max_epochs=10, patience=10),
            wavelet=TrainConfig(architecture="wavelet", hidden=8, max_epochs=10, patience=10),
            trees=TreeConfig(max_rounds=30, early_stopping_rounds=10),
        )
        run = train_candidates(fs, snap.labels, split, cfg)
        scores = run.served.score(fs)
        # Every family can be served, not only the one selected here.
        rest = np.setdiff1d(np.arange(fs.num_accounts), split.train)
        for c in run.candidates:
            fraud, social = (run.champion, c.name) if c.social else (c.name, run.social)
            served = run.served_as(fraud, social).score(fs)
            logit = served.social_logit if c.social else served.fraud_logit
            np.testing.assert_array_equal(logit[rest], c.logit[rest])
            if c.social or c.name in STACK_MEMBERS:
                continue
            # Saved and loaded, the version scores the same; reasons name relations.
            folder = tmp_path / c.name
            folder.mkdir()
            save_artifact(folder, run.served_as(fraud, social), [])
            loaded = load_artifact(folder).score(fs)
            np.testing.assert_array_equal(loaded.fraud_logit, served.fraud_logit)
            np.testing.assert_array_equal(loaded.social_credit, served.social_credit)
            reasons = served_attribution(run.served_as(fraud, social), fs).reasons(range(20))
            codes = {r["code"] for rs in reasons for r in rs}
            assert codes & {"RELATION_RAISES_RISK", "RELATION_LOWERS_RISK"}
            assert codes & {"FEATURE_RAISES_RISK", "FEATURE_LOWERS_RISK"}
    finally:
        torch.set_num_threads(threads)
    names = {c.name for c in run.candidates}
    assert {"gnn", "wavelet", "trees", "labels", "stacked", "social_trees", *STACK_MEMBERS} <= names
    champion = run.by_name(run.champion)
    assert not champion.social
    assert run.by_name(run.social).social
    # Outside training the served model computes exactly what selection measured (training
    # rows were measured with out-of-fold columns, which serving has no use for).
    served_social = run.by_name(run.social)
    np.testing.assert_array_equal(scores.fraud_logit[rest], champion.logit[rest])
    np.testing.assert_array_equal(scores.social_logit[rest], served_social.logit[rest])
    assert np.all((scores.fraud_probability >= 0) & (scores.fraud_probability <= 1))
    assert np.all((scores.social_credit >= 0) & (scores.social_credit <= 100))


def test_blend_standardises_members_over_all_accounts() -> None:
    logits = {"a": np.array([0.0, 2.0, 4.0]), "b": np.array([10.0, 10.0, 13.0])}
    blend = Blend.fit(["a", "b"], logits)
    out = blend(logits)
    assert out.shape == (3,)
    assert np.argmax(out) == 2
    np.testing.assert_allclose(out.mean(), 0.0, atol=1e-12)


def test_social_trees_read_relationships_only(world: tuple[Snapshot, FeatureSet, Split]) -> None:
    """The social-credit trees never see the account itself: changing its own features
    leaves its row unchanged (no own columns, and no two-hop aggregate that would echo it
    back through a neighbour), while a neighbour's change does move it."""
    _, fs, _ = world
    std = Standardizer.fit(fs)
    base, names = design(fs, std, "social_trees")
    assert not set(std.output_names) & set(names)
    assert not any(":mean2:" in n or ":max2:" in n for n in names)
    i = int(fs.edge_index["FRIEND"][1][0])
    neighbour = int(fs.edge_index["FRIEND"][0][0])
    x = fs.x.copy()
    x[i] += 5.0
    after, _ = design(dataclasses.replace(fs, x=x), std, "social_trees")
    np.testing.assert_array_equal(after[i], base[i])
    x = fs.x.copy()
    x[neighbour] += 5.0
    moved, _ = design(dataclasses.replace(fs, x=x), std, "social_trees")
    assert (moved[i] != base[i]).any()
