"""Path attribution of LightGBM models (``ml.pathattr``) against LightGBM's own outputs."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from creditgraph.ml.pathattr import leaf_table, path_contributions


def _model(leaves: int, rounds: int = 40) -> tuple[lgb.Booster, npt.NDArray[np.float32]]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take the default branch
    signal = np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2])
    y = (signal + rng.normal(size=len(x)) > 0.8).astype(int)
    params = {"objective": "binary", "num_leaves": leaves, "verbosity": -1, "seed": 0}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=rounds), x


def test_contributions_add_up_to_the_raw_score_and_the_base_is_treeshaps() -> None:
    booster, x = _model(leaves=15)
    group = np.array([0, 0, 1, 1, 2, 2])
    table = leaf_table(booster, group, 3)
    contrib, raw = path_contributions(booster, table, x, threads=1)
    expected_raw = booster.predict(x, raw_score=True)
    np.testing.assert_allclose(raw, expected_raw, atol=1e-9)
    np.testing.assert_allclose(contrib.sum(axis=1) + table.expected, expected_raw, atol=1e-9)
    shap = np.asarray(booster.predict(x, pred_contrib=True))
    np.testing.assert_allclose(table.expected, shap[0, -1], atol=1e-9)


def test_stumps_match_treeshap_exactly_and_a_dropped_group_stays_out() -> None:
    # With one split per tree there is no interaction to credit differently: path
    # attribution and TreeSHAP coincide.
    booster, x = _model(leaves=2)
    table = leaf_table(booster, np.arange(6), 6)
    contrib, _ = path_contributions(booster, table, x, threads=1)
    shap = np.asarray(booster.predict(x, pred_contrib=True))[:, :-1]
    np.testing.assert_allclose(contrib, shap, atol=1e-9)
    # Column 0 left out (-1): its share is missing from the total, the rest unchanged.
    partial = leaf_table(booster, np.array([-1, 0, 1, 2, 3, 4]), 5)
    part, _ = path_contributions(booster, partial, x, threads=1)
    np.testing.assert_allclose(part, shap[:, 1:], atol=1e-9)
