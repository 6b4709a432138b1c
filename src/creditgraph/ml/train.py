"""Full-batch training of ``RelationalGNN``, calibration on validation labels, test metrics.

- Imbalance: fraud is ~2-4% of labels, so the fraud term of the loss weighs positives by
  ``negatives / positives`` (over the training split); the calibrator then undoes the
  resulting over-estimate of probabilities.
- Two losses, one model: fraud logit (all evidence) plus ``social_weight`` times the
  relationship-only logit, both against the same fraud labels.
- Early stopping keeps the weights of the epoch with the best validation AUPRC (the ranking
  quality that matters at a low base rate), after ``patience`` epochs without improvement;
  validation runs every ``validate_every`` epochs (and after the last one).
- Reproducibility: ``torch.manual_seed(seed)`` before initialisation and deterministic
  algorithms while training; on CPU the same seed and thread count give identical scores.
- Social credit = ``100 * (1 - calibrated P(fraud | relationships only))``: the trust the
  account's relationships imply, 0-100, higher is better, non-increasing in the
  relationship-only logit because the calibrator is monotone.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from sklearn.metrics import average_precision_score
from torch.nn.functional import binary_cross_entropy_with_logits

from creditgraph.domain import IntArray
from creditgraph.errors import InvalidInput
from creditgraph.ml.calibrate import CalibrationMethod, Calibrator
from creditgraph.ml.features import FeatureSet, Standardizer
from creditgraph.ml.metrics import expected_calibration_error, ranking_metrics
from creditgraph.ml.model import GNN, GraphInput, RelationalGNN, WaveletGNN

FloatArray = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int8]
Architecture = Literal["relational", "wavelet"]
log = logging.getLogger(__name__)
#: Fewest labelled accounts of each class per split part; below that metrics are noise.
MIN_PER_CLASS = 2


@dataclass(frozen=True)
class Split:
    """Indices of labelled accounts for training, validation (early stopping, calibration)
    and test (reported metrics)."""

    train: IntArray
    val: IntArray
    test: IntArray


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; the defaults are what the unit tests and the reported numbers use."""

    #: ``relational`` (``RelationalGNN``) or ``wavelet`` (``WaveletGNN``, heterophily-aware).
    architecture: Architecture = "relational"
    hidden: int = 32
    #: Message-passing layers (relational) or the wavelet order, i.e. hops (wavelet).
    layers: int = 2
    dropout: float = 0.2
    lr: float = 0.005
    weight_decay: float = 1e-4
    max_epochs: int = 300
    patience: int = 30
    #: Validation AUPRC (an extra forward pass) every this many epochs, and after the last.
    validate_every: int = 1
    #: Weight of the relationship-only loss next to the fraud loss.
    social_weight: float = 0.5
    calibration: CalibrationMethod = "platt"
    #: recall@k is reported with k = this share of the evaluated accounts.
    recall_k_fraction: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    loss: float
    #: None for epochs without validation (see ``TrainConfig.validate_every``).
    val_auprc: float | None
    seconds: float


@dataclass(frozen=True)
class Scores:
    """Per-account outputs, aligned with ``FeatureSet.account_ids``."""

    fraud_logit: FloatArray
    social_logit: FloatArray
    fraud_probability: FloatArray
    social_credit: FloatArray


@dataclass
class TrainResult:
    """The trained model with everything needed to score (and later, to save an artifact)."""

    model: GNN
    standardizer: Standardizer
    fraud_calibrator: Calibrator
    social_calibrator: Calibrator
    config: TrainConfig
    best_epoch: int
    history: list[EpochStats]
    #: ``fraud`` (GNN on the test split), ``social`` (relationship-only head on the test split).
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def graph_input(self, features: FeatureSet) -> GraphInput:
        return graph_input(features, self.standardizer)

    def score(self, features: FeatureSet) -> Scores:
        """Calibrated fraud probability and social credit for every account of ``features``."""
        self.model.eval()
        with torch.no_grad():
            out = self.model(self.graph_input(features))
        fraud = out.fraud_logit.double().numpy()
        social = out.social_logit.double().numpy()
        return Scores(
            fraud_logit=fraud,
            social_logit=social,
            fraud_probability=self.fraud_calibrator(fraud),
            social_credit=social_credit(self.social_calibrator(social)),
        )


def social_credit(relationship_risk: FloatArray) -> FloatArray:
    """0-100, higher = more trust: ``100 * (1 - P(fraud | relationships only))``."""
    return 100.0 * (1.0 - np.clip(relationship_risk, 0.0, 1.0))


def graph_input(features: FeatureSet, standardizer: Standardizer) -> GraphInput:
    """Standardised features and the sparse adjacency of every relation (built once)."""
    x = standardizer.transform(features.x, features.names)
    return GraphInput(
        torch.from_numpy(x), features.edge_index, features.edge_weight
    ).with_adjacency()


def stratified_split(
    labels: Labels, *, val: float = 0.2, test: float = 0.2, seed: int = 0
) -> Split:
    """Random train/val/test split of labelled accounts (label 0 or 1), stratified by class."""
    rng = np.random.default_rng(seed)
    parts: list[list[IntArray]] = [[], [], []]
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test, n_val = round(test * len(idx)), round(val * len(idx))
        if min(n_test, n_val, len(idx) - n_test - n_val) < MIN_PER_CLASS:
            name = "fraud" if cls else "legit"
            raise InvalidInput(
                f"too few {name} labels ({len(idx)}) for a train/validation/test split"
            )
        for part, chunk in zip(
            parts, np.split(idx, [len(idx) - n_val - n_test, len(idx) - n_test]), strict=True
        ):
            part.append(chunk)
    train, val_idx, test_idx = (np.sort(np.concatenate(p)) for p in parts)
    return Split(train=train, val=val_idx, test=test_idx)


@contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic kernels for the duration, without leaving a global flag changed."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def train(
    features: FeatureSet, labels: Labels, split: Split, config: TrainConfig | None = None
) -> TrainResult:
    """Train, early-stop on validation AUPRC, calibrate on validation, evaluate on test.

    Full batch and transductive: every account's features and edges take part in message
    passing, only ``split.train`` labels enter the loss. The standardiser is fitted on every
    account (no labels involved).
    """
    cfg = config or TrainConfig()
    standardizer = Standardizer.fit(features)
    graph = graph_input(features, standardizer)
    y = torch.from_numpy(labels.astype(np.float32))
    train_idx = torch.from_numpy(split.train)
    y_train = y[train_idx]
    positives = float(y_train.sum())
    pos_weight = torch.tensor((len(y_train) - positives) / max(positives, 1.0))
    y_val = labels[split.val]

    with _deterministic():
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, graph.x.shape[1], features.relations)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        history: list[EpochStats] = []
        best = (-1.0, 0, copy.deepcopy(model.state_dict()))
        for epoch in range(cfg.max_epochs):
            start = time.perf_counter()
            model.train()
            opt.zero_grad()
            out = model(graph)
            loss = binary_cross_entropy_with_logits(
                out.fraud_logit[train_idx], y_train, pos_weight=pos_weight
            ) + cfg.social_weight * binary_cross_entropy_with_logits(
                out.social_logit[train_idx], y_train, pos_weight=pos_weight
            )
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            last = epoch == cfg.max_epochs - 1
            if (epoch + 1) % cfg.validate_every and not last:
                history.append(EpochStats(epoch, loss.item(), None, _since(start)))
                continue
            val_auprc = float(average_precision_score(y_val, _logits(model, graph)[0][split.val]))
            history.append(EpochStats(epoch, loss.item(), val_auprc, _since(start)))
            log.info(
                "epoch %d: loss %.4f, validation AUPRC %.4f, %.1f s per epoch",
                epoch,
                loss.item(),
                val_auprc,
                sum(h.seconds for h in history) / len(history),
            )
            if val_auprc > best[0]:
                best = (val_auprc, epoch, copy.deepcopy(model.state_dict()))
            elif epoch - best[1] >= cfg.patience:
                break
        model.load_state_dict(best[2])
    model.eval()

    fraud, social = _logits(model, graph)
    fraud_cal = Calibrator.fit(fraud[split.val], y_val, cfg.calibration)
    social_cal = Calibrator.fit(social[split.val], y_val, cfg.calibration)
    result = TrainResult(model, standardizer, fraud_cal, social_cal, cfg, best[1], history)
    y_test = labels[split.test]
    result.metrics = {
        "fraud": evaluate(y_test, fraud[split.test], fraud_cal, cfg.recall_k_fraction),
        "social": evaluate(y_test, social[split.test], social_cal, cfg.recall_k_fraction),
    }
    return result


def evaluate(
    y: npt.ArrayLike, logits: FloatArray, calibrator: Calibrator, k_fraction: float
) -> dict[str, float]:
    """Ranking metrics, plus ECE of the raw sigmoid and of the calibrated probability."""
    truth = np.asarray(y)
    k = max(1, round(k_fraction * len(truth)))
    raw = 1.0 / (1.0 + np.exp(-logits))
    return {
        **ranking_metrics(truth, logits, k),
        "ece_raw": expected_calibration_error(truth, raw),
        "ece": expected_calibration_error(truth, calibrator(logits)),
    }


def build_model(cfg: TrainConfig, in_dim: int, relations: list[str]) -> GNN:
    """A freshly initialised module of ``cfg.architecture`` (seed it before calling)."""
    if cfg.architecture == "wavelet":
        return WaveletGNN(in_dim, relations, cfg.hidden, cfg.layers, cfg.dropout)
    return RelationalGNN(in_dim, relations, cfg.hidden, cfg.layers, cfg.dropout)


def _since(start: float) -> float:
    return time.perf_counter() - start


def _logits(model: GNN, graph: GraphInput) -> tuple[FloatArray, FloatArray]:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(graph)
    model.train(was_training)
    return out.fraud_logit.double().numpy(), out.social_logit.double().numpy()
