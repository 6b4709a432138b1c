"""Seed-bagged tree boosters merged into one booster (``ml.trees.fit``, ``merge_boosters``).

The merged booster must BE the mean of its members for everything that reads a booster: the
raw margin, TreeSHAP, leaf indices (path attribution, ``FastRow``) and the saved text model.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pytest
import torch

from creditgraph.ml.artifact import load_artifact, save_artifact
from creditgraph.ml.candidates import CandidatesConfig, train_candidates
from creditgraph.ml.fast_row import FastRow
from creditgraph.ml.features import build_features
from creditgraph.ml.pathattr import leaf_table, path_contributions
from creditgraph.ml.train import stratified_split
from creditgraph.ml.trees import TreeConfig, fit, fit_one, merge_boosters
from tests.unit.test_candidates import random_snapshot

NAMES = [f"c{j}" for j in range(6)]
Data = tuple[
    npt.NDArray[np.float32], npt.NDArray[np.int8], npt.NDArray[np.int64], npt.NDArray[np.int64]
]


@pytest.fixture(scope="module")
def data() -> Data:
    rng = np.random.default_rng(11)
    n = 1500
    x = rng.normal(size=(n, len(NAMES))).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take the default branch
    signal = np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2])
    y = (signal + rng.normal(size=n) > 1.0).astype(np.int8)
    order = rng.permutation(n)
    return x, y, np.sort(order[:1000]), np.sort(order[1000:])


CFG = TreeConfig(max_rounds=120, early_stopping_rounds=20, bag=4)


def _members(data: Data, cfg: TreeConfig) -> list[lgb.Booster]:
    x, y, train, val = data
    return [fit_one(x, y, train, val, NAMES, cfg, cfg.seed + k) for k in range(cfg.bag)]


def test_merged_raw_margin_is_the_mean_of_the_members(data: Data) -> None:
    x = data[0]
    merged, rounds = fit(*data, NAMES, CFG)
    members = _members(data, CFG)
    # Seeds seed + k, deterministic: the members are refitted identically.
    assert rounds == [m.best_iteration for m in members]
    assert len({m.model_to_string() for m in members}) == CFG.bag  # the seeds differ
    assert merged.num_trees() == sum(rounds)
    mean = np.mean([m.predict(x, raw_score=True) for m in members], axis=0)
    np.testing.assert_allclose(merged.predict(x, raw_score=True), mean, rtol=0, atol=1e-12)
    # Probabilities are the sigmoid of the mean margin (not the mean of probabilities).
    np.testing.assert_allclose(merged.predict(x), 1.0 / (1.0 + np.exp(-mean)), atol=1e-12)
    rng = np.random.default_rng(5)
    fresh = rng.normal(scale=2.0, size=(300, len(NAMES))).astype(np.float32)
    fresh_mean = np.mean([m.predict(fresh, raw_score=True) for m in members], axis=0)
    np.testing.assert_allclose(merged.predict(fresh, raw_score=True), fresh_mean, atol=1e-12)


def test_treeshap_of_the_merged_booster_adds_up_and_is_the_members_mean(data: Data) -> None:
    x = data[0]
    merged, _ = fit(*data, NAMES, CFG)
    contrib = np.asarray(merged.predict(x, pred_contrib=True))
    raw = merged.predict(x, raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, atol=1e-10)
    mean = np.mean([m.predict(x, pred_contrib=True) for m in _members(data, CFG)], axis=0)
    np.testing.assert_allclose(contrib, mean, atol=1e-10)
    # The single-row C path reads the same booster.
    row = FastRow(merged, len(NAMES), contrib=True)
    np.testing.assert_allclose(row(x[7].astype(np.float64)), contrib[7], atol=1e-12)


def test_path_attribution_and_leaves_of_the_merged_booster(data: Data) -> None:
    x = data[0]
    merged, rounds = fit(*data, NAMES, CFG)
    table = leaf_table(merged, np.array([0, 0, 1, 1, 2, 2]), 3)
    contrib, raw = path_contributions(merged, table, x, threads=1)
    expected = merged.predict(x, raw_score=True)
    np.testing.assert_allclose(raw, expected, atol=1e-10)
    np.testing.assert_allclose(contrib.sum(axis=1) + table.expected, expected, atol=1e-10)
    shap = np.asarray(merged.predict(x, pred_contrib=True))
    np.testing.assert_allclose(table.expected, shap[0, -1], atol=1e-10)
    leaves = FastRow(merged, len(NAMES), leaves=True)(x[3].astype(np.float64))
    assert len(leaves) == sum(rounds)
    np.testing.assert_array_equal(leaves, merged.predict(x[3:4], pred_leaf=True)[0])


def test_bag_of_one_is_the_single_booster_of_before(data: Data) -> None:
    one = TreeConfig(max_rounds=120, early_stopping_rounds=20, bag=1, seed=3)
    booster, rounds = fit(*data, NAMES, one)
    single = fit_one(*data, NAMES, one, one.seed)
    assert rounds == [single.best_iteration]
    assert booster.best_iteration == single.best_iteration  # not a merged copy
    assert booster.model_to_string() == single.model_to_string()
    np.testing.assert_array_equal(
        booster.predict(data[0], raw_score=True), single.predict(data[0], raw_score=True)
    )


def test_merging_refuses_what_it_cannot_average(data: Data) -> None:
    x, y, train, val = data
    with pytest.raises(ValueError, match="no booster"):
        merge_boosters([])
    with pytest.raises(ValueError, match="at least 1"):
        fit(*data, NAMES, TreeConfig(bag=0))
    other = fit_one(x[:, :5], y, train, val, NAMES[:5], CFG, 0)
    with pytest.raises(ValueError, match="differ"):
        merge_boosters([fit_one(x, y, train, val, NAMES, CFG, 0), other])


def test_a_saved_bagged_tree_model_scores_identically(tmp_path: Path) -> None:
    snap = random_snapshot(4)
    fs = build_features(snap, [])
    split = stratified_split(snap.labels, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = CandidatesConfig(
            families=("trees", "labels"),
            trees=TreeConfig(max_rounds=40, early_stopping_rounds=10, bag=3),
        )
        run = train_candidates(fs, snap.labels, split, cfg)
    finally:
        torch.set_num_threads(threads)
    for family, model in run.full.trees.items():
        assert model.bag == 3, family
        assert model.best_round == sum(model.member_rounds) == model.booster.num_trees()
    rest = np.setdiff1d(np.arange(fs.num_accounts), split.train)
    for name in ("trees", "labels"):
        served = run.served_as(name, run.social)
        folder = tmp_path / name
        folder.mkdir()
        save_artifact(folder, served, [])
        loaded = load_artifact(folder)
        before, after = served.score(fs), loaded.score(fs)
        np.testing.assert_array_equal(after.fraud_logit, before.fraud_logit)
        np.testing.assert_array_equal(after.fraud_probability, before.fraud_probability)
        np.testing.assert_array_equal(after.social_credit, before.social_credit)
        np.testing.assert_array_equal(before.fraud_logit[rest], run.by_name(name).logit[rest])
        model, again = served.trees[name], loaded.served.trees[name]
        assert again.member_rounds == model.member_rounds
        x, _ = loaded.served.tree_design(name, fs)
        np.testing.assert_array_equal(again.contributions(x[:50]), model.contributions(x[:50]))
        own = len(loaded.served.standardizer.output_names)
        paths, raw = again.grouped_paths(x, own, list(fs.relations))
        np.testing.assert_allclose(raw, after.fraud_logit, atol=1e-10)
        row, score = again.row_paths(x[5:6], own, list(fs.relations))
        np.testing.assert_allclose(row, paths[5], atol=1e-10)
        assert score == pytest.approx(raw[5], abs=1e-10)
