"""Batch reasons for any served model, in the reason codes of ``ml.attribution``.

A served model is a sum of members in logit units (a GNN; a tree family; or the stacked
blend ``mean_m (logit_m - c_m) / s_m``), so a reason is the same linear combination of the
members' attributions:
- GNN members: ``ml.attribution.attribute`` (gradient * input for own features, relation
  occlusion for relations);
- tree members: TreeSHAP from LightGBM (``pred_contrib``) for the rows in ``exact`` (all
  rows by default; batch scoring passes the accounts a reviewer reads first), and path
  attribution (``ml.pathattr``, additive and exact in total like TreeSHAP, at the cost of a
  prediction) for every other row: TreeSHAP over a million rows takes longer than the rest
  of a retrain. Columns are grouped back into what a person can check: an own-feature
  column is that feature; every column of relation ``REL`` (its neighbour aggregates, its
  neighbour count, its label-aware shares) is "the REL relation". The stacked trees'
  out-of-fold GNN-logit column is left out here: the blend's GNN member carries that signal
  with its own attribution.
Social reasons come from the served relationship-only candidate the same way (its GNN's
social head, or ``social_trees``' SHAP by relation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from creditgraph.domain import IntArray
from creditgraph.ml.attribution import Attribution, attribute
from creditgraph.ml.candidates import (
    ARCHITECTURE,
    PATHS,
    ServedModel,
    member_weights,
    tree_family,
)
from creditgraph.ml.features import FeatureSet
from creditgraph.ml.trees import TreeFamily, column_groups

FloatArray = npt.NDArray[np.float64]
#: Rows per ``pred_contrib`` call: contributions are [rows, columns] float64, so a chunk
#: bounds memory (50k x 900 columns is 360 MB) while keeping LightGBM's per-call overhead low.
CHUNK = 50_000


def served_attribution(
    served: ServedModel,
    features: FeatureSet,
    cache: dict[str, Any] | None = None,
    *,
    exact: IntArray | None = None,
) -> Attribution:
    """Own-feature and relation attributions of every account for ``served``'s two scores
    (``cache``: the one ``served.score`` filled for the same ``features``, if any; with
    ``PATHS`` set, it holds the tree members' path attributions already). Tree members get
    TreeSHAP at the rows ``exact`` (None: every row) and path attribution elsewhere."""
    relations = list(features.relations)
    n = features.num_accounts
    std = served.standardizer
    own = list(std.output_names)
    fraud_features = np.zeros((n, len(own)), dtype=np.float32)
    fraud_rel = np.zeros((n, len(relations)))
    social_rel = np.zeros((n, len(relations)))
    if cache is None:
        cache = {}

    def add_gnn(key: str, weight: float, *, social: bool) -> None:
        att = attribute(served.gnns[key], features)
        cols = [relations.index(r) for r in att.relations]
        if social:
            social_rel[:, cols] += weight * att.social_relations
            return
        fraud_features[:] += (weight * att.features).astype(np.float32)
        fraud_rel[:, cols] += weight * att.fraud_relations

    def add_trees(family: TreeFamily, weight: float, *, social: bool) -> None:
        own_part, rel_part = tree_contributions(served, family, features, cache, exact=exact)
        if social:
            social_rel[:] += weight * rel_part
            return
        if own_part is not None:
            fraud_features[:] += (weight * own_part).astype(np.float32)
        fraud_rel[:] += weight * rel_part

    for name, social in ((served.fraud, False), (served.social, True)):
        for member, weight, _ in member_weights(served, name):
            base = member.removesuffix(":social")
            if base in ARCHITECTURE:
                add_gnn(base, weight, social=social)
            elif base == "gnn_folds":
                for k in range(served.stack_folds):
                    add_gnn(f"stack:gnn:{k}", weight / served.stack_folds, social=social)
            else:
                add_trees(tree_family(base), weight, social=social)

    col = {name: j for j, name in enumerate(features.names)}
    neighbours = np.zeros((n, len(relations)), dtype=np.int64)
    for k, rel in enumerate(relations):
        neighbours[:, k] = np.bincount(features.edge_index[rel][1].numpy(), minlength=n)
    return Attribution(
        input_names=own,
        first_indicator=len(std.names),
        features=fraud_features,
        raw=features.x,
        raw_column=np.array([col.get(c, -1) for c in [*std.names, *std.missing]], dtype=np.int64),
        relations=relations,
        fraud_relations=fraud_rel,
        social_relations=social_rel,
        neighbours=neighbours,
    )


def tree_contributions(
    served: ServedModel,
    family: TreeFamily,
    features: FeatureSet,
    cache: dict[str, Any] | None = None,
    *,
    exact: IntArray | None = None,
) -> tuple[FloatArray | None, FloatArray]:
    """``family``'s contributions grouped: own-feature columns ``[n, own]`` (None for a
    family without own features) and per relation of ``features`` ``[n, R]``; TreeSHAP at
    the rows ``exact`` (None: all), path attribution at the others."""
    model = served.trees[family]
    x, names = served.tree_design(family, features, cache)
    relations = list(features.relations)
    has_own = family != "social_trees"
    own = len(served.standardizer.output_names) if has_own else 0
    n = x.shape[0]
    if exact is None:
        rows = np.arange(n)
        grouped = np.zeros((n, own + len(relations)))
    else:
        rows = np.asarray(exact, dtype=np.int64)
        hit = None if cache is None else cache.get(f"{PATHS}:{family}")
        grouped = hit if hit is not None else model.grouped_paths(x, own, relations)[0]
        grouped = grouped.copy()
    # One-hot of column -> group: a matmul sums each relation's columns.
    group = column_groups(names, own, relations)
    onehot = np.zeros((len(names), own + len(relations)))
    kept = np.flatnonzero(group >= 0)
    onehot[kept, group[kept]] = 1.0
    for begin in range(0, len(rows), CHUNK):
        chunk = rows[begin : begin + CHUNK]
        grouped[chunk] = model.contributions(x[chunk])[:, :-1] @ onehot
    return (grouped[:, :own] if has_own else None), grouped[:, own:]
