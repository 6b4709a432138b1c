"""Neighbour features for tree models: feature aggregates and label-aware neighbour shares.

- ``neighbour_aggregates``: per relation, over the standardised own features of the direct
  neighbours, the weighted mean, max, standard deviation and the neighbour count (1 hop), and
  the mean of the neighbours' means and the max of their maxes (2 hops). Transfers arrive as
  two relations (``TRANSFER_out`` / ``TRANSFER_in``, see ``ml.features``), so every transfer
  aggregate exists by direction.
- ``label_features``: per relation, how many of an account's neighbours carry a known
  TRAINING label, how many of those are fraud, the smoothed fraud share among them, and the
  same share over two hops. Built only from the training labels passed in, out of fold (a
  training account sees the labels of the other folds only), and an account's own label is
  never part of its own row: not at one hop (no self-loops), not at two (paths that return
  to the account are subtracted), not through its fold. ``tests/unit/test_candidates.py``
  flips labels one at a time to prove it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from creditgraph.domain import IntArray
from creditgraph.ml.features import F32Array, FeatureSet
from creditgraph.ml.graphops import _csr, mean_adjacency, neighbour_max, weighted_mean

#: Statistics ``neighbour_aggregates`` emits per relation and input column, in order.
AGGREGATES = ("mean1", "max1", "std1", "mean2", "max2")
#: Label-aware columns per relation, in order.
LABEL_COLUMNS = ("labelled1", "fraud1", "fraud_share1", "fraud_share2")
#: Pseudo-count of legit neighbours added to every fraud share: an account with one
#: labelled neighbour is not a "100 % fraud neighbourhood". A constant, not the training
#: fraud rate: that rate contains the account's own label.
SMOOTHING = 2.0


def neighbour_aggregates(
    x: Tensor, input_names: list[str], features: FeatureSet, *, edge_list: bool = False
) -> tuple[list[Tensor], list[str]]:
    """Blocks ``[n, d]`` and their column names ``REL:stat:column`` (plus ``REL:count``).

    ``edge_list`` aggregates straight from the edge list instead of building a sparse
    matrix per relation: slower per edge, but without the matrix's fixed cost, which is what
    a one-account subgraph of a few hundred edges pays for."""
    n = x.shape[0]
    blocks: list[Tensor] = []
    names: list[str] = []
    for rel in features.relations:
        ei = features.edge_index[rel]
        w = features.edge_weight[rel]
        mean = _edge_list_mean(ei, w, n) if edge_list else _matrix_mean(ei, w, n)
        mean1, max1 = mean(x), neighbour_max(x, ei, n)
        std1 = (mean(x * x) - mean1 * mean1).clamp_min(0.0).sqrt()
        blocks += [mean1, max1, std1, mean(mean1), neighbour_max(max1, ei, n)]
        for stat in AGGREGATES:
            names += [f"{rel}:{stat}:{c}" for c in input_names]
        count = torch.bincount(ei[1], minlength=n).to(x.dtype)
        blocks.append(torch.log1p(count).unsqueeze(1))
        names.append(f"{rel}:count")
    return blocks, names


def center_aggregates(
    x: F32Array,
    center: int,
    sender: IntArray,
    receiver: IntArray,
    relation: IntArray,
    weight: F32Array,
    relations: list[str],
    input_names: list[str],
) -> tuple[list[F32Array], list[str]]:
    """Row ``center`` of ``neighbour_aggregates`` on the graph of these edges (local indices,
    ``relation[e]`` a position in ``relations``), computed from what that row reads: the
    centre's incoming edges and its neighbours' own incoming edges, every relation at once.
    Blocks ``[1, d]`` (and ``[1, 1]`` counts) with the same names and order. A request
    scores one account; the full version spent most of its time on everyone else's rows.

    The arithmetic is ``graphops``' (float32, edges added one by one in order, the spread in
    torch), so values match the batch to the bit where it matters: trees split at a spread
    of exactly zero, and a last-bit difference there moved a score."""
    r_count, (n, d) = len(relations), x.shape
    w = weight.astype(np.float32)
    into = receiver == center
    rel_c, s_c, w_c = relation[into], sender[into], w[into]
    deg_c = np.zeros(r_count, dtype=np.float32)
    _add_at(deg_c, rel_c, w_c)
    coef = w_c / np.maximum(deg_c[rel_c], np.float32(1e-12))
    rows = x[s_c]
    mean1 = np.zeros((r_count, d), dtype=np.float32)
    _add_at(mean1, rel_c, rows * coef[:, None])
    square = np.zeros((r_count, d), dtype=np.float32)
    _add_at(square, rel_c, (rows * rows) * coef[:, None])
    count = np.bincount(rel_c, minlength=r_count)
    max1 = np.full((r_count, d), -np.inf, dtype=np.float32)
    _max_at(max1, rel_c, rows)
    max1[count == 0] = 0.0
    mean_t = torch.from_numpy(mean1)
    std1 = (torch.from_numpy(square) - mean_t * mean_t).clamp_min(0.0).sqrt().numpy()

    # The neighbours' own one-hop mean and max per relation, over their incoming edges: a
    # slot per (relation, neighbour).
    slots, slot_of = np.unique(rel_c * n + s_c, return_inverse=True)
    key = relation * n + receiver
    at = np.minimum(np.searchsorted(slots, key), max(len(slots) - 1, 0))
    hit = np.flatnonzero(slots[at] == key) if len(slots) else np.empty(0, dtype=np.int64)
    slot, s2, w2 = at[hit], sender[hit], w[hit]
    deg = np.zeros(len(slots), dtype=np.float32)
    _add_at(deg, slot, w2)
    n_mean1 = np.zeros((len(slots), d), dtype=np.float32)
    _add_at(n_mean1, slot, x[s2] * (w2 / np.maximum(deg[slot], np.float32(1e-12)))[:, None])
    n_max1 = np.full((len(slots), d), -np.inf, dtype=np.float32)
    _max_at(n_max1, slot, x[s2])
    n_max1[np.bincount(slot, minlength=len(slots)) == 0] = 0.0
    mean2 = np.zeros((r_count, d), dtype=np.float32)
    _add_at(mean2, rel_c, n_mean1[slot_of] * coef[:, None])
    max2 = np.full((r_count, d), -np.inf, dtype=np.float32)
    _max_at(max2, rel_c, n_max1[slot_of])
    max2[count == 0] = 0.0
    log_count = torch.log1p(torch.from_numpy(count.astype(np.float32))).numpy()

    blocks: list[F32Array] = []
    for k in range(r_count):
        blocks += [b[k : k + 1] for b in (mean1, max1, std1, mean2, max2)]
        blocks.append(log_count[k : k + 1, None])
    return blocks, list(_aggregate_names(tuple(relations), tuple(input_names)))


def _add_at(out: F32Array, index: IntArray, values: F32Array) -> None:
    """``np.add.at(out, index, values)`` by ``torch.index_add_``: the same float32 adds in
    the same order (one index after the other), ~15x faster on a request's 2-hop rows."""
    index_t = torch.from_numpy(index.astype(np.int64, copy=False))
    torch.from_numpy(out).index_add_(0, index_t, torch.from_numpy(np.ascontiguousarray(values)))


def _max_at(out: F32Array, index: IntArray, values: F32Array) -> None:
    """``np.maximum.at(out, index, values)`` by ``torch.scatter_reduce_`` (``amax``, the
    existing value included), as fast as ``_add_at``; inputs are finite."""
    v = torch.from_numpy(np.ascontiguousarray(values))
    i = (
        torch.from_numpy(index.astype(np.int64, copy=False))
        .view(-1, *([1] * (v.dim() - 1)))
        .expand_as(v)
    )
    torch.from_numpy(out).scatter_reduce_(0, i, v, "amax")


@functools.lru_cache(maxsize=16)
def _aggregate_names(relations: tuple[str, ...], input_names: tuple[str, ...]) -> tuple[str, ...]:
    """``neighbour_aggregates``' column names (one layout per served model)."""
    names: list[str] = []
    for rel in relations:
        for stat in AGGREGATES:
            names += [f"{rel}:{stat}:{c}" for c in input_names]
        names.append(f"{rel}:count")
    return tuple(names)


def _edge_list_mean(ei: Tensor, w: Tensor, n: int) -> Callable[[Tensor], Tensor]:
    return lambda h: weighted_mean(h, ei, w, n)


def _matrix_mean(ei: Tensor, w: Tensor, n: int) -> Callable[[Tensor], Tensor]:
    matrix = mean_adjacency(ei, w, n)
    return lambda h: matrix @ h


def assign_folds(train: IntArray, n: int, folds: int, seed: int) -> IntArray:
    """Fold (0..folds-1) of each training account, -1 for every other account.

    Random, not stratified by label: a fold must not depend on the labels it hides.
    """
    fold = np.full(n, -1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    fold[train] = rng.permutation(np.arange(len(train)) % folds)
    return fold


def label_features(
    features: FeatureSet, known: npt.NDArray[np.int8], fold: IntArray, folds: int
) -> tuple[F32Array, list[str]]:
    """``[n, 4 * relations]`` label-aware columns (``LABEL_COLUMNS`` per relation).

    ``known`` is the training label of each account (1 fraud, 0 legit, -1 unknown or not a
    training label); ``fold`` comes from ``assign_folds`` (-1: not a training account).
    An account of fold ``f`` is described with the labels outside fold ``f``; every other
    account with all of ``known``, its counts scaled by ``(folds - 1) / folds`` so that both
    see the same expected number of labelled neighbours.
    """
    n = features.num_accounts
    labelled = known >= 0
    # (rows described, labels they may see, count factor): one variant per fold, then the
    # accounts outside training, who see every training label.
    variants = [(fold == f, fold != f, 1.0) for f in range(folds)]
    scale = (folds - 1) / folds if folds > 1 else 1.0
    variants.append((fold < 0, np.ones(n, dtype=bool), scale))
    width = len(LABEL_COLUMNS)
    out = np.zeros((n, width * len(features.relations)), dtype=np.float32)
    names: list[str] = []
    for r, rel in enumerate(features.relations):
        ei = features.edge_index[rel]
        adj = _csr(ei[1], ei[0], torch.ones(ei.shape[1], dtype=torch.float64), n)
        returning = _returning_paths(ei, n)
        for rows, visible, factor in variants:
            if not rows.any():
                continue
            y = np.stack([labelled & visible, (known == 1) & visible], axis=1).astype(np.float64)
            one = adj @ torch.from_numpy(y)
            # Two-hop paths that come back to the account would carry its own label.
            two = (adj @ one).numpy() - returning[:, None] * y
            lab1, fr1 = one.numpy()[rows, 0] * factor, one.numpy()[rows, 1] * factor
            lab2, fr2 = two[rows, 0], two[rows, 1]
            block = np.stack(
                [
                    np.log1p(lab1),
                    np.log1p(fr1),
                    fr1 / (lab1 + SMOOTHING),
                    fr2 / (lab2 + SMOOTHING),
                ],
                axis=1,
            )
            out[rows, r * width : (r + 1) * width] = block
        names += [f"{rel}:label:{c}" for c in LABEL_COLUMNS]
    return out, names


def _returning_paths(edge_index: Tensor, n: int) -> npt.NDArray[np.float64]:
    """Per account, the number of two-hop paths ``a -> j -> a`` (reverse edge present)."""
    src, dst = edge_index[0].numpy().astype(np.int64), edge_index[1].numpy().astype(np.int64)
    key = dst * n + src
    mutual = np.isin(src * n + dst, key)
    return np.bincount(dst[mutual], minlength=n).astype(np.float64)
