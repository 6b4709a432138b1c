"""Several model families on one snapshot and one split; the champion is chosen on validation.

Families (``CandidatesConfig.families``):
- ``gnn``: the relation-aware GNN (``RelationalGNN``);
- ``wavelet``: the heterophily-aware Beta-wavelet GNN (``WaveletGNN``);
- ``trees``: LightGBM on own features + per-relation 1-2-hop neighbour aggregates (the tree
  baseline every other family is measured against);
- ``labels``: ``trees`` plus label-aware neighbour columns (out of fold, training labels only);
- ``stacked``: ``labels`` plus out-of-fold GNN logits, averaged with the full GNN (below).

Selection: the highest VALIDATION AUPRC, ties broken by validation AUROC, then by the lower
training time. Test metrics are computed for every candidate on the same held-out accounts
and reported beside each other; they never choose anything.

Why ``stacked`` should win by construction: its trees read a superset of the ``trees``
columns and stop early on validation, so they can fall back to what ``trees`` learns; the
out-of-fold GNN logit adds what message passing found; and its final score is the mean of
the standardised tree and GNN logits, an ensemble of two families whose errors differ (an
average of two rankers with uncorrelated errors ranks better than either). Its validation
score is computed like every other candidate's, so if it does not win there, it is not
chosen.

The social-credit dimension stays relationship-only: the relationship-only candidates are
each GNN's social head (neighbour aggregates of self-only encodings) and ``social_trees``
(trees on neighbour aggregates alone); the best on validation AUPRC is served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score

from creditgraph.domain import IntArray
from creditgraph.ml.calibrate import CalibrationMethod, Calibrator
from creditgraph.ml.features import FeatureSet, Standardizer
from creditgraph.ml.metrics import expected_calibration_error, recall_at_k
from creditgraph.ml.neighbours import assign_folds
from creditgraph.ml.train import (
    Architecture,
    Labels,
    Scores,
    Split,
    TrainConfig,
    TrainResult,
    social_credit,
    train,
)
from creditgraph.ml.trees import (
    Base,
    TreeConfig,
    TreeFamily,
    TreeModel,
    base_blocks,
    design,
    fit,
    known_for,
    known_labels,
    training_folds,
)

Family = Literal["gnn", "wavelet", "trees", "labels", "stacked"]
FAMILIES: tuple[Family, ...] = ("gnn", "wavelet", "trees", "labels", "stacked")
FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)
ARCHITECTURE: dict[str, Architecture] = {"gnn": "relational", "wavelet": "wavelet"}
#: ``stacked`` = mean of these standardised logits: the tree baseline, the stacked trees
#: (which read the out-of-fold GNN logits) and the bag of fold GNNs itself.
STACK_MEMBERS = ["trees", "stacked_trees", "gnn_folds"]
#: Cache flag for ``ServedModel.logits``: tree members also leave their grouped path
#: attribution in the cache under ``"paths:<family>"`` (``ml.reasons`` reads it).
PATHS = "paths"
#: Families whose columns include the shared own + aggregate blocks.
TREE_USERS = ("trees", "labels", "stacked")


@dataclass(frozen=True)
class CandidatesConfig:
    families: tuple[Family, ...] = FAMILIES
    #: Relationship-only candidates for social credit: GNN social heads of the trained GNN
    #: families are always considered; this adds trees on neighbour aggregates alone.
    social_trees: bool = True
    #: Folds of the out-of-fold GNN logits of ``stacked`` (one GNN training each).
    stack_folds: int = 3
    #: Share of the training labels every candidate stops early on (the rest it fits on).
    stop_fraction: float = 0.2
    gnn: TrainConfig = field(default_factory=TrainConfig)
    wavelet: TrainConfig = field(default_factory=lambda: TrainConfig(architecture="wavelet"))
    trees: TreeConfig = field(default_factory=TreeConfig)
    calibration: CalibrationMethod = "platt"
    recall_k_fraction: float = 0.05


@dataclass
class Candidate:
    """One trained candidate: its ranking score and calibrated probability per account."""

    name: str
    logit: FloatArray = field(repr=False)
    calibrator: Calibrator
    train_s: float
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    #: Relationship-only candidates feed social credit, never the fraud score.
    social: bool = False

    @property
    def probability(self) -> FloatArray:
        return self.calibrator(self.logit)


@dataclass
class Blend:
    """``stacked``'s final score: mean of standardised member logits (fixed at training)."""

    members: list[str]
    center: list[float]
    scale: list[float]

    @classmethod
    def fit(cls, members: list[str], logits: dict[str, FloatArray]) -> Blend:
        """Centre and scale of each member over every account (no labels involved)."""
        return cls(
            list(members),
            [float(logits[m].mean()) for m in members],
            [float(logits[m].std()) or 1.0 for m in members],
        )

    def __call__(self, logits: dict[str, FloatArray]) -> FloatArray:
        parts = [
            (logits[m] - c) / s
            for m, c, s in zip(self.members, self.center, self.scale, strict=True)
        ]
        return np.asarray(np.mean(parts, axis=0), dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {"members": self.members, "center": self.center, "scale": self.scale}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Blend:
        return cls(list(state["members"]), list(state["center"]), list(state["scale"]))


@dataclass
class ServedModel:
    """What a model version serves: the champion fraud candidate and the social candidate.

    ``gnns`` holds every GNN the two need (full-data models by family, and for ``stacked``
    the fold models under ``stack:<family>:<k>``); ``trees`` every tree model by family.
    """

    fraud: str
    social: str
    standardizer: Standardizer
    gnns: dict[str, TrainResult]
    trees: dict[str, TreeModel]
    fraud_calibrator: Calibrator
    social_calibrator: Calibrator
    blend: Blend | None = None
    stack_folds: int = 0
    #: The member candidates' own calibrators, for the card and for reasons.
    member_calibrators: dict[str, Calibrator] = field(default_factory=dict)

    def logits(
        self, features: FeatureSet, cache: dict[str, Any] | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Fraud and relationship-only ranking scores of every account (``cache``: see
        ``tree_design``)."""
        if cache is None:
            cache = {}
        return (
            self._logit(self.fraud, features, cache),
            self._logit(self.social, features, cache),
        )

    def score(self, features: FeatureSet, cache: dict[str, Any] | None = None) -> Scores:
        fraud, social = self.logits(features, cache)
        return Scores(
            fraud_logit=fraud,
            social_logit=social,
            fraud_probability=self.fraud_calibrator(fraud),
            social_credit=social_credit(self.social_calibrator(social)),
        )

    def tree_design(
        self, family: TreeFamily, features: FeatureSet, cache: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], list[str]]:
        """The columns ``family``'s booster reads, for every account of ``features``.

        ``cache`` (one dict per ``features``) keeps what several calls share: the own and
        aggregate blocks, GNN logits, finished matrices."""
        if cache is not None and f"design:{family}" in cache:
            hit: tuple[npt.NDArray[np.float32], list[str]] = cache[f"design:{family}"]
            return hit
        model = self.trees[family]
        known = known_for(features.account_ids, model.known) if model.uses_labels else None
        stacked: dict[str, FloatArray] = {}
        if family == "stacked":
            local: dict[str, Any] = {} if cache is None else cache
            stacked["gnn:gnn"] = self._logit("gnn_folds", features, local)
        base: Base | None = None if cache is None else cache.get("base")
        if base is None:
            base = base_blocks(features, self.standardizer)
            if cache is not None:
                cache["base"] = base
        out = design(
            features,
            self.standardizer,
            family,
            known=known,
            folds=model.folds,
            gnn_logits=stacked,
            base=base,
        )
        if cache is not None:
            cache[f"design:{family}"] = out
        return out

    def _logit(self, name: str, features: FeatureSet, cache: dict[str, Any]) -> FloatArray:
        if name in cache:
            hit: FloatArray = cache[name]
            return hit
        if name.endswith(":social"):
            self._logit(name.removesuffix(":social"), features, cache)
            social: FloatArray = cache[name]
            return social
        out: FloatArray
        if name in ARCHITECTURE:
            result = self.gnns[name]
            scores = result.score(features)
            out = scores.fraud_logit
            cache[f"{name}:social"] = scores.social_logit
        elif name == "gnn_folds":
            keys = [f"stack:gnn:{k}" for k in range(self.stack_folds)]
            out = np.mean([_gnn_logit(self.gnns[k], features, cache, k) for k in keys], axis=0)
        elif name == "stacked" and self.blend is not None:
            out = self.blend({m: self._logit(m, features, cache) for m in self.blend.members})
        else:
            family = tree_family(name)
            x, _ = self.tree_design(family, features, cache)
            model = self.trees[family]
            if cache.get(PATHS):
                # Batch scoring with reasons: one pass over the leaves yields the score
                # and the grouped path attribution (``ml.reasons`` reads it back).
                own = 0 if family == "social_trees" else len(self.standardizer.output_names)
                paths, out = model.grouped_paths(x, own, list(features.relations))
                cache[f"{PATHS}:{family}"] = paths
            else:
                out = model.raw(x)
        cache[name] = out
        return out


def member_weights(served: ServedModel, name: str) -> list[tuple[str, float, float]]:
    """``name``'s logit as ``sum(weight * (member logit - center))``: the blend's members
    for ``stacked``, else ``name`` itself with weight 1 and centre 0."""
    if name == "stacked" and served.blend is not None:
        b = served.blend
        k = len(b.members)
        return [(m, 1.0 / (k * s), c) for m, c, s in zip(b.members, b.center, b.scale, strict=True)]
    return [(name, 1.0, 0.0)]


def tree_family(name: str) -> TreeFamily:
    return "stacked" if name == "stacked_trees" else name  # type: ignore[return-value]


def _gnn_logit(
    result: TrainResult, features: FeatureSet, cache: dict[str, Any] | None, key: str
) -> FloatArray:
    if cache is not None and key in cache:
        hit: FloatArray = cache[key]
        return hit
    logit = result.score(features).fraud_logit
    if cache is not None:
        cache[key] = logit
    return logit


@dataclass
class CandidateRun:
    """Every candidate measured, and the served model built from the two winners."""

    candidates: list[Candidate]
    champion: str
    social: str
    served: ServedModel
    timings: dict[str, float]
    #: Every trained model (``served`` keeps only what the two selected candidates read).
    full: ServedModel = field(repr=False)

    def by_name(self, name: str) -> Candidate:
        return next(c for c in self.candidates if c.name == name)

    def served_as(self, fraud: str, social: str) -> ServedModel:
        """The model that would serve ``fraud`` and ``social`` (for comparisons and tests)."""
        return prune(
            replace(
                self.full,
                fraud=fraud,
                social=social,
                fraud_calibrator=self.by_name(fraud).calibrator,
                social_calibrator=self.by_name(social).calibrator,
            )
        )


def measure(
    y: npt.ArrayLike, logit: FloatArray, calibrator: Calibrator, k_fraction: float = 0.05
) -> dict[str, float]:
    """AUROC, AUPRC, recall at 1 % and 5 % review capacity and at ``k_fraction`` (the
    gate's ``recall_at_k``), calibrated ECE on ``y``. NaN where a class is absent."""
    truth = np.asarray(y)
    n = len(truth)
    both = 0 < truth.sum() < n
    k = max(1, round(k_fraction * n))
    return {
        "recall_at_k": recall_at_k(truth, logit, k),
        "k": float(k),
        "auroc": float(roc_auc_score(truth, logit)) if both else float("nan"),
        "auprc": float(average_precision_score(truth, logit)) if both else float("nan"),
        "recall_at_1pct": recall_at_k(truth, logit, max(1, round(0.01 * n))),
        "recall_at_5pct": recall_at_k(truth, logit, max(1, round(0.05 * n))),
        "ece": expected_calibration_error(truth, calibrator(logit)),
        "n": float(n),
        "positives": float(truth.sum()),
    }


#: Inside the noise band of the validation leader, the order candidates are preferred in:
#: the blend first (an average of the others, so its error varies least from one sample of
#: accounts to the next, and it contains the tree baseline), then the cheaper families; the
#: social candidates likewise in their order of cost by construction (trees, then each GNN's
#: head, which needs a whole GNN training); the rest by measured training time. Fixed by
#: design, not by any result: a measured time would let the same data and seed select a
#: different candidate when two level candidates cost about the same on a busy machine.
PREFERENCE = (
    "stacked",
    "trees",
    "labels",
    "gnn",
    "wavelet",
    "social_trees",
    "gnn:social",
    "wavelet:social",
)
#: Paired bootstrap resamples of the validation accounts, and the share of them in which a
#: candidate must reach the leader's AUPRC to count as level with it.
RESAMPLES = 200
LEVEL_SHARE = 0.1


def select(
    candidates: list[Candidate],
    y_val: npt.NDArray[np.int8] | None = None,
    val: npt.NDArray[np.int64] | None = None,
    *,
    seed: int = 0,
) -> Candidate:
    """The champion among ``candidates``, decided on validation only.

    Without validation labels: best validation AUPRC; ties: AUROC, then the cheaper one.
    With them (``y_val`` at the rows ``val``), a few dozen validation frauds make that
    order noisy, so: a stratified paired bootstrap of the validation accounts (positives
    and negatives resampled separately) counts, per candidate, the share of resamples in
    which its AUPRC reaches the leader's; every candidate at or above ``LEVEL_SHARE`` is
    level with the leader, and among those ``PREFERENCE`` decides, then training time.
    The share is kept in ``val["level_share"]`` for the model card."""

    def by_metrics(c: Candidate) -> tuple[float, float, float]:
        return (round(c.val["auprc"], 6), round(c.val["auroc"], 6), -c.train_s)

    leader = max(candidates, key=by_metrics)
    if y_val is None or val is None or len(candidates) < 2:
        return leader
    pos, neg = np.flatnonzero(y_val == 1), np.flatnonzero(y_val == 0)
    if len(pos) < 2 or len(neg) < 2:
        return leader
    rng = np.random.default_rng(seed)
    scores = {c.name: c.logit[val] for c in candidates}
    reach = dict.fromkeys(scores, 0)
    for _ in range(RESAMPLES):
        rows = np.concatenate(
            [rng.choice(pos, len(pos), replace=True), rng.choice(neg, len(neg), replace=True)]
        )
        y = y_val[rows]
        ap = {name: float(average_precision_score(y, s[rows])) for name, s in scores.items()}
        for name, value in ap.items():
            reach[name] += value >= ap[leader.name] - 1e-12
    for c in candidates:
        c.val["level_share"] = reach[c.name] / RESAMPLES
    level = [c for c in candidates if c.val["level_share"] >= LEVEL_SHARE]

    def preferred(c: Candidate) -> tuple[int, float]:
        rank = PREFERENCE.index(c.name) if c.name in PREFERENCE else len(PREFERENCE)
        return (rank, c.train_s)

    return min(level, key=preferred)


def train_candidates(
    features: FeatureSet,
    labels: Labels,
    split: Split,
    cfg: CandidatesConfig,
    *,
    progress: Callable[[str], None] | None = None,
) -> CandidateRun:
    """Train every configured family on ``split``, measure all, select champion and social."""
    note = progress or (lambda m: log.info("%s", m))
    standardizer = Standardizer.fit(features)
    timings: dict[str, float] = {}
    candidates: list[Candidate] = []
    gnns: dict[str, TrainResult] = {}
    trees: dict[str, TreeModel] = {}
    logits: dict[str, FloatArray] = {}
    y_val, y_test = labels[split.val], labels[split.test]
    # GNNs fit on ``fit`` and stop early on ``stop`` (both carved from the training labels),
    # never on validation: a GNN's validation curve jumps from epoch to epoch, so the best of
    # a few hundred looks at it would flatter its validation score and win the selection on
    # noise. Boosted trees add a small step per round (a smooth curve): they stop on
    # validation and keep every training label.
    fit_idx, stop_idx = inner_split(labels, split.train, cfg.stop_fraction, cfg.trees.seed)
    inner = Split(train=fit_idx, val=stop_idx, test=split.test)

    def add(name: str, logit: FloatArray, seconds: float, *, social: bool = False) -> Candidate:
        calibrator = Calibrator.fit(logit[split.val], y_val, cfg.calibration)
        c = Candidate(name, logit, calibrator, round(seconds, 3), social=social)
        c.val = measure(y_val, logit[split.val], calibrator, cfg.recall_k_fraction)
        c.test = measure(y_test, logit[split.test], calibrator, cfg.recall_k_fraction)
        candidates.append(c)
        logits[name] = logit
        note(
            f"candidate {name}: validation AUPRC {c.val['auprc']:.4f}, "
            f"AUROC {c.val['auroc']:.4f} ({seconds:.1f} s)"
        )
        return c

    for family in ("gnn", "wavelet"):
        if family not in cfg.families:
            continue
        start = time.perf_counter()
        gcfg = cfg.gnn if family == "gnn" else cfg.wavelet
        result = train(features, labels, inner, replace(gcfg, calibration=cfg.calibration))
        seconds = time.perf_counter() - start
        timings[f"{family}_s"] = round(seconds, 3)
        gnns[family] = result
        scores = result.score(features)
        if family in cfg.families:
            add(family, scores.fraud_logit, seconds)
        add(f"{family}:social", scores.social_logit, seconds, social=True)

    known = known_labels(labels, split.train)
    label_fold = training_folds(split.train, features.num_accounts, cfg.trees)
    base = (
        base_blocks(features, standardizer)
        if any(f in cfg.families for f in TREE_USERS) or cfg.social_trees
        else None
    )
    table = {features.account_ids[i]: int(labels[i]) for i in split.train}

    def fit_trees(
        family: TreeFamily,
        gnn_logits: dict[str, FloatArray] | None = None,
        rows: IntArray | None = None,
    ) -> TreeModel:
        start = time.perf_counter()
        x, names = design(
            features,
            standardizer,
            family,
            known=known,
            fold=label_fold,
            folds=cfg.trees.folds,
            gnn_logits=gnn_logits,
            base=base,
        )
        booster, rounds = fit(
            x, labels, split.train if rows is None else rows, split.val, names, cfg.trees
        )
        raw = np.asarray(booster.predict(x, raw_score=True), dtype=np.float64)
        model = TreeModel(
            family=family,
            booster=booster,
            standardizer=standardizer,
            calibrator=Calibrator.fit(raw[split.val], y_val, cfg.calibration),
            names=names,
            best_round=sum(rounds),
            member_rounds=rounds,
            known=table if family in ("labels", "stacked") else {},
            folds=cfg.trees.folds,
        )
        trees[family] = model
        name = "stacked_trees" if family == "stacked" else family
        timings[f"{name}_s"] = round(time.perf_counter() - start, 3)
        add(name, raw, time.perf_counter() - start, social=family == "social_trees")
        return model

    for family in ("trees", "labels"):
        if family in cfg.families or (family == "trees" and "stacked" in cfg.families):
            fit_trees(family)  # type: ignore[arg-type]
    # Social credit needs a relationship-only candidate: without a GNN, trees provide it.
    if cfg.social_trees or not any(f in cfg.families for f in ARCHITECTURE):
        fit_trees("social_trees")
    if "stacked" in cfg.families:
        start = time.perf_counter()
        oof = _out_of_fold(features, labels, inner, cfg, gnns, note)
        timings["stack_gnn_s"] = round(time.perf_counter() - start, 3)
        add("gnn_folds", oof, timings["stack_gnn_s"])
        # Only accounts whose GNN column is truly out of fold train the stacked trees (the
        # ``stop`` accounts' labels chose the fold models' epochs).
        fit_trees("stacked", {"gnn:gnn": oof}, fit_idx)
        blend = Blend.fit(STACK_MEMBERS, logits)
        cost = timings["stack_gnn_s"] + timings["stacked_trees_s"] + timings["trees_s"]
        add("stacked", blend(logits), cost)
    else:
        blend = None

    # The stacked family's members are measured and shown, but only the blend competes.
    fraud_pool = [c for c in candidates if not c.social and c.name in cfg.families]
    if not fraud_pool:
        raise ValueError("no fraud candidate was trained: check [candidates] families")
    champion = select(fraud_pool, y_val, split.val, seed=cfg.trees.seed)
    social = select([c for c in candidates if c.social], y_val, split.val, seed=cfg.trees.seed)
    note(f"champion: {champion.name}; social credit from: {social.name}")
    served = ServedModel(
        fraud=champion.name,
        social=social.name,
        standardizer=standardizer,
        gnns=gnns,
        trees=trees,
        fraud_calibrator=champion.calibrator,
        social_calibrator=social.calibrator,
        blend=blend,
        stack_folds=cfg.stack_folds if "stacked" in cfg.families else 0,
        member_calibrators={c.name: c.calibrator for c in candidates},
    )
    return CandidateRun(candidates, champion.name, social.name, prune(served), timings, served)


def inner_split(
    labels: Labels, train_idx: IntArray, fraction: float, seed: int
) -> tuple[IntArray, IntArray]:
    """``train_idx`` split into (fit, stop), stratified by class, seeded."""
    rng = np.random.default_rng(seed + 7)
    fit_parts, stop_parts = [], []
    for cls in (0, 1):
        idx = rng.permutation(train_idx[labels[train_idx] == cls])
        n_stop = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) > 1 else 0
        stop_parts.append(idx[:n_stop])
        fit_parts.append(idx[n_stop:])
    return np.sort(np.concatenate(fit_parts)), np.sort(np.concatenate(stop_parts))


def prune(served: ServedModel) -> ServedModel:
    """Keep only the models the served fraud and social candidates read."""
    need_gnn: set[str] = set()
    need_trees: set[str] = set()
    for name in (served.fraud, served.social):
        base = name.removesuffix(":social")
        if base in ARCHITECTURE:
            need_gnn.add(base)
        elif base == "stacked":
            need_trees |= {"trees", "stacked"}
        elif base == "gnn_folds":
            need_trees.add("stacked")
        else:
            need_trees.add(tree_family(base))
    if "stacked" in need_trees:
        need_gnn |= {k for k in served.gnns if k.startswith("stack:")}
    return replace(
        served,
        gnns={k: v for k, v in served.gnns.items() if k in need_gnn},
        trees={k: v for k, v in served.trees.items() if k in need_trees},
        blend=served.blend if served.fraud == "stacked" else None,
        stack_folds=served.stack_folds if "stacked" in need_trees else 0,
    )


def _out_of_fold(
    features: FeatureSet,
    labels: Labels,
    split: Split,
    cfg: CandidatesConfig,
    gnns: dict[str, TrainResult],
    note: Callable[[str], None],
) -> FloatArray:
    """Each ``inner.train`` account's logit from the GNN trained without its fold (stopping
    early on ``inner.val``); every other account's mean over the fold models. The fold
    models are kept in ``gnns``."""
    n = features.num_accounts
    fold = assign_folds(split.train, n, cfg.stack_folds, cfg.trees.seed + 1)
    oof = np.zeros(n)
    logits = []
    for k in range(cfg.stack_folds):
        part = Split(train=split.train[fold[split.train] != k], val=split.val, test=split.test)
        result = train(features, labels, part, replace(cfg.gnn, calibration=cfg.calibration))
        gnns[f"stack:gnn:{k}"] = result
        logit = result.score(features).fraud_logit
        oof[fold == k] = logit[fold == k]
        logits.append(logit)
        note(f"stacked: fold model {k + 1}/{cfg.stack_folds} trained")
    # The mean exactly as ``ServedModel`` computes it, so scores reproduce bit for bit.
    return np.where(fold >= 0, oof, np.mean(logits, axis=0))


def account_folds(train_idx: IntArray, n: int, folds: int, seed: int) -> IntArray:
    """The stacked family's fold per account (-1 outside training), as ``_out_of_fold``."""
    return assign_folds(train_idx, n, folds, seed + 1)
