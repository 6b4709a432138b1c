"""ROC, precision-recall and calibration plots (PNG) for the model card.

Figures are built with ``matplotlib.figure.Figure`` and saved through its own Agg canvas:
no ``pyplot``, so no global backend switch, no display needed and no figure registry that
a long-running process would leak into.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

FloatArray = npt.NDArray[np.float64]
#: Equal-width probability bins of the reliability diagram.
CALIBRATION_BINS = 10


def save_plots(
    folder: Path,
    y: npt.ArrayLike,
    ranking: Mapping[str, FloatArray],
    probabilities: Mapping[str, FloatArray],
) -> dict[str, Path]:
    """Write ``roc.png``, ``pr.png`` and ``calibration.png`` comparing named models on the
    same labels ``y`` (0/1, both classes present); returns the paths by plot name.

    ROC and PR curves read ``ranking`` (the scores the metrics are computed from, e.g.
    logits): a calibrator that saturates at 0 or 1 creates ties that would bend the curves
    away from the reported AUROC / AUPRC. The reliability diagram reads ``probabilities``.
    """
    truth = np.asarray(y)
    figures = {
        "roc": _roc(truth, ranking),
        "pr": _pr(truth, ranking),
        "calibration": _calibration(truth, probabilities),
    }
    paths = {}
    for name, fig in figures.items():
        paths[name] = folder / f"{name}.png"
        fig.savefig(paths[name], format="png")
    return paths


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(5.0, 4.5), dpi=100, layout="tight")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    return fig, ax


def _roc(y: npt.NDArray[np.generic], ranking: Mapping[str, FloatArray]) -> Figure:
    fig, ax = _axes("ROC, test split", "false positive rate", "true positive rate")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    for name, p in ranking.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(y, p):.3f})")
    ax.legend(loc="lower right")
    return fig


def _pr(y: npt.NDArray[np.generic], ranking: Mapping[str, FloatArray]) -> Figure:
    fig, ax = _axes("Precision-recall, test split", "recall", "precision")
    # A random ranking's precision is the base rate: the floor every model must clear.
    base_rate = float(np.mean(y == 1))
    ax.axhline(base_rate, color="grey", linestyle=":", label=f"base rate {base_rate:.3f}")
    for name, p in ranking.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.step(
            recall,
            precision,
            where="post",
            label=f"{name} (AUPRC {average_precision_score(y, p):.3f})",
        )
    ax.legend(loc="lower left")
    return fig


def _calibration(y: npt.NDArray[np.generic], probabilities: Mapping[str, FloatArray]) -> Figure:
    fig, ax = _axes("Calibration, test split", "mean predicted probability", "observed fraud rate")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    truth = (y == 1).astype(np.float64)
    for name, p in probabilities.items():
        which = np.minimum((p * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
        count = np.bincount(which, minlength=CALIBRATION_BINS)
        used = count > 0
        mean_p = np.bincount(which, p, minlength=CALIBRATION_BINS)[used] / count[used]
        rate = np.bincount(which, truth, minlength=CALIBRATION_BINS)[used] / count[used]
        # Marker area follows the bin's size: a lone account in a bin is not evidence.
        sizes = 8.0 + 120.0 * count[used] / count.max()
        (line,) = ax.plot(mean_p, rate, label=name)
        ax.scatter(mean_p, rate, s=sizes, color=line.get_color())
    ax.legend(loc="upper left")
    return fig
