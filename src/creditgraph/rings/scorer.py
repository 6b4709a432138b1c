"""The ring scorer: features per candidate group, weak labels, a learned calibrated model, and
an unsupervised fallback.

Why learned: hand weights chosen on one generator do not transfer (docs/rings.md). A platform
has supervision for some groups: rings investigators confirmed or dismissed, and groups that
contain accounts with a confirmed outcome. Those weak labels train a regularised logistic
regression on every detection run, which then scores every candidate, including the many
with no labelled member. Features never contain the labels themselves: member fraud
probabilities are taken over the members *without* a label (when there are any), so a group
whose label came from a labelled member is described the way an unlabelled group is.

Without enough supervision (fewer than ``MIN_PER_CLASS`` weakly labelled groups of either
class) the score is the unsupervised one: a fixed, documented prior over evidence that is hard
to explain innocently (see ``unsupervised_score``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from creditgraph.domain import FloatArray, IntArray

DAY = 86_400.0
HOUR = 3_600.0
#: Weakly labelled groups needed of each class before the learned model is used.
MIN_PER_CLASS = 8
#: A verdict is stronger evidence than a label of one member.
VERDICT_WEIGHT = 3.0
#: Inverse regularisation strength of the logistic model (chosen on the tuning world).
C = 0.3

#: Features of a candidate, in model order, with what they say.
FEATURES: dict[str, str] = {
    "size": "log2 of the number of members",
    "generators": "how many candidate generators proposed the group",
    "pattern": "strength of the clearest generator pattern (0-1)",
    "risk_mean": "mean fraud probability of unlabelled members (stored model scores)",
    "risk_max": "highest fraud probability of an unlabelled member",
    "age_days": "log1p median member age (days) when the group's activity began",
    "fresh_share": "share of members opened within 90 days before the activity",
    "created_spread": "log1p spread (IQR, days) of member creation times",
    "flow_through": "hub's min(in, out) / max(in, out) money",
    "dwell_hours": "log1p hours the hub held money before passing it on",
    "one_off_share": "share of the hub's payers who paid exactly once",
    "hub_payers": "log1p number of the hub's payers",
    "span_days": "log1p days between the first and last internal payment",
    "compression": "internal activity span / the members' whole activity span",
    "round_share": "share of internal pairs whose total is a round sum",
    "night_share": "share of internal pair first/last payments at 22:00-05:00",
    "amount_cv": "coefficient of variation of internal pair mean amounts",
    "cycle": "share of members on a time-ordered money cycle x its amount preservation",
    "shared": "share of members touched by an internal shared identifier",
    "shared_density": "shared-identifier links per member",
    "link_types": "distinct shared-identifier types inside the group",
    "reciprocity": "share of internal pairs paid back",
    "tie_age_days": "log1p median days from the younger account's opening to a pair's start",
    "pair_duration_days": "log1p median days between a pair's first and last payment",
    "friend_overlap": "share of internal pairs that are friends",
    "friend_density": "friend links among members / member pairs",
    "density": "internal payment pairs / (2 x members)",
    "amount": "log-scaled internal money against the network's typical pair",
    "count_mean": "mean payments per internal pair",
}
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)


@dataclass(frozen=True)
class WeakLabels:
    """Per candidate: 1 ring, 0 not a ring, -1 unknown; the sample weight; where it came from."""

    y: IntArray
    weight: FloatArray
    source: list[str]


def weak_labels(
    members: Sequence[IntArray],
    labels: IntArray,
    verdict: Sequence[str | None] | None = None,
    risk: FloatArray | None = None,
) -> WeakLabels:
    """A verdict (``confirmed`` / ``dismissed``) decides. Otherwise a group with only legit
    labels is not a ring, and a group with fraud-labelled members (at least as many as legit
    ones) is a ring when a second member is suspicious too: another fraud label, or a fraud
    probability >= 0.5 (``risk``). One fraudster among accounts nothing else flags is a lone
    scammer with its counterparties, not evidence of a ring: unknown, as is a group with no
    labelled member."""
    y = np.full(len(members), -1, dtype=np.int64)
    w = np.ones(len(members))
    src = ["none"] * len(members)
    for i, m in enumerate(members):
        v = verdict[i] if verdict is not None else None
        if v == "confirmed" or v == "dismissed":
            y[i], w[i], src[i] = int(v == "confirmed"), VERDICT_WEIGHT, f"verdict:{v}"
            continue
        lab = labels[m]
        fraud, legit = int((lab == 1).sum()), int((lab == 0).sum())
        suspicious = fraud + (int(np.sum((lab != 1) & (risk[m] >= 0.5))) if risk is not None else 0)
        if fraud and fraud >= legit and suspicious >= 2:
            y[i], src[i] = 1, "labels"
        elif legit and not fraud:
            y[i], src[i] = 0, "labels"
    return WeakLabels(y, w, src)


def unsupervised_score(f: dict[str, float]) -> float:
    """The fallback without supervision: a prior, not fitted to the data being scored.

    ``core`` is a weighted mean of evidence of coordinated money: member risk (2; a label
    counts as 1 or 0, else the stored fraud probability; left out when no member has either),
    pattern strength (1.5), internal density (0.5), internal money on a log scale (3) and a
    burst (1: members opened together, or internal activity compressed into weeks). Specific
    evidence that is hard to explain innocently, a shared identifier or an amount-preserving
    time-ordered cycle, raises it half way to 1: ``core + (1 - core) / 2 * max(shared,
    cycle)``. These are the weights of the hand-tuned detector this scorer replaced (chosen on
    the default synthetic network, seed 42); docs/benchmarks.md shows how little they transfer.
    """
    parts = {
        "risk": (2.0, f["risk_all"]),
        "pattern": (1.5, f["pattern"]),
        "density": (0.5, f["density"]),
        "amount": (3.0, f["amount"]),
        "burst": (1.0, f["burst"]),
    }
    present = {k: (w, v) for k, (w, v) in parts.items() if not np.isnan(v)}
    core = sum(w * v for w, v in present.values()) / sum(w for w, _ in present.values())
    specific = max(f["shared"], f["cycle"])
    return float(core + (1.0 - core) * 0.5 * specific)


@dataclass
class RingScorer:
    """A calibrated model of "this candidate is a ring" (or the unsupervised prior)."""

    mode: str = "unsupervised"
    model: Pipeline | None = None
    trained_on: dict[str, int] = field(default_factory=dict)

    @classmethod
    def fit(cls, x: FloatArray, weak: WeakLabels) -> RingScorer:
        """Fit on the weakly labelled rows of ``x``; unsupervised when too few of a class."""
        known = weak.y >= 0
        pos, neg = int((weak.y == 1).sum()), int((weak.y == 0).sum())
        counts = {"positive": pos, "negative": neg, "unknown": int((~known).sum())}
        if pos < MIN_PER_CLASS or neg < MIN_PER_CLASS:
            return cls("unsupervised", None, counts)
        model = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=C, class_weight="balanced", max_iter=2_000),
        )
        model.fit(x[known], weak.y[known], logisticregression__sample_weight=weak.weight[known])
        return cls("logistic", model, counts)

    def score(self, x: FloatArray, raw: Sequence[dict[str, float]]) -> FloatArray:
        """Probability of being a ring (learned) or the unsupervised prior, per row."""
        if self.model is None:
            return np.array([unsupervised_score(f) for f in raw], dtype=np.float64)
        return np.asarray(self.model.predict_proba(x)[:, 1], dtype=np.float64)

    def reasons(self, x: FloatArray, top: int = 3) -> list[list[dict[str, Any]]]:
        """Per row, the features that raised the score most (learned model only): each
        feature's contribution to the log-odds, ``coef * standardised value``."""
        if self.model is None:
            return [[] for _ in range(len(x))]
        imputer, scaler, lr = self.model.steps[0][1], self.model.steps[1][1], self.model.steps[2][1]
        z = scaler.transform(imputer.transform(x))
        contrib = z * lr.coef_[0][None, :]
        out = []
        for row, c in zip(x, contrib, strict=True):
            order = np.argsort(-c)[:top]
            out.append(
                [
                    {
                        "feature": FEATURE_NAMES[j],
                        "value": None if np.isnan(row[j]) else round(float(row[j]), 4),
                        "contribution": round(float(c[j]), 3),
                    }
                    for j in order.tolist()
                    if c[j] > 0
                ]
            )
        return out

    def describe(self) -> dict[str, Any]:
        """What scored the rings: the mode, the training counts and (learned) the weights."""
        out: dict[str, Any] = {"mode": self.mode, "trained_on": self.trained_on}
        if self.model is not None:
            lr = self.model.steps[2][1]
            out["coefficients"] = {
                n: round(float(c), 3) for n, c in zip(FEATURE_NAMES, lr.coef_[0], strict=True)
            }
        return out
