"""Inductive scoring of one account from a small, capped computation graph (arrays only).

The batch model scores every account with full-graph message passing. One account's output
depends only on its ``L``-hop incoming neighbourhood (``L`` = layers), so it can be scored
from a subgraph: the account, up to ``fanouts[0]`` neighbours per relation, up to
``fanouts[1]`` neighbours per relation of each of those, and so on. This module holds the
pieces, all plain numpy / torch with no store or I/O:

- ``CSR``: one relation's incoming neighbours of every snapshot account, each row in a fixed
  pseudo-random order (a hash of the (receiver, sender) pair). "The first ``cap`` entries of
  a row" is then a uniform sample without replacement, deterministic, and the same sample
  whichever path (in-memory rows or edges read from the store) asks for it.
- ``sample``: the capped multi-hop expansion over ``CSR`` rows, vectorised per hop.
- ``score_center``: the model's forward pass at the centre of a ``ComputationGraph``, with the
  module's own layers and heads, so it equals the batch output exactly when no cap binds.
  The one deliberate difference: the social head's ``log1p(degree)`` input uses the
  centre's FULL weighted degree (known from the CSR or the store), not the sampled one, so a
  cap only adds sampling noise to neighbour means and never shrinks the degree.
- ``approximate_time_features``: transfer timing features that need per-transfer timestamps
  the store's adjacency does not return (see its docstring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from creditgraph.domain import IntArray
from creditgraph.ml.features import F32Array, Standardizer
from creditgraph.ml.model import RelationalGNN, RelationalLayer

U64Array = npt.NDArray[np.uint64]
I32Array = npt.NDArray[np.int32]
#: Fan-out caps per hop (per relation and per expanded account): the measured default of
#: PERFORMANCE-NOTES.md. A model with more layers reuses the last cap for deeper hops.
DEFAULT_FANOUTS = (15, 10)
#: Suffixes of the timing features ``ml.features`` derives per directed relation from the
#: first / last timestamp of each ordered pair (``<rel>_<suffix>``).
TIME_FEATURES = ("active_days", "per_day", "recency_days", "first_after_open_days")


def edge_keys(receiver: IntArray, sender: IntArray, seed: int) -> U64Array:
    """Pseudo-random 64-bit key per (receiver, sender) pair (splitmix64 of the pair).

    Sorting a row by it gives every row its own random order, uncorrelated between rows, and
    any caller that knows both ends can reproduce it without the CSR.
    """
    with np.errstate(over="ignore"):
        z = (receiver.astype(np.uint64) << np.uint64(32)) | sender.astype(np.uint64)
        z = z ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class CSR:
    """Incoming edges of one relation grouped by receiving account.

    Row ``i`` is ``sender[indptr[i]:indptr[i + 1]]`` (with ``weight``), ordered by
    ``edge_keys``; ``degree[i]`` is the full weighted degree, as ``graphops.weighted_degree``.
    """

    indptr: IntArray
    sender: I32Array
    weight: F32Array
    degree: F32Array

    @classmethod
    def build(
        cls, sender: IntArray, receiver: IntArray, weight: F32Array, n: int, seed: int
    ) -> CSR:
        """Group ``[E]`` edge arrays (``ml.features`` layout) by receiver, rows shuffled."""
        if n >= 2**31:
            raise ValueError("CSR rows are int32: at most 2**31 - 1 accounts")
        hashed = edge_keys(receiver, sender, seed) >> np.uint64(32)
        order = np.argsort((receiver.astype(np.uint64) << np.uint64(32)) | hashed)
        counts = np.bincount(receiver, minlength=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        degree = np.bincount(receiver, weight, minlength=n).astype(np.float32)
        return cls(
            indptr=indptr,
            sender=sender[order].astype(np.int32),
            weight=np.asarray(weight[order], dtype=np.float32),
            degree=degree,
        )

    @property
    def num_edges(self) -> int:
        return int(self.sender.shape[0])

    def take(self, rows: IntArray, cap: int) -> tuple[IntArray, IntArray, F32Array, bool]:
        """The first ``cap`` entries of each row: (senders, receivers, weights, truncated)."""
        start = self.indptr[rows]
        degree = self.indptr[rows + 1] - start
        k = np.minimum(degree, cap)
        total = int(k.sum())
        first = np.cumsum(k) - k
        pos = np.repeat(start - first, k) + np.arange(total)
        return (
            self.sender[pos].astype(np.int64),
            np.repeat(rows, k),
            self.weight[pos],
            bool((degree > cap).any()),
        )


@dataclass(frozen=True)
class Edges:
    """Sampled edges of one relation in global (snapshot) indices."""

    sender: IntArray
    receiver: IntArray
    weight: F32Array


@dataclass(frozen=True)
class Sample:
    """A capped expansion: per relation the sampled incoming edges of every expanded
    account, and whether any cap bound."""

    edges: dict[str, list[Edges]]
    truncated: bool


def fanout(fanouts: Sequence[int], hop: int) -> int:
    """The cap at ``hop`` (0 = the centre's own neighbours)."""
    if not fanouts or min(fanouts) < 1:
        raise ValueError(f"fan-out caps must be positive, got {list(fanouts)}")
    return int(fanouts[min(hop, len(fanouts) - 1)])


def sample(
    csrs: Mapping[str, CSR],
    seeds: IntArray,
    fanouts: Sequence[int],
    hops: int,
    *,
    first_hop: int = 0,
    expanded: IntArray | None = None,
) -> Sample:
    """Expand ``seeds`` ``hops`` times: each account's capped incoming edges per relation.

    ``first_hop`` says which cap the seeds get (1 when the seeds are already the centre's
    neighbours); accounts in ``expanded`` (and every account expanded once) are never
    expanded again, so each account contributes one consistent sample of its neighbours.
    Accounts found at the last hop are senders only: their own neighbours are not needed.
    """
    frontier = np.unique(seeds)
    done = frontier if expanded is None else np.union1d(expanded, frontier)
    edges: dict[str, list[Edges]] = {rel: [] for rel in csrs}
    truncated = False
    for step in range(hops):
        cap = fanout(fanouts, first_hop + step)
        reached: list[IntArray] = []
        for rel, csr in csrs.items():
            s, r, w, cut = csr.take(frontier, cap)
            truncated |= cut
            if len(s):
                edges[rel].append(Edges(s, r, w))
                reached.append(s)
        if step == hops - 1 or not reached:
            break
        frontier = np.setdiff1d(np.concatenate(reached), done, assume_unique=False)
        if not len(frontier):
            break
        done = np.union1d(done, frontier)
    return Sample(edges, truncated)


@dataclass(frozen=True)
class ComputationGraph:
    """What the model needs to score one account, in local indices.

    ``x`` holds standardised rows (``Standardizer.transform`` layout); edge ``e`` carries a
    message from ``sender[e]`` to ``receiver[e]`` in relation ``relation[e]`` (a position in
    the model's relations) with ``weight[e]``; ``degree[r]`` is the centre's FULL weighted
    degree in relation ``r``, whatever was sampled.
    """

    x: Tensor
    center: int
    sender: IntArray
    receiver: IntArray
    relation: IntArray
    weight: F32Array
    degree: F32Array

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])


def localise(
    nodes: IntArray, edges: Mapping[str, Sequence[Edges]], relations: Sequence[str]
) -> tuple[IntArray, IntArray, IntArray, F32Array]:
    """(sender, receiver, relation, weight) of ``edges`` in positions of ``nodes`` (sorted,
    unique global ids covering every end); relations the model lacks are dropped."""
    parts = [(k, p) for k, rel in enumerate(relations) for p in edges.get(rel, ())]
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty, np.empty(0, dtype=np.float32)
    s = np.concatenate([p.sender for _, p in parts])
    r = np.concatenate([p.receiver for _, p in parts])
    rel = np.concatenate([np.full(len(p.sender), k, dtype=np.int64) for k, p in parts])
    w = np.concatenate([p.weight for _, p in parts]).astype(np.float32)
    return np.searchsorted(nodes, s), np.searchsorted(nodes, r), rel, w


@dataclass(frozen=True)
class CenterScore:
    """Logits at the centre; the attributions when asked for (see ``CenterModel``)."""

    fraud_logit: float
    social_logit: float
    #: Gradient * input of the centre's standardised row for the fraud logit
    #: (``Standardizer.output_names`` order), as ``ml.explain`` computes it.
    contributions: F32Array | None = None
    #: Gradient * weight of each of the centre's direct ties for the fraud logit, summed
    #: over layers: (local sender, relation position, effect).
    ties: tuple[IntArray, IntArray, F32Array] | None = None


class CenterModel:
    """``RelationalGNN``'s forward pass evaluated at one account of a small graph.

    Same parameters and arithmetic as ``RelationalGNN.forward`` in eval mode, arranged for
    a graph of a few hundred accounts where per-operation overhead dominates: nodes are
    ordered by distance from the centre so that layer ``l`` updates only the accounts within
    ``L - l`` hops (a prefix of the rows), and all relations aggregate in one ``index_add``
    followed by one matrix product with the relation weights side by side
    (``sum_r W_r m_r == [W_1 ... W_R] [m_1; ...; m_R]``). Equal to the batch output up to
    float summation order when the graph holds every neighbour (tested); the social head
    reads ``graph.degree``, the centre's full degrees.
    """

    def __init__(self, model: RelationalGNN) -> None:
        model.eval()
        self.model = model
        self.relations = list(model.relations)
        self.layers = [cast(RelationalLayer, layer) for layer in model.layers]
        with torch.no_grad():
            self.rel_weight = [
                torch.cat([cast(nn.Linear, lin).weight for lin in layer.rel_lins], dim=1)
                for layer in self.layers
            ]

    @property
    def num_layers(self) -> int:
        return len(self.rel_weight)

    def __call__(self, graph: ComputationGraph, *, attribute: bool = False) -> CenterScore:
        """Fraud and social logits at ``graph.center``; with ``attribute``, one backward pass
        adds the own-feature and direct-tie attributions ``ml.explain`` computes."""
        depth = _depth(graph, self.num_layers)
        order = np.argsort(depth, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        sender, receiver = position[graph.sender], position[graph.receiver]
        edge_depth = depth[graph.receiver]
        x = graph.x[torch.from_numpy(order)]
        weight = torch.from_numpy(graph.weight)
        if attribute:
            x.requires_grad_(True)
            weight.requires_grad_(True)
        r_count = len(self.relations)
        s_t = torch.from_numpy(sender)
        slot_t = torch.from_numpy(receiver * r_count + graph.relation)
        with torch.set_grad_enabled(attribute):
            h0 = self.model.encoder(x)
            h, states = h0, [h0[0]]
            for layer_no, (layer, w_cat) in enumerate(
                zip(self.layers, self.rel_weight, strict=True)
            ):
                reach = self.num_layers - layer_no - 1
                rows = int((depth <= reach).sum())
                keep = torch.from_numpy(np.flatnonzero(edge_depth <= reach))
                agg = _mean(h, s_t[keep], slot_t[keep], weight[keep], rows * r_count)
                out = layer.self_lin(h[:rows]) + agg.view(rows, -1) @ w_cat.T
                h = torch.relu(layer.norm(out))
                states.append(h[0])
            fraud = self.model.fraud_head(torch.cat(states).unsqueeze(0)).squeeze()
            into = torch.from_numpy(np.flatnonzero(receiver == 0))
            means = _mean(h0, s_t[into], slot_t[into], weight[into], r_count)
            log_degree = torch.log1p(torch.from_numpy(graph.degree.astype(np.float32)))
            social_in = torch.cat([means.view(r_count, -1), log_degree.unsqueeze(1)], dim=1)
            social = self.model.social_head(social_in.view(1, -1)).squeeze()
        if not attribute:
            return CenterScore(float(fraud), float(social))
        grad_x, grad_w = torch.autograd.grad(fraud, [x, weight], allow_unused=True)
        contributions = (grad_x[0] * x[0]).detach().numpy()
        direct = np.flatnonzero(receiver == 0)
        effect = np.zeros(len(direct), dtype=np.float32)
        if grad_w is not None:
            effect = (grad_w * weight.detach()).numpy()[direct]
        return CenterScore(
            float(fraud.detach()),
            float(social.detach()),
            contributions,
            (order[sender[direct]], graph.relation[direct], effect),
        )


def _mean(h: Tensor, sender: Tensor, slot: Tensor, weight: Tensor, slots: int) -> Tensor:
    """``[slots, d]`` weighted mean of ``h[sender]`` per slot (``graphops.weighted_mean``
    with the receiver and relation folded into one slot index)."""
    degree = weight.new_zeros(slots).index_add(0, slot, weight)
    coef = weight / degree[slot].clamp_min(1e-12)
    return h.new_zeros(slots, h.shape[1]).index_add(0, slot, h[sender] * coef.unsqueeze(1))


def _depth(graph: ComputationGraph, layers: int) -> IntArray:
    """Hops from the centre along edges taken backwards (receiver to sender), capped at
    ``layers``: the accounts at depth ``d`` need states up to layer ``layers - d``."""
    depth = np.full(graph.num_nodes, layers, dtype=np.int64)
    depth[graph.center] = 0
    for _ in range(layers - 1):
        np.minimum.at(depth, graph.sender, depth[graph.receiver] + 1)
    return depth


def median_value(standardizer: Standardizer, name: str) -> float:
    """The fitted median of a column in natural units (NaN if the model has no such column):
    the raw value the standardiser maps to exactly 0."""
    if name not in standardizer.names:
        return float("nan")
    center = standardizer.center[standardizer.names.index(name)]
    if name in standardizer.log_columns:
        return float(np.sign(center) * np.expm1(abs(center)))
    return float(center)


def approximate_time_features(
    standardizer: Standardizer, prefix: str, transfers: float
) -> dict[str, float]:
    """Timing features of an account whose per-transfer timestamps are unknown.

    ``store.adjacent`` aggregates transfers per pair without first / last timestamps, so
    ``<prefix>_active_days``, ``_recency_days`` and ``_first_after_open_days`` are taken at
    their fitted medians (over the snapshot accounts with transfers), and ``_per_day`` is
    the account's transfer count over those median active days, as ``build_features``
    divides. An account without transfers gets NaN for all four, as in the batch.

    Chosen by measurement on held-out accounts (tests/integration/test_inductive.py): plain
    medians agree with the batch better than medians shrunk to fit the account's age, than
    "transfers span the account's life" (recency 0, active days = age), or than marking the
    four as missing.
    """
    if transfers <= 0:
        return {f"{prefix}_{s}": float("nan") for s in TIME_FEATURES}
    out = {f"{prefix}_{s}": median_value(standardizer, f"{prefix}_{s}") for s in TIME_FEATURES}
    active = out[f"{prefix}_active_days"]
    if np.isfinite(active):
        out[f"{prefix}_per_day"] = transfers / max(active, 1.0)
    return out
