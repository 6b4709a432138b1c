"""Reason codes for one account's score: which of its features, relations and neighbours drove it.

Runs the model on the account's computation subgraph (the accounts and edges its output
depends on), which gives the same logit as the full graph at a fraction of the cost, and
attributes that logit three ways, all in logit units (positive = raises the risk):
- own features: gradient * input of the standardised features, the input measured from
  the fitted median (0), so "typical" values explain nothing;
- relations: occlusion, the logit minus the logit with all edges of that relation removed;
- neighbours: gradient * edge weight on the account's direct ties, the first-order effect
  of strengthening that tie: positive when the neighbour looks riskier than the account's
  other neighbours in that relation.
For ``target="social"`` (the relationship-only pathway) own features play no part by design,
so only relations and neighbours are reported; a risk raised there lowers social credit.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from creditgraph.domain import ReasonCode
from creditgraph.ml.features import FeatureSet
from creditgraph.ml.graphops import incoming_subgraph
from creditgraph.ml.model import GraphInput, ModelOutput
from creditgraph.ml.train import TrainResult

Target = Literal["fraud", "social"]

FEATURE_RAISES = ReasonCode.FEATURE_RAISES_RISK
FEATURE_LOWERS = ReasonCode.FEATURE_LOWERS_RISK
RELATION_RAISES = ReasonCode.RELATION_RAISES_RISK
RELATION_LOWERS = ReasonCode.RELATION_LOWERS_RISK
NEIGHBOUR_RAISES = ReasonCode.NEIGHBOUR_RAISES_RISK
NEIGHBOUR_LOWERS = ReasonCode.NEIGHBOUR_LOWERS_RISK
NO_RELATIONSHIPS = ReasonCode.NO_RELATIONSHIPS
#: The codes ``explain`` can return (``domain.ReasonCode`` has every code).
REASON_CODES = frozenset(
    {
        FEATURE_RAISES,
        FEATURE_LOWERS,
        RELATION_RAISES,
        RELATION_LOWERS,
        NEIGHBOUR_RAISES,
        NEIGHBOUR_LOWERS,
        NO_RELATIONSHIPS,
    }
)
_WHAT = {"fraud": "fraud risk", "social": "relationship risk"}


def explain(
    result: TrainResult,
    features: FeatureSet,
    account: int,
    *,
    target: Target = "fraud",
    top: int = 5,
) -> list[dict[str, Any]]:
    """Reasons for the score of the account at index ``account`` of ``features``.

    Returns dicts ``{code, message, weight, evidence}``: up to ``top`` own features (fraud
    only), then the relations, then up to ``top`` direct neighbours, each group ordered by
    ``|weight|``.
    """
    model = result.model
    model.eval()
    nodes, masks = incoming_subgraph(
        features.edge_index, features.num_accounts, account, model.num_layers
    )
    local = torch.full((features.num_accounts,), -1, dtype=torch.long)
    local[nodes] = torch.arange(len(nodes))
    center = int(local[account])
    rows = nodes.numpy()
    x = torch.from_numpy(result.standardizer.transform(features.x[rows], features.names))
    x.requires_grad_(True)
    edge_index = {rel: local[ei[:, masks[rel]]] for rel, ei in features.edge_index.items()}
    edge_weight = {
        rel: w[masks[rel]].clone().requires_grad_(True) for rel, w in features.edge_weight.items()
    }
    graph = GraphInput(x, edge_index, edge_weight)
    logit = _pick(model(graph), target)[center]
    logit.backward()  # type: ignore[no-untyped-call]

    reasons: list[dict[str, Any]] = []
    if target == "fraud" and x.grad is not None:
        reasons += _feature_reasons(result, features, account, (x.grad * x)[center].detach(), top)
    reasons += _relation_reasons(model, graph, center, logit.item(), target)
    reasons += _neighbour_reasons(features, graph, rows, center, target, top)
    if not any(r["code"].startswith(("RELATION", "NEIGHBOUR")) for r in reasons):
        reasons.append(
            {
                "code": NO_RELATIONSHIPS,
                "message": "no relationships to judge the account by",
                "weight": 0.0,
                "evidence": {},
            }
        )
    return reasons


def _pick(out: ModelOutput, target: Target) -> Tensor:
    return out.fraud_logit if target == "fraud" else out.social_logit


def _feature_reasons(
    result: TrainResult, features: FeatureSet, account: int, contrib: Tensor, top: int
) -> list[dict[str, Any]]:
    names = result.standardizer.output_names
    raw = {name: features.x[account, j] for j, name in enumerate(features.names)}
    out = []
    for j in torch.argsort(contrib.abs(), descending=True)[:top].tolist():
        weight = float(contrib[j])
        if weight == 0.0:
            break
        name = names[j]
        feature = name.removesuffix("_missing") if j >= len(result.standardizer.names) else name
        value = raw.get(feature, float("nan"))
        shown = "missing" if name != feature or not np.isfinite(value) else f"{value:g}"
        out.append(
            {
                "code": FEATURE_RAISES if weight > 0 else FEATURE_LOWERS,
                "message": f"{feature} = {shown} {_verb(weight)} the fraud risk",
                "weight": weight,
                "evidence": {
                    "feature": feature,
                    "value": None if shown == "missing" else float(value),
                    "missing": shown == "missing",
                },
            }
        )
    return out


def _relation_reasons(
    model: torch.nn.Module, graph: GraphInput, center: int, logit: float, target: Target
) -> list[dict[str, Any]]:
    out = []
    with torch.no_grad():
        for rel, ei in graph.edge_index.items():
            direct = int((ei[1] == center).sum())
            if direct == 0:
                continue
            rest = {r: e for r, e in graph.edge_index.items() if r != rel}
            weights = {r: w for r, w in graph.edge_weight.items() if r != rel}
            without = float(_pick(model(GraphInput(graph.x, rest, weights)), target)[center])
            weight = logit - without
            out.append(
                {
                    "code": RELATION_RAISES if weight > 0 else RELATION_LOWERS,
                    "message": f"the {rel} relation ({direct} neighbours) {_verb(weight)} "
                    f"the {_WHAT[target]}",
                    "weight": weight,
                    "evidence": {"relation": rel, "neighbours": direct},
                }
            )
    return sorted(out, key=lambda r: -abs(r["weight"]))


def _neighbour_reasons(
    features: FeatureSet,
    graph: GraphInput,
    rows: np.ndarray[Any, np.dtype[np.int64]],
    center: int,
    target: Target,
    top: int,
) -> list[dict[str, Any]]:
    # One tie may span several relations (friends who also pay each other): sum them.
    effect: dict[int, float] = defaultdict(float)
    relations: dict[int, list[str]] = defaultdict(list)
    for rel, ei in graph.edge_index.items():
        grad = graph.edge_weight[rel].grad
        if grad is None:
            continue
        direct = torch.nonzero(ei[1] == center).squeeze(1)
        contrib = (grad * graph.edge_weight[rel].detach())[direct]
        for nb, c in zip(ei[0][direct].tolist(), contrib.tolist(), strict=True):
            effect[nb] += c
            relations[nb].append(rel)
    ranked = sorted(effect, key=lambda nb: -abs(effect[nb]))[:top]
    out = []
    for nb in ranked:
        weight = effect[nb]
        account_id = features.account_ids[int(rows[nb])]
        out.append(
            {
                "code": NEIGHBOUR_RAISES if weight > 0 else NEIGHBOUR_LOWERS,
                "message": f"tie to {account_id} ({', '.join(relations[nb])}) "
                f"{_verb(weight)} the {_WHAT[target]}",
                "weight": weight,
                "evidence": {"account_id": account_id, "relations": relations[nb]},
            }
        )
    return out


def _verb(weight: float) -> str:
    return "raises" if weight > 0 else "lowers"
