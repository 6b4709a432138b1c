"""The credit model: five calibrated dimensions and a scorecard composite (docs/credit.md).

Each dimension is a small LightGBM model on its own feature block, trained on repayment
outcomes and calibrated (Platt) on validation accounts: its score is
``100 * (1 - P(default | that dimension's evidence))``. The composite adds the dimensions'
log-odds of repaying with the published weights of the job file, relative to the base rate,
and scales them as a scorecard: ``points = OFFSET + FACTOR * ln(odds of repaying)`` with 600
points at odds 19:1 and 50 points to double the odds, clipped to 350-950.

The social dimension's points are capped (``cap`` share of the range) and governed by the
policy: ``inclusion_only`` keeps only positive social points, so a composite is never below
what the other four give; ``symmetric`` keeps both signs; ``informational`` shows the
dimension without counting it; ``off`` does not compute it. ``p_default`` is the composite's
log-odds, calibrated once more on validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression

from creditgraph.ml.credit_features import (
    DIMENSIONS,
    Block,
    BoolArray,
    CreditData,
    Dimension,
    FloatArray,
    IntArray,
    features_at,
    prior_rates,
    targets_after,
)
from creditgraph.ml.credit_gnn import (
    MARGIN_COLUMN,
    SocialGNNModel,
    fit_linear_read,
    train_social_gnn,
)

Policy = Literal["inclusion_only", "symmetric", "informational", "off"]
#: How the social dimension is learned: boosted trees on one-hop neighbour aggregates, or
#: the relation-aware graph network of ``ml.credit_gnn``.
SocialModel = Literal["trees", "gnn"]
FACTOR = 50.0 / math.log(2.0)
OFFSET = 600.0 - FACTOR * math.log(19.0)
MIN_SCORE, MAX_SCORE = 350.0, 950.0
RANGE = MAX_SCORE - MIN_SCORE
#: Lower bounds of the bands, worst first; the review band is ``poor``.
BANDS: tuple[tuple[str, float], ...] = (
    ("very_poor", MIN_SCORE),
    ("poor", 525.0),
    ("fair", 600.0),
    ("good", 675.0),
    ("excellent", 750.0),
)
#: Accounts at or above this score are accepted without a person's review.
ACCEPT_CUTOFF = 600.0
#: The review band (``poor``) starts here: below it an application is declined outright.
REVIEW_CUTOFF = 525.0


def band_of(score: float) -> str:
    name = BANDS[0][0]
    for b, lo in BANDS:
        if score >= lo:
            name = b
    return name


def next_band(score: float) -> tuple[str, float] | None:
    for b, lo in BANDS:
        if score < lo:
            return b, lo
    return None


@dataclass(frozen=True)
class TrainSettings:
    """What a credit training run reads from the job file (``[credit]``)."""

    weights: Mapping[Dimension, float]
    identity_features: Sequence[str]
    cuts_days: Sequence[int] = (150, 300)
    horizon_days: int = 60
    val_share: float = 0.25
    learning_rate: float = 0.05
    num_leaves: int = 15
    max_rounds: int = 400
    seed: int = 0
    social_model: SocialModel = "trees"


@dataclass
class DimensionModel:
    """One dimension: boosted trees on its block (or, for ``social``, the graph network,
    whose margin is the block's last column), and the Platt map of their margin."""

    dimension: Dimension
    names: list[str]
    booster: lgb.Booster | None
    #: P(default) = sigmoid(a * margin + b).
    a: float
    b: float
    val_auroc: float = float("nan")
    gnn: SocialGNNModel | None = None

    def margin_and_contrib(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Raw margin per row and each feature's contribution to it (TreeSHAP, or the
        network's linear read; the last column is the expected margin)."""
        if self.gnn is not None:
            contrib = self.gnn.contributions(x)
        else:
            assert self.booster is not None
            contrib = np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1))
        return contrib.sum(axis=1), contrib

    def log_odds_good(self, x: FloatArray) -> FloatArray:
        m, _ = self.margin_and_contrib(x)
        return -(self.a * m + self.b)


@dataclass
class CreditModel:
    """A trained credit model with what serving needs to explain it."""

    version: str
    as_of: float
    prior_default: float
    prior_late: float
    weights: dict[Dimension, float]
    identity_features: list[str]
    dims: dict[Dimension, DimensionModel]
    #: p_default = sigmoid(final_a * composite_log_odds_bad + final_b).
    final_a: float
    final_b: float
    calibrated_policy: Policy
    calibrated_cap: float
    #: Per feature ("dim.name") the training quantiles 1..99 (counterfactual search grid).
    quantiles: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def lo_prior(self) -> float:
        return math.log((1 - self.prior_default) / self.prior_default)


@dataclass(frozen=True)
class Scored:
    """Credit outputs of a set of rows (arrays aligned with the rows)."""

    #: Per dimension: log-odds of repaying (NaN where not computed).
    log_odds: dict[Dimension, FloatArray]
    #: Per dimension: 0-100 score (NaN where not computed).
    scores: dict[Dimension, FloatArray]
    #: Per dimension: points counted in the composite (0 where not used).
    points: dict[Dimension, FloatArray]
    #: Per dimension: whether it counted.
    used: dict[Dimension, BoolArray]
    #: Social points before the guard (what symmetric use would have given).
    social_raw_points: FloatArray
    composite: FloatArray
    composite_without_social: FloatArray
    p_default: FloatArray
    #: Per dimension: TreeSHAP contributions in the dimension's own points (as if its weight
    #: were 1; times the weight they are composite points), rows x features.
    feature_points: dict[Dimension, FloatArray]


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-z))
    return out


def _auroc(y: IntArray, p: FloatArray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def training_rows(
    data: CreditData, as_of: float, settings: TrainSettings
) -> tuple[dict[Dimension, Block], IntArray, IntArray, float, float]:
    """Stacked examples of every cut: blocks, the account of each row, labels, priors."""
    blocks: dict[Dimension, list[FloatArray]] = {d: [] for d in DIMENSIONS}
    names: dict[Dimension, list[str]] = {}
    accounts: list[IntArray] = []
    labels: list[IntArray] = []
    p_d, p_l = prior_rates(data, as_of)
    for days in settings.cuts_days:
        t = as_of - days * 86_400.0
        owed, rows, y = targets_after(data, t, settings.horizon_days, as_of)
        if len(rows) == 0:
            continue
        got = features_at(data, t, rows, owed, p_d, p_l)
        for d in DIMENSIONS:
            blocks[d].append(got[d].x)
            names[d] = got[d].names
        accounts.append(rows)
        labels.append(y.astype(np.int64))
    if not accounts:
        raise ValueError("no obligation opened after any cut has a known outcome")
    out = {d: Block(names[d], np.vstack(blocks[d])) for d in DIMENSIONS}
    return out, np.concatenate(accounts), np.concatenate(labels), p_d, p_l


def _split(accounts: IntArray, share: float, seed: int) -> BoolArray:
    """Validation rows: every row of a share of accounts (an account's cuts stay together)."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(accounts)
    val_accounts = uniq[rng.random(len(uniq)) < share]
    return np.isin(accounts, val_accounts)


def _fit_dimension(
    dim: Dimension, block: Block, y: IntArray, val: BoolArray, s: TrainSettings
) -> DimensionModel:
    params = {
        "objective": "binary",
        "learning_rate": s.learning_rate,
        "num_leaves": s.num_leaves,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.9,
        "lambda_l2": 1.0,
        "seed": s.seed,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    train = lgb.Dataset(block.x[~val], y[~val], feature_name=_safe(block.names))
    valid = lgb.Dataset(block.x[val], y[val], reference=train)
    booster = lgb.train(
        params,
        train,
        num_boost_round=s.max_rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    margin = np.asarray(booster.predict(block.x[val], raw_score=True))
    a, b = _platt(margin, y[val])
    model = DimensionModel(dim, block.names, booster, a, b)
    model.val_auroc = _auroc(y[val], margin)
    return model


def _fit_social_gnn(
    data: CreditData,
    as_of: float,
    s: TrainSettings,
    agg: Block,
    y: IntArray,
    val: BoolArray,
    p_d: float,
    p_l: float,
) -> tuple[DimensionModel, Block]:
    """The graph network on the same rows as the trees (the cuts of ``training_rows``, in
    its order), Platt-calibrated on the same validation accounts. Returns the dimension and
    the social block with the network's margin as its last column."""
    cuts: list[tuple[float, IntArray, FloatArray, BoolArray]] = []
    start = 0
    for days in s.cuts_days:
        t = as_of - days * 86_400.0
        _, rows, yc = targets_after(data, t, s.horizon_days, as_of)
        if len(rows) == 0:
            continue
        end = start + len(rows)
        cuts.append((t, rows, yc.astype(np.float64), val[start:end]))
        start = end
    gnn, margins = train_social_gnn(data, cuts, p_d, p_l, seed=s.seed)
    margin = np.concatenate(margins)
    fit_linear_read(gnn, agg.x[~val], margin[~val])
    a, b = _platt(margin[val], y[val])
    model = DimensionModel("social", [*agg.names, MARGIN_COLUMN], None, a, b, gnn=gnn)
    model.val_auroc = _auroc(y[val], margin[val])
    return model, Block(model.names, np.column_stack([agg.x, margin]))


def _safe(names: Sequence[str]) -> list[str]:
    return [n.replace(".", "_") for n in names]


def _platt(score: FloatArray, y: IntArray) -> tuple[float, float]:
    """P(y=1) = sigmoid(a * score + b), fitted by (lightly regularised) logistic regression."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    lr = LogisticRegression(C=100.0).fit(score.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def train_credit(
    data: CreditData,
    as_of: float,
    settings: TrainSettings,
    *,
    version: str,
    policy: Policy,
    cap: float,
) -> CreditModel:
    """Train the five dimensions and calibrate the composite (``policy`` and ``cap`` as
    served) on validation accounts."""
    blocks, accounts, y, p_d, p_l = training_rows(data, as_of, settings)
    val = _split(accounts, settings.val_share, settings.seed)
    own: tuple[Dimension, ...] = DIMENSIONS if settings.social_model == "trees" else DIMENSIONS[:4]
    dims = {d: _fit_dimension(d, blocks[d], y, val, settings) for d in own}
    if settings.social_model == "gnn":
        dims["social"], blocks["social"] = _fit_social_gnn(
            data, as_of, settings, blocks["social"], y, val, p_d, p_l
        )
    model = CreditModel(
        version=version,
        as_of=as_of,
        prior_default=max(min(p_d, 0.99), 0.01),
        prior_late=p_l,
        weights={d: float(settings.weights[d]) for d in DIMENSIONS},
        identity_features=list(settings.identity_features),
        dims=dims,
        final_a=1.0,
        final_b=0.0,
        calibrated_policy=policy,
        calibrated_cap=cap,
    )
    consent = np.ones(len(y), dtype=bool)
    scored = score_blocks(model, {d: b.x for d, b in blocks.items()}, consent, policy, cap)
    lo_bad = -(scored.composite - OFFSET) / FACTOR
    model.final_a, model.final_b = _platt(lo_bad[val], y[val])
    for d, b in blocks.items():
        for j, name in enumerate(b.names):
            model.quantiles[f"{d}.{name}"] = np.quantile(
                b.x[~val, j], np.linspace(0.01, 0.99, 99)
            ).tolist()
    model.metrics = {
        "training_rows": len(y),
        "validation_rows": int(val.sum()),
        "training_default_rate": float(y.mean()),
        "validation_auroc": {d: dims[d].val_auroc for d in DIMENSIONS},
        "validation_auroc_composite": _auroc(y[val], -scored.composite[val]),
        "cuts_days": list(settings.cuts_days),
        "horizon_days": settings.horizon_days,
    }
    return model


def score_blocks(
    model: CreditModel,
    blocks: Mapping[Dimension, FloatArray],
    consent: BoolArray,
    policy: Policy,
    cap: float,
) -> Scored:
    """Score design matrices (rows aligned across dimensions). Rows without ``consent`` get
    no social dimension at all; ``policy`` ``off`` computes it for nobody."""
    n = len(consent)
    lo: dict[Dimension, FloatArray] = {}
    scores: dict[Dimension, FloatArray] = {}
    points: dict[Dimension, FloatArray] = {}
    used: dict[Dimension, BoolArray] = {}
    fpoints: dict[Dimension, FloatArray] = {}
    base = OFFSET + FACTOR * model.lo_prior
    for d in DIMENSIONS:
        x = blocks[d]
        m = model.dims[d]
        w = model.weights[d]
        computed = np.ones(n, dtype=bool) if d != "social" else consent & (policy != "off")
        lo_d = np.full(n, np.nan)
        contrib = np.zeros((n, len(m.names) + 1))
        if computed.any():
            margin, c = m.margin_and_contrib(x[computed])
            lo_d[computed] = -(m.a * margin + m.b)
            contrib[computed] = c
        lo[d] = lo_d
        scores[d] = 100.0 * _sigmoid(lo_d)
        pts = np.where(computed, FACTOR * w * (lo_d - model.lo_prior), 0.0)
        # Each feature's share of the dimension's points (TreeSHAP in margin units).
        fpoints[d] = -FACTOR * m.a * contrib[:, :-1]
        points[d] = pts
        used[d] = computed
    raw_social = points["social"].copy()
    limit = cap * RANGE
    if policy == "inclusion_only":
        points["social"] = np.clip(raw_social, 0.0, limit)
    elif policy == "symmetric":
        points["social"] = np.clip(raw_social, -limit, limit)
    else:
        points["social"] = np.zeros(n)
        used["social"] = np.zeros(n, dtype=bool)
    four = base + sum(points[d] for d in DIMENSIONS if d != "social")
    composite = np.clip(four + points["social"], MIN_SCORE, MAX_SCORE)
    without = np.clip(four, MIN_SCORE, MAX_SCORE)
    lo_bad = -(four + points["social"] - OFFSET) / FACTOR
    p_default = _sigmoid(model.final_a * lo_bad + model.final_b)
    return Scored(lo, scores, points, used, raw_social, composite, without, p_default, fpoints)


def score_data(
    model: CreditModel, data: CreditData, rows: IntArray, policy: Policy, cap: float
) -> tuple[Scored, dict[Dimension, Block]]:
    """Score ``rows`` of ``data`` as of the model's ``as_of``: the obligations open then are
    the ones under assessment."""
    t = model.as_of
    owed = np.zeros(len(data.ob_account), dtype=bool)
    blocks = features_at(data, t, rows, owed, model.prior_default, model.prior_late)
    gnn = model.dims["social"].gnn
    if gnn is not None:
        # Off by policy: not computed (the column is there for the block's shape only).
        margin = (
            gnn.margins(data, t, rows, model.prior_default, model.prior_late)
            if policy != "off"
            else np.zeros(len(rows))
        )
        agg = blocks["social"]
        blocks["social"] = Block([*agg.names, MARGIN_COLUMN], np.column_stack([agg.x, margin]))
    scored = score_blocks(
        model, {d: b.x for d, b in blocks.items()}, data.consent[rows], policy, cap
    )
    return scored, blocks
