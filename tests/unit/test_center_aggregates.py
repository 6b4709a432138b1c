"""``neighbours.center_aggregates`` is the centre's row of ``neighbour_aggregates``, to the
bit (trees split at exact values, e.g. a spread of zero)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from creditgraph.ml.features import FeatureSet
from creditgraph.ml.neighbours import center_aggregates, neighbour_aggregates

RELATIONS = ["FRIEND", "TRANSFER_in", "TRANSFER_out", "EMPTY"]
NAMES = [f"c{j}" for j in range(6)]


@dataclass
class Graph:
    x: npt.NDArray[np.float32]
    sender: npt.NDArray[np.int64]
    receiver: npt.NDArray[np.int64]
    relation: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float32]

    def center_row(self, center: int) -> tuple[npt.NDArray[np.float32], list[str]]:
        blocks, names = center_aggregates(
            self.x, center, self.sender, self.receiver, self.relation, self.weight, RELATIONS, NAMES
        )
        assert all(b.shape[0] == 1 for b in blocks)
        return np.concatenate([b[0] for b in blocks]), names


def graph(seed: int) -> Graph:
    rng = np.random.default_rng(seed)
    n, e = 60, 400
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:5] = 1.5  # identical rows: spreads of exactly zero
    sender = rng.integers(0, n, e)
    receiver = np.where(rng.random(e) < 0.15, 0, rng.integers(0, n, e))  # the centre: 0
    relation = rng.integers(0, 3, e)  # "EMPTY" has no edge
    sender[:5], receiver[:5] = np.arange(5), 0  # equal neighbours of the centre
    sender[5], receiver[5] = 0, 0  # a self-loop
    sender[6:9], receiver[6:9] = 7, 0  # repeated edges
    receiver[receiver == 8] = 9  # account 8: only equal FRIEND neighbours
    sender[9:13], receiver[9:13], relation[9:13] = np.arange(1, 5), 8, 0
    weight = rng.choice([1.0, np.log1p(2.0), np.log1p(7.0)], e).astype(np.float32)
    weight[9:13] = 1.0
    return Graph(x, sender, receiver, relation, weight)


def test_center_row_equals_the_full_aggregates_row() -> None:
    for seed in range(4):
        g = graph(seed)
        edge_index, edge_weight = {}, {}
        for k, rel in enumerate(RELATIONS):
            keep = g.relation == k
            edge_index[rel] = torch.from_numpy(np.stack([g.sender[keep], g.receiver[keep]]))
            edge_weight[rel] = torch.from_numpy(g.weight[keep])
        local = FeatureSet(
            account_ids=[str(i) for i in range(len(g.x))],
            names=[],
            x=np.empty((len(g.x), 0), dtype=np.float32),
            log_columns=frozenset(),
            edge_index=edge_index,
            edge_weight=edge_weight,
        )
        full, full_names = neighbour_aggregates(torch.from_numpy(g.x), NAMES, local, edge_list=True)
        for center in (0, 7, 8, 59):
            row, names = g.center_row(center)
            assert names == full_names
            np.testing.assert_array_equal(row, np.concatenate([b.numpy()[center] for b in full]))
        # The cases the comparison must cover: a zero spread, an empty relation, a centre
        # with neighbours in several relations.
        column = {name: j for j, name in enumerate(full_names)}
        assert g.center_row(8)[0][column["FRIEND:std1:c0"]] == 0.0
        assert g.center_row(8)[0][column["FRIEND:count"]] > 0.0
        assert g.center_row(0)[0][column["EMPTY:count"]] == 0.0
        assert min(g.center_row(0)[0][column[f"{rel}:count"]] for rel in RELATIONS[:3]) > 0.0
