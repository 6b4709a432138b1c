"""One account's score from its capped neighbourhood, for ANY served model.

``ml.inductive.CenterModel`` is the fast path written for the relational GNN. Every other
champion (trees, label-aware trees, the stacked blend, the wavelet GNN, or a tree model for
social credit) is scored here as batch scoring does it, on the small computation graph the
inductive scorer samples (the account, up to 15 neighbours per relation, up to 10 of
theirs): each member runs on that subgraph as if it were the whole graph and the centre's
value is read back. With no cap binding, the centre's neighbour aggregates, label shares
and GNN messages are exactly the batch values. Where a cap binds, the centre's neighbour
counts would read the sample size, so they are put back to its full counts (the count
column; labelled and fraud neighbour counts scaled by full over sampled), while means,
maxima and shares stay estimates from the sample.

Reasons, in logit units as in batch scoring: for tree members the path attribution of the
centre's row (``ml.pathattr``: read off the same leaves as the score, so reasons cost no
second pass; ``exact=True`` uses TreeSHAP instead), own features and every column of a
relation summed into that relation; relation occlusion on the subgraph for GNN members;
weighted by the blend for ``stacked``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from creditgraph.ml.candidates import ARCHITECTURE, ServedModel, member_weights, tree_family
from creditgraph.ml.features import F32Array, FeatureSet
from creditgraph.ml.inductive import ComputationGraph
from creditgraph.ml.model import GraphInput
from creditgraph.ml.neighbours import LABEL_COLUMNS, center_aggregates, neighbour_aggregates
from creditgraph.ml.trees import Base, TreeFamily, design

FloatArray = npt.NDArray[np.float64]
#: Tree families whose row is own features and neighbour aggregates only: a request computes
#: just the centre's aggregates (``neighbours.center_aggregates``). The label-aware families
#: also read label shares over the whole subgraph.
CENTER_ONLY: frozenset[str] = frozenset({"trees", "social_trees"})


@dataclass(frozen=True)
class ServedCenterScore:
    fraud_logit: float
    social_logit: float
    #: Own-feature contributions to the fraud logit (``Standardizer.output_names`` order).
    contributions: F32Array
    #: Per relation (``ServedCenter.relations`` order), contribution to each logit.
    relation_fraud: FloatArray
    relation_social: FloatArray


class ServedCenter:
    """``ServedModel`` evaluated at the centre of a ``ComputationGraph``."""

    def __init__(
        self,
        served: ServedModel,
        relations: list[str],
        *,
        exact: bool = False,
        center_only: bool = True,
        batch_occlusion: bool = True,
    ) -> None:
        """``exact``: tree reasons by TreeSHAP (a second, costlier pass per tree model)
        instead of path attribution read off the scoring pass (``ml.pathattr``).
        ``center_only``: the request path (the centre's row only, single-row leaves);
        False runs every tree family on the whole subgraph through ``Booster.predict``, the
        earlier path, kept for the families that need it and for comparisons.
        ``batch_occlusion``: a GNN member's forward and its relation occlusions run as ONE
        forward over disjoint copies of the subgraph (``_occlusion_copies``); False runs one
        forward per occluded relation (the earlier path, for comparisons)."""
        self.served = served
        self.relations = list(relations)
        self.exact = exact
        self.center_only = center_only
        self.batch_occlusion = batch_occlusion
        own = len(served.standardizer.output_names)
        for family, model in served.trees.items():
            # Build the leaf tables now, not on the first request.
            model.grouped_paths(
                np.zeros((1, len(model.names)), dtype=np.float32),
                0 if family == "social_trees" else own,
                self.relations,
            )
        # Trees read two hops (2-hop aggregates and label shares); GNNs their depth.
        self.num_layers = max([2, *(r.model.num_layers for r in served.gnns.values())])
        # Per tree family, built on first use (column layouts are fixed per model).
        self._groups: dict[str, FloatArray] = {}
        self._index: dict[str, dict[str, int]] = {}
        self._layouts: dict[str, list[str]] = {}
        # ``design``'s shape for one row: families in ``CENTER_ONLY`` read only ``base``.
        self._one_row = FeatureSet(
            account_ids=[""],
            names=[],
            x=np.empty((1, 0), dtype=np.float32),
            log_columns=frozenset(),
            edge_index={},
            edge_weight={},
        )

    def __call__(
        self,
        graph: ComputationGraph,
        account_ids: Callable[[], list[str]],
        counts: dict[str, float],
    ) -> ServedCenterScore:
        """``account_ids``: gives the ids of the local nodes (asked only by members that
        read labels); ``counts``: the centre's full number of neighbours per relation."""
        c = graph.center
        std = self.served.standardizer
        own_names = list(std.output_names)
        into = np.bincount(graph.relation[graph.receiver == c], minlength=len(self.relations))
        sampled = {rel: float(into[k]) for k, rel in enumerate(self.relations)}
        cache: dict[str, Any] = {}
        gnn_out: dict[str, tuple[float, float, FloatArray, FloatArray]] = {}

        def local_graph() -> FeatureSet:
            """The subgraph as a ``FeatureSet`` (torch edges per relation), built on first
            use: GNN members and label-aware trees run on all of it."""
            if "local" not in cache:
                edge_index: dict[str, torch.Tensor] = {}
                edge_weight: dict[str, torch.Tensor] = {}
                for k, rel in enumerate(self.relations):
                    keep = graph.relation == k
                    pair = np.stack([graph.sender[keep], graph.receiver[keep]]).astype(np.int64)
                    edge_index[rel] = torch.from_numpy(pair)
                    edge_weight[rel] = torch.from_numpy(graph.weight[keep].astype(np.float32))
                cache["local"] = FeatureSet(
                    account_ids=account_ids(),
                    names=[],
                    x=np.empty((graph.num_nodes, 0), dtype=np.float32),
                    log_columns=frozenset(),
                    edge_index=edge_index,
                    edge_weight=edge_weight,
                )
            local: FeatureSet = cache["local"]
            return local

        def gnn(key: str) -> tuple[float, float, FloatArray, FloatArray]:
            """(fraud, social) at the centre and their relation occlusions."""
            if key not in gnn_out:
                local = local_graph()
                edge_index, edge_weight = local.edge_index, local.edge_weight
                model = self.served.gnns[key].model
                occluded = [k for k, rel in enumerate(self.relations) if sampled[rel]]
                with torch.no_grad():
                    if self.batch_occlusion:
                        x, edge_index, edge_weight = _occlusion_copies(
                            graph.x, edge_index, edge_weight, self.relations, occluded
                        )
                        out = model(GraphInput(x, edge_index, edge_weight))
                        rows = torch.arange(len(occluded) + 1) * graph.num_nodes + c
                        fraud = out.fraud_logit[rows].double().numpy()
                        social = out.social_logit[rows].double().numpy()
                    else:
                        fraud, social = np.zeros(len(occluded) + 1), np.zeros(len(occluded) + 1)
                        for j, k in enumerate([-1, *occluded]):
                            rel = self.relations[k] if k >= 0 else None
                            rest = {r: e for r, e in edge_index.items() if r != rel}
                            weights = {r: w for r, w in edge_weight.items() if r != rel}
                            o = model(GraphInput(graph.x, rest, weights))
                            fraud[j], social[j] = float(o.fraud_logit[c]), float(o.social_logit[c])
                    f, s = float(fraud[0]), float(social[0])
                    occ_f, occ_s = np.zeros(len(self.relations)), np.zeros(len(self.relations))
                    occ_f[occluded] = f - fraud[1:]
                    occ_s[occluded] = s - social[1:]
                gnn_out[key] = (f, s, occ_f, occ_s)
            return gnn_out[key]

        def tree_row(family: TreeFamily) -> tuple[F32Array, list[str]]:
            key = f"row:{family}"
            if key not in cache and family in CENTER_ONLY and self.center_only:
                # Own features and neighbour aggregates: only the centre's row is computed.
                if "center" not in cache:
                    rows = graph.x.numpy()
                    center_blocks, center_names = center_aggregates(
                        rows,
                        c,
                        graph.sender,
                        graph.receiver,
                        graph.relation,
                        graph.weight,
                        self.relations,
                        own_names,
                    )
                    cache["center"] = Base(rows[c : c + 1], own_names, center_blocks, center_names)
                x, names = self._center_design(family, cache["center"])
                cache[key] = (self._restore_counts(family, x, names, counts, sampled), names)
            if key not in cache:
                local = local_graph()
                if "base" not in cache:
                    agg, agg_names = neighbour_aggregates(graph.x, own_names, local, edge_list=True)
                    own = graph.x.numpy().astype(np.float32)
                    cache["base"] = Base(own, own_names, [a.numpy() for a in agg], agg_names)
                if family == "stacked":
                    # Only the centre's row is read: its out-of-fold GNN column is the fold
                    # models' mean at the centre.
                    folds = [f"stack:gnn:{k}" for k in range(self.served.stack_folds)]
                    mean = float(np.mean([gnn(key)[0] for key in folds]))
                    cache["gnn_folds"] = np.full(graph.num_nodes, mean)
                x, names = self.served.tree_design(family, local, cache)
                cache[key] = (
                    self._restore_counts(family, x[[c]].copy(), names, counts, sampled),
                    names,
                )
            hit: tuple[F32Array, list[str]] = cache[key]
            return hit

        contributions = np.zeros(len(own_names), dtype=np.float32)
        tables = {"fraud": np.zeros(len(self.relations)), "social": np.zeros(len(self.relations))}
        logits = {}
        for target, name in (("fraud", self.served.fraud), ("social", self.served.social)):
            total = 0.0
            for member, weight, center in member_weights(self.served, name):
                base = member.removesuffix(":social")
                social = member.endswith(":social")
                if base in ARCHITECTURE or base == "gnn_folds":
                    keys = (
                        [base]
                        if base in ARCHITECTURE
                        else [f"stack:gnn:{k}" for k in range(self.served.stack_folds)]
                    )
                    for key in keys:
                        f, s, occ_f, occ_s = gnn(key)
                        share = weight / len(keys)
                        total += share * (s if social else f)
                        tables[target] += share * (occ_s if social else occ_f)
                    total -= weight * center
                    continue
                family = tree_family(base)
                row, names = tree_row(family)
                model = self.served.trees[family]
                if self.exact:
                    total += weight * (float(model.raw(row)[0]) - center)
                    shap = model.contributions(row)[0, :-1]
                    tables[target] += weight * (shap @ self._grouping(family, names))
                    if target == "fraud" and family != "social_trees":
                        contributions += (weight * shap[: len(own_names)]).astype(np.float32)
                    continue
                # One pass over the leaves gives the score and its path attribution.
                own = 0 if family == "social_trees" else len(own_names)
                if self.center_only:
                    grouped, raw = model.row_paths(row, own, self.relations)
                else:
                    many, raws = model.grouped_paths(row, own, self.relations)
                    grouped, raw = many[0], float(raws[0])
                total += weight * (raw - center)
                tables[target] += weight * grouped[own:]
                if own:
                    contributions += (weight * grouped[:own]).astype(np.float32)
            logits[target] = total
        return ServedCenterScore(
            logits["fraud"], logits["social"], contributions, tables["fraud"], tables["social"]
        )

    def _center_design(self, family: TreeFamily, base: Base) -> tuple[F32Array, list[str]]:
        """``design``'s row for a ``CENTER_ONLY`` family from the centre's ``base``: the
        blocks it keeps, side by side. The first call per family runs ``design`` itself and
        checks the shortcut against it."""
        blocks = [] if family == "social_trees" else [base.own]
        at = 0
        for block in base.aggregates:
            stat = base.aggregate_names[at].split(":")[1]
            at += block.shape[1]
            if family == "social_trees" and stat in ("mean2", "max2"):
                continue  # as ``design``: two-hop aggregates are not relationship-only
            blocks.append(block)
        x = np.concatenate(blocks, axis=1)
        if family not in self._layouts:
            want, names = design(self._one_row, self.served.standardizer, family, base=base)
            if not np.array_equal(x, want, equal_nan=True):
                raise AssertionError(f"{family}: centre row layout differs from design()")
            self._layouts[family] = names
        return x, self._layouts[family]

    def _grouping(self, family: str, names: list[str]) -> FloatArray:
        """``[columns, relations]`` one-hot: which relation each column belongs to."""
        if family not in self._groups:
            onehot = np.zeros((len(names), len(self.relations)))
            position = {rel: k for k, rel in enumerate(self.relations)}
            for j, column in enumerate(names):
                k = position.get(column.split(":", 1)[0]) if ":" in column else None
                if k is not None:
                    onehot[j, k] = 1.0
            self._groups[family] = onehot
        return self._groups[family]

    def _restore_counts(
        self,
        family: str,
        row: F32Array,
        names: list[str],
        counts: dict[str, float],
        sampled: dict[str, float],
    ) -> F32Array:
        if family not in self._index:
            self._index[family] = {name: j for j, name in enumerate(names)}
        column = self._index[family]
        for rel in self.relations:
            full, got = counts.get(rel, 0.0), sampled.get(rel, 0.0)
            j = column.get(f"{rel}:count")
            if j is not None:
                row[0, j] = np.log1p(full)
            if got > 0 and full > got:
                for stat in LABEL_COLUMNS[:2]:  # labelled and fraud neighbour counts
                    j = column.get(f"{rel}:label:{stat}")
                    if j is not None:
                        row[0, j] = np.log1p(np.expm1(row[0, j]) * full / got)
        return row


def _occlusion_copies(
    x: torch.Tensor,
    edge_index: dict[str, torch.Tensor],
    edge_weight: dict[str, torch.Tensor],
    relations: list[str],
    occluded: list[int],
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The subgraph, then one copy per relation in ``occluded`` without that relation's
    edges, as one graph of disjoint copies (copy ``j``'s nodes at ``j * n``).

    Why: a GNN forward on a few hundred nodes is per-op overhead, paid once here instead of
    once per relation. Every layer is row-wise or aggregates over a node's own incoming
    edges, and each copy's edges stay in their order, so copy ``j`` computes what the
    separate forward without that relation computes (a relation with no edges aggregates to
    0, as an absent one; tested to 1e-6 against the separate forwards)."""
    n = int(x.shape[0])
    copies = len(occluded) + 1
    ei: dict[str, torch.Tensor] = {}
    ew: dict[str, torch.Tensor] = {}
    for rel, e in edge_index.items():
        dropped = {j + 1 for j, k in enumerate(occluded) if relations[k] == rel}
        keep = [j for j in range(copies) if j not in dropped]
        ei[rel] = torch.cat([e + j * n for j in keep], dim=1)
        ew[rel] = torch.cat([edge_weight[rel]] * len(keep))
    return x.repeat(copies, 1), ei, ew
