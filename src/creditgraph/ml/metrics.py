"""Quality metrics on held-out accounts: ranking (AUROC, AUPRC, recall@k) and calibration."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score


def recall_at_k(y: npt.ArrayLike, score: npt.ArrayLike, k: int) -> float:
    """Share of all positives found among the ``k`` highest scores (ties by position)."""
    truth = np.asarray(y)
    positives = int((truth == 1).sum())
    if positives == 0:
        return float("nan")
    top = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")[:k]
    return float((truth[top] == 1).sum() / positives)


def expected_calibration_error(y: npt.ArrayLike, prob: npt.ArrayLike, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-width bins, weighted by bin size."""
    truth = np.asarray(y, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(which, truth, minlength=bins) - np.bincount(which, p, minlength=bins))
    return float(gap.sum() / max(1, len(p)))


def ranking_metrics(y: npt.ArrayLike, score: npt.ArrayLike, k: int) -> dict[str, float]:
    """AUROC, AUPRC (average precision) and recall@k; ``score`` need not be a probability."""
    truth = np.asarray(y)
    s = np.asarray(score, dtype=np.float64)
    return {
        "auroc": float(roc_auc_score(truth, s)),
        "auprc": float(average_precision_score(truth, s)),
        "recall_at_k": recall_at_k(truth, s, k),
        "k": float(k),
        "n": float(len(truth)),
        "positives": float((truth == 1).sum()),
    }
