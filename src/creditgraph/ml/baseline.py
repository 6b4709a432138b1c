"""The strong non-GNN baseline: gradient-boosted trees on the same features plus neighbour
aggregates, trained and evaluated on the same split as the GNN.

Input columns: the standardised account features (what the GNN reads), then per relation the
weighted mean and the max of those features over 1-hop neighbours and over 2 hops (the mean
of the neighbours' means, the max of their maxes). Probabilities are calibrated on the
validation split exactly as for the GNN, so the two sets of metrics compare like for like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import torch

from creditgraph.ml.calibrate import CalibrationMethod, Calibrator
from creditgraph.ml.features import F32Array, FeatureSet, Standardizer
from creditgraph.ml.graphops import mean_adjacency, neighbour_max
from creditgraph.ml.train import FloatArray, Labels, Split, evaluate


@dataclass(frozen=True)
class BaselineConfig:
    learning_rate: float = 0.05
    num_leaves: int = 15
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    #: Trees see a random share of columns per tree: hundreds of aggregate columns are
    #: strongly correlated, and sampling them makes the model less brittle.
    colsample: float = 0.5
    calibration: CalibrationMethod = "platt"
    recall_k_fraction: float = 0.05
    seed: int = 0
    #: LightGBM threads; 1 keeps the trainer off the cores a serving process needs.
    threads: int = 1


@dataclass
class BaselineResult:
    booster: lgb.Booster
    standardizer: Standardizer
    names: list[str]
    calibrator: Calibrator
    best_round: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def score(self, features: FeatureSet) -> FloatArray:
        """Calibrated fraud probability for every account of ``features``."""
        x, _ = tree_features(features, self.standardizer)
        return self.calibrator(self.booster.predict(x, raw_score=True))


def tree_features(features: FeatureSet, standardizer: Standardizer) -> tuple[F32Array, list[str]]:
    """``[n, f * (1 + 4 * relations)]`` float32: own features, then neighbour aggregates."""
    x = torch.from_numpy(standardizer.transform(features.x, features.names))
    names = list(standardizer.output_names)
    n = x.shape[0]
    blocks = [x]
    for rel in features.relations:
        ei = features.edge_index[rel]
        mean = mean_adjacency(ei, features.edge_weight[rel], n)
        mean1, max1 = mean @ x, neighbour_max(x, ei, n)
        blocks += [mean1, max1, mean @ mean1, neighbour_max(max1, ei, n)]
        for stat in ("mean1", "max1", "mean2", "max2"):
            names += [f"{rel}:{stat}:{c}" for c in standardizer.output_names]
    return torch.cat(blocks, dim=1).numpy(), names


def train_baseline(
    features: FeatureSet,
    labels: Labels,
    split: Split,
    config: BaselineConfig | None = None,
) -> BaselineResult:
    """Fit on the train split, stop early on validation AUPRC, calibrate on validation."""
    cfg = config or BaselineConfig()
    standardizer = Standardizer.fit(features)
    x, names = tree_features(features, standardizer)
    y: npt.NDArray[np.int8] = labels
    y_train = y[split.train]
    positives = max(1, int(y_train.sum()))
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": "average_precision",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": 10,
        "feature_fraction": cfg.colsample,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "scale_pos_weight": (len(y_train) - positives) / positives,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": cfg.threads,
        "verbosity": -1,
    }
    train_set = lgb.Dataset(x[split.train], y_train, feature_name=_safe(names))
    val_set = lgb.Dataset(x[split.val], y[split.val], reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=cfg.max_rounds,
        valid_sets=[val_set],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    raw = np.asarray(booster.predict(x, raw_score=True), dtype=np.float64)
    calibrator = Calibrator.fit(raw[split.val], y[split.val], cfg.calibration)
    result = BaselineResult(booster, standardizer, names, calibrator, booster.best_iteration)
    result.metrics = {
        "fraud": evaluate(y[split.test], raw[split.test], calibrator, cfg.recall_k_fraction)
    }
    return result


def _safe(names: list[str]) -> list[str]:
    # LightGBM rejects JSON-special characters in feature names.
    return [name.replace(":", "__") for name in names]
