"""The relation-aware GNN: an ``nn.Module`` only (training, calibration live elsewhere).

Design, and why:
- Each layer is ``h_i' = ReLU(LayerNorm(W_self h_i + sum_r W_r mean_r(h_j) + b))`` with a
  weighted mean over the neighbours ``j`` of ``i`` in relation ``r``: GraphSAGE per relation
  (RGCN with a root weight and mean aggregation). Fraudsters camouflage by linking to good
  accounts, so the account's own signal has its own weights and each relation its own
  (a shared device means something else than a friendship or a payment).
- Mean, not sum, so hubs (merchants with thousands of payers) do not blow up activations;
  the degree itself reaches the model through the degree features.
- The fraud head reads every depth (jumping knowledge: ``[h0, h1, ..., hL]``), so the
  self-only encoding ``h0`` cannot be washed out by the neighbourhood.
- The relationship pathway (social credit) reads only neighbour aggregates: per relation the
  weighted mean of the neighbours' self-only encodings ``h0_j`` and ``log1p`` of the summed
  edge weight. It never sees the account's own features, nor its deeper states (``h1`` of a
  neighbour already contains the account itself, one hop back).
- Plain torch instead of ``RGCNConv``/``HeteroConv``: any list of relation names works and
  nothing needs pyg-lib. Training and scoring aggregate with a sparse CSR mean matrix per
  relation (``GraphInput.with_adjacency``); explanations use the edge-list path, where edge
  weights are differentiable. Relations absent from the input read as "no neighbours", so a
  subgraph may omit some.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

from creditgraph.ml.graphops import MeanAdjacency, weighted_degree, weighted_mean


@dataclass(frozen=True)
class GraphInput:
    """Standardised features and per-relation edges (see ``ml.graphops`` for the layout).

    ``adjacency`` optionally holds each relation's sparse mean matrix (``with_adjacency``):
    the fast path for training and batch scoring. Without it aggregation reads the edge
    lists, which keeps edge weights differentiable for explanations.
    """

    x: Tensor
    edge_index: Mapping[str, Tensor]
    edge_weight: Mapping[str, Tensor]
    adjacency: Mapping[str, MeanAdjacency] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    def with_adjacency(self) -> GraphInput:
        n = self.num_nodes
        adjacency = {
            rel: MeanAdjacency.build(ei, self.edge_weight[rel], n)
            for rel, ei in self.edge_index.items()
        }
        return replace(self, adjacency=adjacency)

    def log_degree(self, rel: str) -> Tensor:
        """``log1p`` of each account's summed ``rel`` edge weight (``rel`` must be present)."""
        if rel in self.adjacency:
            return self.adjacency[rel].log_degree
        degree = weighted_degree(self.edge_index[rel], self.edge_weight[rel], self.num_nodes)
        return torch.log1p(degree)

    def neighbour_mean(self, rel: str, h: Tensor) -> Tensor | None:
        """Weighted mean of ``h`` over each account's ``rel`` neighbours; None if ``rel`` is
        not in this graph."""
        if rel in self.adjacency:
            return self.adjacency[rel] @ h
        if rel in self.edge_index:
            return weighted_mean(h, self.edge_index[rel], self.edge_weight[rel], self.num_nodes)
        return None


@dataclass(frozen=True)
class ModelOutput:
    """Logits per account: fraud (all evidence) and relationship-only risk."""

    fraud_logit: Tensor
    social_logit: Tensor


class RelationalLayer(nn.Module):
    """Separate weights for the account itself and for each relation's neighbour mean."""

    def __init__(self, dim: int, relations: Sequence[str]) -> None:
        super().__init__()
        self.relations = list(relations)
        self.self_lin = nn.Linear(dim, dim)
        # A list, not a ModuleDict: relation names need not be valid attribute names.
        self.rel_lins = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in relations)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: Tensor, graph: GraphInput) -> Tensor:
        out = self.self_lin(h)
        for rel, lin in zip(self.relations, self.rel_lins, strict=True):
            agg = graph.neighbour_mean(rel, h)
            if agg is not None:
                out = out + lin(agg)
        return torch.relu(self.norm(out))


class RelationalGNN(nn.Module):
    """Fraud logit from self + neighbourhood; social logit from neighbour aggregates only."""

    def __init__(
        self,
        in_dim: int,
        relations: Sequence[str],
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if not relations:
            raise ValueError("a relational model needs at least one relation")
        self.relations = list(relations)
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.layers = nn.ModuleList(RelationalLayer(hidden, relations) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.fraud_head = nn.Sequential(
            nn.Linear(hidden * (layers + 1), hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )
        self.social_head = nn.Sequential(
            nn.Linear(len(relations) * (hidden + 1), hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def relation_aggregates(self, h0: Tensor, graph: GraphInput) -> Tensor:
        """``[n, R * (hidden + 1)]``: per relation, neighbour mean of ``h0`` and log degree."""
        n = h0.shape[0]
        parts: list[Tensor] = []
        for rel in self.relations:
            agg = graph.neighbour_mean(rel, h0)
            if agg is None:
                parts.append(h0.new_zeros(n, h0.shape[1] + 1))
                continue
            parts += [agg, graph.log_degree(rel).unsqueeze(1)]
        return torch.cat(parts, dim=1)

    def forward(self, graph: GraphInput) -> ModelOutput:
        h0 = self.encoder(graph.x)
        states = [h0]
        h = h0
        for layer in self.layers:
            h = layer(self.dropout(h), graph)
            states.append(h)
        fraud = self.fraud_head(self.dropout(torch.cat(states, dim=1))).squeeze(1)
        social = self.social_head(self.dropout(self.relation_aggregates(h0, graph))).squeeze(1)
        return ModelOutput(fraud_logit=fraud, social_logit=social)


class WaveletGNN(nn.Module):
    """Heterophily-aware: BWGNN-style Beta-wavelet filters per relation (Tang et al. 2022).

    Fraudsters camouflage among honest neighbours, so what separates them is often how an
    account DIFFERS from its neighbourhood (a high-frequency signal), which a mean-aggregating
    GNN smooths away. Each relation's Laplacian ``L = I - M`` (``M`` the weighted mean
    matrix, i.e. the random-walk Laplacian) is filtered by the ``order + 1`` Beta wavelets
    ``beta_{p,q}(L) = (L/2)^p (I - L/2)^q / (2 B(p+1, q+1))``, ``p + q = order``: a
    low-pass, band-pass and high-pass view of the encoded features ``h = MLP(x)``, all
    polynomials in ``M`` (sparse matmuls only, ``order`` hops). The fraud head reads the
    concatenated filter outputs of every relation. The social head is the relational
    model's: per relation the neighbour mean of ``h`` and the log degree, never ``h`` of the
    account itself.
    """

    def __init__(
        self,
        in_dim: int,
        relations: Sequence[str],
        hidden: int = 64,
        order: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if not relations:
            raise ValueError("a relational model needs at least one relation")
        self.relations = list(relations)
        self.order = order
        self.encoder = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.register_buffer("coefficients", _beta_coefficients(order), persistent=False)
        self.dropout = nn.Dropout(dropout)
        width = len(self.relations) * (order + 1) * hidden
        self.fraud_head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.social_head = nn.Sequential(
            nn.Linear(len(relations) * (hidden + 1), hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    @property
    def num_layers(self) -> int:
        """Hops the output depends on (the polynomial degree)."""
        return self.order

    def forward(self, graph: GraphInput) -> ModelOutput:
        h = self.encoder(graph.x)
        n = h.shape[0]
        filtered: list[Tensor] = []
        social: list[Tensor] = []
        coef = self.get_buffer("coefficients")
        for rel in self.relations:
            powers = [h]
            for _ in range(self.order):
                nxt = graph.neighbour_mean(rel, powers[-1])
                powers.append(h.new_zeros(n, h.shape[1]) if nxt is None else nxt)
            stacked = torch.stack(powers)  # [order + 1, n, hidden]
            filtered.append(torch.einsum("fk,knd->nfd", coef, stacked).reshape(n, -1))
            if rel in graph.edge_index or rel in graph.adjacency:
                social += [powers[1], graph.log_degree(rel).unsqueeze(1)]
            else:
                social.append(h.new_zeros(n, h.shape[1] + 1))
        fraud = self.fraud_head(self.dropout(torch.cat(filtered, dim=1))).squeeze(1)
        social_logit = self.social_head(self.dropout(torch.cat(social, dim=1))).squeeze(1)
        return ModelOutput(fraud_logit=fraud, social_logit=social_logit)


def _beta_coefficients(order: int) -> Tensor:
    """``[order + 1 filters, order + 1 powers of M]``: beta_{p,q}(I - M) as a polynomial in M."""
    rows = []
    for p in range(order + 1):
        q = order - p
        # (L/2)^p (1 - L/2)^q with L = 1 - m: ((1 - m)/2)^p ((1 + m)/2)^q
        poly = np.polynomial.Polynomial([1.0])
        poly = poly * np.polynomial.Polynomial([0.5, -0.5]) ** p
        poly = poly * np.polynomial.Polynomial([0.5, 0.5]) ** q
        norm = 2.0 * math.gamma(p + 1) * math.gamma(q + 1) / math.gamma(p + q + 2)
        coef = np.zeros(order + 1)
        coef[: len(poly.coef)] = np.asarray(poly.coef, dtype=np.float64) / norm
        rows.append(coef)
    return torch.tensor(np.array(rows), dtype=torch.float32)


#: The GNN architectures a job can train (``TrainConfig.architecture``).
GNN = RelationalGNN | WaveletGNN
