"""Gradient-boosted tree candidates (LightGBM) and their design matrices.

One class, ``TreeModel``, covers four families that differ only in which column blocks they
read; the blocks nest, so a richer family can always fall back to what a poorer one learns:

| family | own features | neighbour aggregates | label-aware | out-of-fold GNN logits |
|---|---|---|---|---|
| ``trees`` (the tree baseline) | yes | yes | | |
| ``labels`` | yes | yes | yes | |
| ``stacked`` | yes | yes | yes | yes |
| ``social_trees`` (relationship-only) | | one hop only | | |

Own features are the standardised inputs the GNN reads; aggregates and label-aware columns
come from ``ml.neighbours``. The stacked family adds, per GNN architecture it stacks, the
fraud logit of K GNNs trained on K-1 folds of the training labels each: a training account's
column comes from the model that never saw its label, every other account's is the mean of
the K models. (Embeddings of a GNN that trained on an account's label would let the trees
re-learn that fit; embeddings of the K fold models live in K unrelated bases. So only the
out-of-fold logits cross over.)

Every family stops early on validation AUPRC and is calibrated on validation, like the GNN,
so all candidates are compared like for like.

Seed bagging (``TreeConfig.bag``): a family fits K boosters that differ only in seed (row
bagging and column sampling randomise each), each early-stopped on validation, and serves
their mean raw margin. The K are merged into ONE LightGBM booster (``merge_boosters``: every
tree's outputs scaled by 1/K, the trees concatenated), so calibration, TreeSHAP, leaf
indices, ``FastRow``, path attribution and the saved text model all read a single booster
exactly as they read an unbagged one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import torch

from creditgraph.ml.calibrate import CalibrationMethod, Calibrator
from creditgraph.ml.fast_row import FastRow
from creditgraph.ml.features import F32Array, FeatureSet, Standardizer
from creditgraph.ml.neighbours import assign_folds, label_features, neighbour_aggregates
from creditgraph.ml.pathattr import LeafTable, leaf_table, path_contributions

TreeFamily = Literal["trees", "labels", "stacked", "social_trees"]
FloatArray = npt.NDArray[np.float64]
#: Rows per ``pred_leaf`` call in ``grouped_paths``: bounds the leaf-index matrix.
PATH_CHUNK = 50_000


@dataclass(frozen=True)
class TreeConfig:
    learning_rate: float = 0.05
    num_leaves: int = 15
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    #: Trees see a random share of columns per tree: hundreds of aggregate columns are
    #: strongly correlated, and sampling them makes the model less brittle.
    colsample: float = 0.5
    min_data_in_leaf: int = 10
    #: Folds of the out-of-fold label-aware columns and of the stacked GNN logits.
    folds: int = 5
    calibration: CalibrationMethod = "platt"
    seed: int = 0
    #: LightGBM threads; 1 keeps the trainer off the cores a serving process needs.
    threads: int = 1
    #: Boosters per family, seeds ``seed + k``, merged into one booster serving their mean
    #: raw margin (``merge_boosters``). 5 is the common a-priori bag size, fixed before any
    #: run and NOT tuned on the reported graphs; 1 is the single booster of before, tree for
    #: tree (``training/large.toml``: the 1M job's time budget). Training costs ~K times.
    bag: int = 5


@dataclass
class TreeModel:
    """A fitted tree candidate and everything needed to rebuild its columns."""

    family: TreeFamily
    booster: lgb.Booster
    standardizer: Standardizer
    calibrator: Calibrator
    names: list[str]
    #: Boosting rounds the booster predicts with: the best iteration of a single booster,
    #: the members' best iterations summed for a merged bag (its trees, one per round).
    best_round: int
    #: Training labels by account id (label-aware families): what scoring may see.
    known: dict[str, int] = field(default_factory=dict)
    #: Out-of-fold folds of the label-aware columns at training: scoring scales neighbour
    #: counts as training did for accounts outside the folds.
    folds: int = 1
    #: Each bag member's best iteration (``TreeConfig.bag`` of them); empty: not recorded
    #: (one booster).
    member_rounds: list[int] = field(default_factory=list)
    #: Leaf tables of ``grouped_paths`` by grouping, built on first use.
    _tables: dict[tuple[int, tuple[str, ...]], LeafTable] = field(
        default_factory=dict, repr=False, compare=False
    )
    #: The single-row leaf reader of ``row_paths``, built on first use.
    _leaf_row: list[FastRow] = field(default_factory=list, repr=False, compare=False)

    @property
    def bag(self) -> int:
        """Boosters merged into ``booster`` (1: a single booster)."""
        return max(1, len(self.member_rounds))

    @property
    def uses_labels(self) -> bool:
        return self.family in ("labels", "stacked")

    def raw(self, x: F32Array) -> FloatArray:
        return np.asarray(
            self.booster.predict(x, raw_score=True, num_threads=_threads(len(x))),
            dtype=np.float64,
        )

    def contributions(self, x: F32Array) -> FloatArray:
        """TreeSHAP: ``[n, columns + 1]`` additive contributions to the raw score (last
        column: the expected value), from LightGBM's ``pred_contrib``."""
        out = self.booster.predict(x, pred_contrib=True, num_threads=_threads(len(x)))
        return np.asarray(out, dtype=np.float64)

    def grouped_paths(
        self, x: F32Array, own: int, relations: list[str]
    ) -> tuple[FloatArray, FloatArray]:
        """Path attribution (``ml.pathattr``) grouped into the first ``own`` columns one by
        one, then one group per relation (every column named ``REL:...``); columns of
        neither kind are left out. Returns ``([n, own + R], [n] raw scores)``: the raw
        scores are those of ``raw``, read off the same leaves."""
        table = self._table(own, relations)
        n = len(x)
        contrib = np.zeros((n, own + len(relations)))
        raw = np.zeros(n)
        for begin in range(0, n, PATH_CHUNK):
            end = min(begin + PATH_CHUNK, n)
            contrib[begin:end], raw[begin:end] = path_contributions(
                self.booster, table, x[begin:end], _threads(end - begin)
            )
        return contrib, raw

    def row_paths(self, row: F32Array, own: int, relations: list[str]) -> tuple[FloatArray, float]:
        """``grouped_paths`` of one row (``[1, columns]``) for a request: the leaves through
        LightGBM's single-row C path (``ml.fast_row``), then a gather of one table row per
        tree. Returns (``[own + R]`` contributions, raw score)."""
        table = self._table(own, relations)
        if not self._leaf_row:
            self._leaf_row.append(FastRow(self.booster, len(self.names), leaves=True))
        leaves = self._leaf_row[0](np.asarray(row, dtype=np.float64)).astype(np.int64)
        index = leaves + table.offset[: len(leaves)]
        return table.table[index].sum(axis=0), float(table.leaf_value[index].sum())

    def _table(self, own: int, relations: list[str]) -> LeafTable:
        key = (own, tuple(relations))
        if key not in self._tables:
            group = column_groups(self.names, own, relations)
            self._tables[key] = leaf_table(self.booster, group, own + len(relations))
        return self._tables[key]


def column_groups(names: list[str], own: int, relations: list[str]) -> npt.NDArray[np.int64]:
    """Group of each column: j for the first ``own`` columns, ``own + k`` for a column of
    relation k (named ``REL:...``), -1 otherwise."""
    position = {rel: own + k for k, rel in enumerate(relations)}
    group = np.full(len(names), -1, dtype=np.int64)
    for j, name in enumerate(names):
        if j < own:
            group[j] = j
        elif ":" in name:
            group[j] = position.get(name.split(":", 1)[0], -1)
    return group


def _threads(rows: int) -> int:
    # Batch prediction uses every core; a single request row stays on its own thread
    # (an OpenMP team per request would cost more than the row).
    return (os.cpu_count() or 1) if rows > 1_000 else 1


@dataclass(frozen=True)
class Base:
    """Standardised own features and neighbour aggregates: the columns all families share."""

    own: F32Array
    own_names: list[str]
    aggregates: list[F32Array]
    aggregate_names: list[str]


def base_blocks(features: FeatureSet, standardizer: Standardizer) -> Base:
    x = torch.from_numpy(standardizer.transform(features.x, features.names))
    own_names = list(standardizer.output_names)
    agg, agg_names = neighbour_aggregates(x, own_names, features)
    return Base(x.numpy(), own_names, [b.numpy() for b in agg], agg_names)


def design(
    features: FeatureSet,
    standardizer: Standardizer,
    family: TreeFamily,
    *,
    known: npt.NDArray[np.int8] | None = None,
    fold: npt.NDArray[np.int64] | None = None,
    folds: int = 1,
    gnn_logits: dict[str, FloatArray] | None = None,
    base: Base | None = None,
) -> tuple[F32Array, list[str]]:
    """The family's ``[n, columns]`` float32 matrix and its column names.

    ``known``/``fold``/``folds`` feed ``label_features`` (label-aware families; ``fold``
    defaults to "no training account", i.e. every account sees every known label);
    ``gnn_logits`` maps a column name to a per-account logit (stacked family); ``base``
    is ``base_blocks(features, standardizer)`` when the caller already has it (the blocks
    every family shares, the costly part at scale).
    """
    if base is None:
        base = base_blocks(features, standardizer)
    blocks: list[F32Array] = []
    names: list[str] = []
    if family != "social_trees":
        blocks.append(base.own)
        names += base.own_names
    at = 0
    for block in base.aggregates:
        block_names = base.aggregate_names[at : at + block.shape[1]]
        at += block.shape[1]
        # Two-hop aggregates contain the account itself (a -> j -> a): not relationship-only.
        if family == "social_trees" and block_names[0].split(":")[1] in ("mean2", "max2"):
            continue
        blocks.append(block)
        names += block_names
    if family in ("labels", "stacked"):
        if known is None:
            raise ValueError(f"the {family} family needs the training labels")
        n = features.num_accounts
        lab, lab_names = label_features(
            features, known, np.full(n, -1) if fold is None else fold, folds
        )
        blocks.append(lab)
        names += lab_names
    if family == "stacked":
        for name, logit in (gnn_logits or {}).items():
            blocks.append(logit.astype(np.float32)[:, None])
            names.append(name)
    width = sum(b.shape[1] for b in blocks)
    out = np.empty((features.num_accounts, width), dtype=np.float32)
    at = 0
    for b in blocks:
        out[:, at : at + b.shape[1]] = b
        at += b.shape[1]
    return out, names


def fit(
    x: F32Array,
    labels: npt.NDArray[np.int8],
    train: npt.NDArray[np.int64],
    val: npt.NDArray[np.int64],
    names: list[str],
    cfg: TreeConfig,
) -> tuple[lgb.Booster, list[int]]:
    """LightGBM on ``train``, early-stopped on validation AUPRC, ``cfg.bag`` times (seeds
    ``cfg.seed + k``). Returns the booster and each member's best iteration: with one
    member, LightGBM's booster itself; with more, ``merge_boosters`` of them."""
    if cfg.bag < 1:
        raise ValueError(f"bag must be at least 1, got {cfg.bag}")
    members = [fit_one(x, labels, train, val, names, cfg, cfg.seed + k) for k in range(cfg.bag)]
    rounds = [int(b.best_iteration) for b in members]
    return (members[0] if len(members) == 1 else merge_boosters(members)), rounds


def fit_one(
    x: F32Array,
    labels: npt.NDArray[np.int8],
    train: npt.NDArray[np.int64],
    val: npt.NDArray[np.int64],
    names: list[str],
    cfg: TreeConfig,
    seed: int,
) -> lgb.Booster:
    """One LightGBM booster on ``train`` with ``seed``, early-stopped on validation AUPRC."""
    y_train = labels[train]
    positives = max(1, int(y_train.sum()))
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": "average_precision",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.colsample,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "scale_pos_weight": (len(y_train) - positives) / positives,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": cfg.threads,
        "verbosity": -1,
    }
    train_set = lgb.Dataset(x[train], y_train, feature_name=safe_names(names), free_raw_data=True)
    val_set = lgb.Dataset(x[val], labels[val], reference=train_set)
    return lgb.train(
        params,
        train_set,
        num_boost_round=cfg.max_rounds,
        valid_sets=[val_set],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )


#: A tree block of LightGBM's text model: ``Tree=<i>`` and its ``key=value`` lines.
_TREE = re.compile(r"^Tree=\d+\n", re.MULTILINE)
#: The feature importances section after the trees (up to the parameters or the end).
_IMPORTANCES = re.compile(
    r"\nfeature_importances:\n.*?(?=\nparameters:|\npandas_categorical:|\Z)", re.DOTALL
)
#: Per-node outputs of a tree block: scaled by 1/K when K trees are averaged.
_OUTPUTS = ("leaf_value", "internal_value")


def merge_boosters(members: list[lgb.Booster]) -> lgb.Booster:
    """One booster whose raw margin is the mean of ``members``' raw margins.

    Each member is taken at its best iteration (``model_to_string(num_iteration=...)``,
    what ``predict`` uses). A raw margin is the sum of the leaf values a row reaches, one per
    tree, so dividing every leaf value by K and concatenating the K members' trees gives the
    mean; the members' first trees carry their initial score, scaled alike. Internal node
    values (the expected outputs of ``dump_model``) and ``shrinkage`` are scaled with them;
    counts and weights (TreeSHAP's covers) are unchanged, so TreeSHAP of the merged booster
    is the mean of the members' TreeSHAP. The header is the first member's with
    ``tree_sizes`` recomputed (LightGBM parses each tree at those byte offsets); the
    feature importances are left out (LightGBM recomputes them from the trees on save).
    Single-output models without linear trees only (what ``fit`` trains)."""
    if not members:
        raise ValueError("no booster to merge")
    k = len(members)
    head: list[str] = []
    tail = ""
    blocks: list[str] = []
    for i, booster in enumerate(members):
        text = booster.model_to_string(num_iteration=booster.best_iteration)
        header, rest = text.split("\ntree_sizes=", 1)
        lines = header.split("\n")
        trees, after = rest.split("\n", 1)[1].split("end of trees", 1)
        if i == 0:
            head, tail = lines, _IMPORTANCES.sub("", after)
        elif _model_keys(lines) != _model_keys(head):
            raise ValueError("boosters to merge differ in objective, classes or features")
        for body in _TREE.split(trees)[1:]:
            blocks.append(_scaled_tree(body, k))
    if "num_tree_per_iteration=1" not in head or "num_class=1" not in head:
        raise ValueError("only single-output boosters can be merged")
    numbered = [f"Tree={t}\n{body}" for t, body in enumerate(blocks)]
    sizes = " ".join(str(len(b.encode("utf-8"))) for b in numbered)
    text = "\n".join(head) + f"\ntree_sizes={sizes}\n\n" + "".join(numbered) + "end of trees" + tail
    return lgb.Booster(model_str=text)


def _model_keys(header: list[str]) -> list[str]:
    # What must agree between members; feature_infos (value ranges of the binned training
    # sample, which the seed draws) may differ and is the first member's.
    return [line for line in header if not line.startswith("feature_infos=")]


def _scaled_tree(body: str, k: int) -> str:
    """A tree block's lines (after ``Tree=<i>``) with its outputs divided by ``k``."""
    lines = body.rstrip("\n").split("\n")
    out = []
    for line in lines:
        key, _, value = line.partition("=")
        if key == "is_linear" and value.strip() != "0":
            raise ValueError("linear trees cannot be merged")
        if key in _OUTPUTS and value:
            value = " ".join(repr(float(v) / k) for v in value.split(" "))
        elif key == "shrinkage":
            value = repr(float(value) / k)
        out.append(f"{key}={value}")
    return "\n".join(out) + "\n\n\n"


def known_labels(
    labels: npt.NDArray[np.int8], train: npt.NDArray[np.int64]
) -> npt.NDArray[np.int8]:
    """Training labels only: -1 everywhere else (validation and test labels stay unseen)."""
    known = np.full(len(labels), -1, dtype=np.int8)
    known[train] = labels[train]
    return known


def known_for(account_ids: list[str], table: dict[str, int]) -> npt.NDArray[np.int8]:
    """``known`` for a (possibly newer) snapshot from the saved training labels by id."""
    return np.fromiter(
        (table.get(a, -1) for a in account_ids), dtype=np.int8, count=len(account_ids)
    )


def training_folds(train: npt.NDArray[np.int64], n: int, cfg: TreeConfig) -> npt.NDArray[np.int64]:
    return assign_folds(train, n, cfg.folds, cfg.seed)


def safe_names(names: list[str]) -> list[str]:
    # LightGBM rejects JSON-special characters in feature names.
    return [name.replace(":", "__") for name in names]
