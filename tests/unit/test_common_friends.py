"""The common-friend count of the transfer features: the same count as a set intersection
for short lists and for a hub's list of thousands, through ``ColumnarPairs.pair``."""

from __future__ import annotations

import numpy as np

from creditgraph.services.transfers.columnar import ColumnarPairs, _common


def _sorted_unique(rng: np.random.Generator, n: int, high: int) -> np.ndarray:
    return np.unique(rng.integers(0, high, n)).astype(np.int64)


def test_common_counts_what_a_set_intersection_counts() -> None:
    rng = np.random.default_rng(5)
    sizes = [0, 1, 5, 40, 63, 64, 65, 300, 3000]
    for na in sizes:
        for nb in sizes:
            a, b = _sorted_unique(rng, na, 4000), _sorted_unique(rng, nb, 4000)
            want = len(set(a.tolist()) & set(b.tolist()))
            assert _common(a, b) == want == _common(b, a), (na, nb)
    hub = np.arange(0, 6000, 2, dtype=np.int64)  # even ids
    assert _common(np.array([5999, 6000, 7000], np.int64), hub) == 0  # past the hub's end
    assert _common(np.array([0, 3, 5998], np.int64), hub) == 2


def test_pair_counts_common_friends_of_a_hub() -> None:
    # Account 0 is a hub befriending 1..2999; account 3000 befriends 1, 2 and 5000.
    friends = {0: list(range(1, 3000)), 3000: [1, 2, 5000]}
    n = 5001
    ptr = np.zeros(n + 1, np.int64)
    nbr: list[int] = []
    for i in range(n):
        nbr += sorted(friends.get(i, []))
        ptr[i + 1] = len(nbr)
    index = {f"A{i}": i for i in range(n)}
    pairs = ColumnarPairs(
        index,
        ptr,
        np.array(nbr, np.int64),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        {},
        {},
    )
    assert pairs.pair("A0", "A3000")[2] == 2.0
    assert pairs.pair("A3000", "A0")[2] == 2.0
    assert pairs.pair("A0", "A4000")[2] == 0.0  # no friends at all
