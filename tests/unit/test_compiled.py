"""``ml.compiled``: the compiled trees give LightGBM's margins bit for bit (missing values
and category codes included), are compiled in a child process and cached, and any failure
leaves the caller on LightGBM's path."""

from __future__ import annotations

import logging
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from creditgraph.ml.compiled import ForestCompile
from creditgraph.ml.fast_row import FastRow


def _booster(seed: int = 0) -> tuple[lgb.Booster, np.random.Generator]:
    rng = np.random.default_rng(seed)
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
    return booster, rng


def test_compiled_margin_is_lightgbms_bit_for_bit(tmp_path: Path) -> None:
    booster, rng = _booster()
    k = booster.num_feature()
    job = ForestCompile(booster.model_to_string(), k, tmp_path, FastRow(booster, k))
    assert not job.done  # nothing cached yet: a child process compiles
    compiled = job.wait(timeout=120)
    assert compiled is not None and job.done
    rows = rng.normal(size=(300, k))
    rows[:, 5] = rng.integers(0, 6, 300)  # codes never seen in training too
    rows[rng.random((300, k)) < 0.2] = np.nan
    want = booster.predict(rows, raw_score=True)
    got = np.array([compiled(rows[i])[0] for i in range(len(rows))])
    np.testing.assert_array_equal(got, want)
    assert np.ptp(got) > 1.0  # the rows are not all answered alike
    assert len(list(tmp_path.glob("forest-*.so"))) == 1
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob("*.log"))


def test_a_second_load_reads_the_cache(tmp_path: Path) -> None:
    booster, _ = _booster(1)
    k = booster.num_feature()
    text = booster.model_to_string()
    assert ForestCompile(text, k, tmp_path, FastRow(booster, k)).wait(timeout=120) is not None
    again = ForestCompile(text, k, tmp_path, FastRow(booster, k))
    assert again.done and again.poll() is not None  # loaded at once, no child
    other, _ = _booster(2)  # another model: its own entry
    job = ForestCompile(other.model_to_string(), k, tmp_path, FastRow(other, k))
    assert not job.done
    job.close()  # stopped: no half-written object left behind
    assert job.poll() is None
    assert len(list(tmp_path.glob("forest-*.so"))) == 1


def test_a_failed_compile_keeps_lightgbm(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    booster, _ = _booster()
    k = booster.num_feature()
    with caplog.at_level(logging.WARNING, logger="creditgraph.ml.compiled"):
        job = ForestCompile("this is not a LightGBM model", k, tmp_path, FastRow(booster, k))
        assert job.wait(timeout=120) is None
    assert job.done
    assert "compiled trees unavailable" in caplog.text and "compiler exited" in caplog.text
    assert not list(tmp_path.glob("forest-*.so"))


def test_a_compiled_model_that_disagrees_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The probe rows are checked against the caller's reference before the swap."""
    booster, _ = _booster()
    k = booster.num_feature()
    wrong = FastRow(_booster(3)[0], k)  # another model's margins as the reference
    with caplog.at_level(logging.WARNING, logger="creditgraph.ml.compiled"):
        job = ForestCompile(booster.model_to_string(), k, tmp_path, wrong)
        assert job.wait(timeout=120) is None
    assert "differs from LightGBM" in caplog.text
