"""Reasons for every account at once, for batch scoring; ``explain`` stays the on-demand tool.

``explain`` runs autograd on one account's computation subgraph: right for an investigator's
question, far too slow for a million accounts. Here a few full-graph passes attribute every
account, in the same logit units and reason codes as ``explain`` (positive = raises risk):

- relations: occlusion, the logit minus the logit with that relation removed. Removing it
  from the whole graph gives each account exactly the value ``explain`` computes on its own
  subgraph, so ``1 + R`` forward passes cover all accounts and both targets (fraud and the
  relationship-only social pathway).
- own features: gradient * input of the standardised features through the account's own
  pathway. Neighbour messages are computed from detached states, so for autograd each
  account's logit depends only on its own inputs and ONE backward pass of the summed logits
  yields every account's own-feature gradient. ``explain`` also counts echoes (the account's
  features coming back through its neighbours two hops later, damped by their degrees); for
  an account without neighbours both agree exactly.
Per-neighbour reasons need a gradient per account and stay with ``explain``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from creditgraph.domain import IntArray
from creditgraph.ml.explain import (
    FEATURE_LOWERS,
    FEATURE_RAISES,
    NO_RELATIONSHIPS,
    RELATION_LOWERS,
    RELATION_RAISES,
)
from creditgraph.ml.features import F32Array, FeatureSet
from creditgraph.ml.model import GraphInput
from creditgraph.ml.train import FloatArray, TrainResult

_WHAT = {"fraud": "fraud risk", "social": "relationship risk"}


class _DetachedMessages(GraphInput):
    """Same values as ``GraphInput``, but no gradient flows through neighbour messages."""

    def neighbour_mean(self, rel: str, h: Tensor) -> Tensor | None:
        return super().neighbour_mean(rel, h.detach())


@dataclass(frozen=True)
class Attribution:
    """Per-account attributions aligned with ``FeatureSet.account_ids`` (logit units)."""

    #: ``Standardizer.output_names``: model inputs, then ``<name>_missing`` indicators.
    input_names: list[str]
    #: Position in ``input_names`` of the first missing-value indicator.
    first_indicator: int
    #: ``[n, len(input_names)]`` own-feature contributions to the fraud logit.
    features: F32Array
    #: ``FeatureSet.x``: raw values in natural units (NaN when missing), quoted in messages.
    raw: F32Array
    #: Column of ``raw`` holding each input's feature; -1 when the snapshot lacks it.
    raw_column: IntArray
    relations: list[str]
    #: ``[n, R]`` fraud / social logit minus the same without the relation.
    fraud_relations: FloatArray
    social_relations: FloatArray
    #: ``[n, R]`` number of direct neighbours in each relation.
    neighbours: IntArray

    def reasons(
        self, rows: Sequence[int] | IntArray, *, top_features: int = 3, top_relations: int = 2
    ) -> list[list[dict[str, Any]]]:
        """Reason dicts ``{code, message, weight, evidence}`` (as ``explain`` returns) for
        the accounts at ``rows``: the ``top_features`` strongest own features, then the
        ``top_relations`` strongest relations for the fraud and for the social score, or
        ``NO_RELATIONSHIPS``. ``evidence["target"]`` names the score a reason is about."""
        idx = np.asarray(rows, dtype=np.int64)
        contrib = self.features[idx]
        # Ranking is vectorised over the batch; only the dicts are built per account (a
        # million accounts go through here in one scoring run).
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :top_features]
        weights = np.take_along_axis(contrib, order, axis=1).astype(np.float64)
        has: npt.NDArray[np.bool_] = self.neighbours[idx] > 0
        ranked = []
        for target, table in (("fraud", self.fraud_relations), ("social", self.social_relations)):
            t = table[idx]
            key = np.where(has, -np.abs(t), np.inf)
            top = np.argsort(key, axis=1, kind="stable")[:, :top_relations]
            ranked.append(
                (
                    target,
                    top.tolist(),
                    np.take_along_axis(t, top, axis=1).tolist(),
                    np.take_along_axis(has, top, axis=1).tolist(),
                )
            )
        any_neighbour = np.any(has, axis=1).tolist()
        order_l, weights_l = order.tolist(), weights.tolist()
        out = []
        for i, row in enumerate(idx.tolist()):
            reasons = [
                self._feature_reason(row, j, w)
                for j, w in zip(order_l[i], weights_l[i], strict=True)
                if w != 0.0
            ]
            for target, top_k, top_w, top_has in ranked:
                reasons += [
                    self._relation_reason(target, k, row, w)
                    for k, w, h in zip(top_k[i], top_w[i], top_has[i], strict=True)
                    if h
                ]
            if not any_neighbour[i]:
                reasons.append(
                    {
                        "code": NO_RELATIONSHIPS,
                        "message": "no relationships to judge the account by",
                        "weight": 0.0,
                        "evidence": {"target": "social"},
                    }
                )
            out.append(reasons)
        return out

    def _feature_reason(self, row: int, j: int, weight: float) -> dict[str, Any]:
        name = self.input_names[j]
        indicator = j >= self.first_indicator
        feature = name.removesuffix("_missing") if indicator else name
        col = int(self.raw_column[j])
        value = float(self.raw[row, col]) if col >= 0 else float("nan")
        missing = indicator or not math.isfinite(value)
        shown = "missing" if missing else f"{value:g}"
        return {
            "code": FEATURE_RAISES if weight > 0 else FEATURE_LOWERS,
            "message": f"{feature} = {shown} {_verb(weight)} the fraud risk",
            "weight": weight,
            "evidence": {
                "target": "fraud",
                "feature": feature,
                "value": None if missing else value,
                "missing": missing,
            },
        }

    def _relation_reason(self, target: str, k: int, row: int, weight: float) -> dict[str, Any]:
        rel, direct = self.relations[k], int(self.neighbours[row, k])
        return {
            "code": RELATION_RAISES if weight > 0 else RELATION_LOWERS,
            "message": f"the {rel} relation ({direct} neighbours) {_verb(weight)} "
            f"the {_WHAT[target]}",
            "weight": weight,
            "evidence": {"target": target, "relation": rel, "neighbours": direct},
        }


def attribute(result: TrainResult, features: FeatureSet) -> Attribution:
    """Own-feature and relation attributions of every account of ``features``.

    Cost: one forward and backward pass plus one forward pass per relation, all full-graph
    with the sparse adjacency (about a training epoch each); memory as for training.
    """
    model = result.model
    model.eval()
    graph = result.graph_input(features)
    n = graph.num_nodes
    x = graph.x.clone().requires_grad_(True)
    out = model(_DetachedMessages(x, graph.edge_index, graph.edge_weight, graph.adjacency))
    out.fraud_logit.sum().backward()
    assert x.grad is not None
    contributions = (x.grad * x).detach().numpy()
    fraud = out.fraud_logit.detach().double().numpy()
    social = out.social_logit.detach().double().numpy()

    relations = [rel for rel in model.relations if rel in graph.edge_index]
    fraud_rel = np.zeros((n, len(relations)))
    social_rel = np.zeros((n, len(relations)))
    neighbours = np.zeros((n, len(relations)), dtype=np.int64)
    with torch.no_grad():
        for k, rel in enumerate(relations):
            without = GraphInput(
                graph.x,
                {r: ei for r, ei in graph.edge_index.items() if r != rel},
                {r: w for r, w in graph.edge_weight.items() if r != rel},
                {r: a for r, a in graph.adjacency.items() if r != rel},
            )
            occluded = model(without)
            fraud_rel[:, k] = fraud - occluded.fraud_logit.double().numpy()
            social_rel[:, k] = social - occluded.social_logit.double().numpy()
            neighbours[:, k] = np.bincount(graph.edge_index[rel][1].numpy(), minlength=n)
    std = result.standardizer
    col = {name: j for j, name in enumerate(features.names)}
    return Attribution(
        input_names=list(std.output_names),
        first_indicator=len(std.names),
        features=contributions,
        raw=features.x,
        raw_column=np.array(
            [col.get(name, -1) for name in [*std.names, *std.missing]], dtype=np.int64
        ),
        relations=relations,
        fraud_relations=fraud_rel,
        social_relations=social_rel,
        neighbours=neighbours,
    )


def _verb(weight: float) -> str:
    return "raises" if weight > 0 else "lowers"
