"""``FastRow`` (LightGBM's single-row C path) gives ``Booster.predict``'s margins and
TreeSHAP contributions, missing values and category codes included."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from creditgraph.ml.fast_row import FastRow, FastRows


def test_fast_row_equals_booster_predict() -> None:
    rng = np.random.default_rng(0)
    n, k = 2000, 6
    x = rng.normal(size=(n, k))
    x[:, 5] = rng.integers(0, 4, n)  # a categorical column (codes)
    y = ((x[:, 0] + (x[:, 5] == 2) + rng.normal(scale=0.5, size=n)) > 0.8).astype(int)
    x[rng.random((n, k)) < 0.1] = np.nan
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 15, "num_threads": 1},
        lgb.Dataset(x, y, categorical_feature=[5]),
        num_boost_round=40,
    )
    rows = rng.normal(size=(200, k))
    rows[:, 5] = rng.integers(0, 6, 200)  # codes never seen in training too
    rows[rng.random((200, k)) < 0.2] = np.nan
    margin, contrib = FastRow(booster, k), FastRow(booster, k, contrib=True)
    want = booster.predict(rows, raw_score=True)
    want_c = booster.predict(rows, pred_contrib=True)
    got = np.array([margin(rows[i])[0] for i in range(len(rows))])
    got_c = np.vstack([contrib(rows[i : i + 1]) for i in range(len(rows))])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_c, want_c, rtol=1e-12, atol=1e-12)
    assert np.ptp(got) > 1.0  # the rows are not all answered alike
    # Several rows in one call: bit for bit the single-row margins (a batch of decisions
    # must answer each as it would alone), for any batch size.
    many = FastRows(booster, k)
    assert np.array_equal(many(rows), got)
    assert np.array_equal(many(rows[17:18]), got[17:18])
    assert np.array_equal(np.concatenate([many(rows[:7]), many(rows[7:])]), got)
    assert many(rows[:0]).shape == (0,)


def test_fast_row_leaves_equal_pred_leaf() -> None:
    rng = np.random.default_rng(1)
    n, k = 1500, 5
    x = rng.normal(size=(n, k))
    y = (x[:, 0] - x[:, 2] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    x[rng.random((n, k)) < 0.1] = np.nan
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "num_threads": 1},
        lgb.Dataset(x, y),
        num_boost_round=30,
    )
    rows = rng.normal(size=(100, k))
    rows[rng.random((100, k)) < 0.2] = np.nan
    leaves = FastRow(booster, k, leaves=True)
    want = booster.predict(rows, pred_leaf=True)
    got = np.vstack([leaves(rows[i]) for i in range(len(rows))])
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(got[:, 0])) > 1  # rows reach different leaves
