"""A GNN's relation occlusions in one forward over disjoint copies (``ml.center``) equal the
separate forwards without each relation."""

from __future__ import annotations

import pytest
import torch

from creditgraph.ml.center import _occlusion_copies
from creditgraph.ml.model import GraphInput, RelationalGNN, WaveletGNN

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RELATIONS = ["FRIEND", "TRANSFER_in", "TRANSFER_out", "SHARES_DEVICE"]


def _graph(
    n: int, seed: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 7, generator=g)
    ei, ew = {}, {}
    for k, rel in enumerate(RELATIONS):
        m = 0 if k == 3 else 3 * n  # one relation present but without edges
        ei[rel] = torch.randint(0, n, (2, m), generator=g)
        ew[rel] = torch.rand(m, generator=g) + 0.5
    return x, ei, ew


@pytest.mark.parametrize("architecture", [RelationalGNN, WaveletGNN])
@pytest.mark.parametrize("occluded", [[0, 1, 2], [1], [], [0, 3]])
def test_copies_equal_separate_forwards(architecture: type, occluded: list[int]) -> None:
    torch.manual_seed(0)
    model = architecture(7, RELATIONS, hidden=16).eval()
    n = 40
    x, ei, ew = _graph(n, 1)
    with torch.no_grad():
        bx, bei, bew = _occlusion_copies(x, ei, ew, RELATIONS, occluded)
        assert bx.shape[0] == n * (len(occluded) + 1)
        batched = model(GraphInput(bx, bei, bew))
        for j, k in enumerate([-1, *occluded]):
            rest = {r: e for r, e in ei.items() if k < 0 or r != RELATIONS[k]}
            weights = {r: w for r, w in ew.items() if k < 0 or r != RELATIONS[k]}
            alone = model(GraphInput(x, rest, weights))
            rows = slice(j * n, (j + 1) * n)
            torch.testing.assert_close(
                batched.fraud_logit[rows], alone.fraud_logit, atol=1e-6, rtol=0
            )
            torch.testing.assert_close(
                batched.social_logit[rows], alone.social_logit, atol=1e-6, rtol=0
            )
        if occluded:
            # Dropping a relation with edges changes the logits: the comparison above could
            # fail (the first occluded relation of each case has edges).
            assert not torch.allclose(batched.fraud_logit[:n], batched.fraud_logit[n : 2 * n])
