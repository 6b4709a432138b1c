"""Message-passing primitives in plain torch (no torch-scatter / pyg-lib on this platform).

An edge index is ``[2, E]`` with row 0 the neighbour that sends and row 1 the account that
receives, so ``weighted_mean(h, ei, w, n)[i]`` summarises the neighbours of ``i``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd import Function


def weighted_degree(edge_index: Tensor, weight: Tensor, n: int) -> Tensor:
    """Sum of incoming edge weights per account (0 for accounts without neighbours)."""
    return weight.new_zeros(n).index_add(0, edge_index[1], weight)


def weighted_mean(h: Tensor, edge_index: Tensor, weight: Tensor, n: int) -> Tensor:
    """Weighted mean of neighbour rows of ``h``; zero for accounts without neighbours.

    Differentiable in ``h`` and ``weight`` (explanations take gradients w.r.t. edge weights).
    """
    src, dst = edge_index[0], edge_index[1]
    deg = weighted_degree(edge_index, weight, n)
    coef = weight / deg[dst].clamp_min(1e-12)
    return h.new_zeros(n, h.shape[1]).index_add(0, dst, h[src] * coef.unsqueeze(1))


def mean_adjacency(edge_index: Tensor, weight: Tensor, n: int) -> Tensor:
    """``[n, n]`` sparse CSR matrix ``M`` with ``M @ h == weighted_mean(h, edge_index, ...)``.

    Built once per graph, it aggregates about 6x faster than ``weighted_mean`` (no ``[E, d]``
    gather; measured at 20k accounts, 400k edges, d=32, one thread) but is not
    differentiable in ``weight``.
    """
    src, dst = edge_index[0], edge_index[1]
    coef = weight / weighted_degree(edge_index, weight, n)[dst].clamp_min(1e-12)
    return _csr(dst, src, coef.detach(), n)


def _csr(rows: Tensor, cols: Tensor, values: Tensor, n: int) -> Tensor:
    """``[n, n]`` sparse CSR matrix from coordinates (duplicates summed)."""
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n, n), check_invariants=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return coo.coalesce().to_sparse_csr()


class _SpMM(Function):
    """``M @ h`` whose backward multiplies by a transpose built once, not per call.

    torch's own CSR matmul backward transposes ``M`` on every call (a sort of all edges):
    about a third of a training epoch at 200k accounts.
    """

    @staticmethod
    def forward(ctx: Any, m: Tensor, mt: Tensor, h: Tensor) -> Tensor:
        ctx.mt = mt
        return m @ h

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, ctx.mt @ grad


@dataclass(frozen=True)
class MeanAdjacency:
    """One relation's mean matrix with its transpose and log weighted degree, built once.

    ``adj @ h`` equals ``weighted_mean(h, ...)``; differentiable in ``h`` only.
    """

    matrix: Tensor
    transpose: Tensor
    log_degree: Tensor

    @classmethod
    def build(cls, edge_index: Tensor, weight: Tensor, n: int) -> MeanAdjacency:
        src, dst = edge_index[0], edge_index[1]
        deg = weighted_degree(edge_index, weight, n).detach()
        coef = weight.detach() / deg[dst].clamp_min(1e-12)
        return cls(
            matrix=_csr(dst, src, coef, n),
            transpose=_csr(src, dst, coef, n),
            log_degree=torch.log1p(deg),
        )

    def __matmul__(self, h: Tensor) -> Tensor:
        out: Tensor = _SpMM.apply(self.matrix, self.transpose, h)  # type: ignore[no-untyped-call]
        return out


def neighbour_max(h: Tensor, edge_index: Tensor, n: int) -> Tensor:
    """Element-wise max over neighbour rows of ``h``; zero for accounts without neighbours."""
    src, dst = edge_index[0], edge_index[1]
    index = dst.unsqueeze(1).expand(-1, h.shape[1])
    out = h.new_zeros(n, h.shape[1])
    return out.scatter_reduce(0, index, h[src], reduce="amax", include_self=False)


def incoming_subgraph(
    edge_index: dict[str, Tensor], n: int, center: int, hops: int
) -> tuple[Tensor, dict[str, Tensor]]:
    """Accounts and edges that determine a ``hops``-layer model's output at ``center``.

    Returns the sorted account indices and, per relation, a boolean mask of the edges whose
    receiver lies within ``hops - 1`` steps (all edges a layer reads for those accounts), so
    running the model on the subgraph gives the same output at ``center`` as on the full graph.
    O(E) per hop: for explanations and tests, not the scoring hot path.
    """
    inside = torch.zeros(n, dtype=torch.bool)
    inside[center] = True
    for _ in range(hops - 1):
        reached = inside.clone()
        for ei in edge_index.values():
            reached[ei[0][inside[ei[1]]]] = True
        inside = reached
    masks = {rel: inside[ei[1]] for rel, ei in edge_index.items()}
    nodes = inside.clone()
    for rel, ei in edge_index.items():
        nodes[ei[0][masks[rel]]] = True
    return torch.nonzero(nodes).squeeze(1), masks
