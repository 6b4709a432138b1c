"""torch's intra-op thread count, for entry points that must not import torch themselves."""

from __future__ import annotations

import torch


def use_threads(n: int) -> None:
    """Let torch use ``n`` threads for one operation (``torch.set_num_threads``)."""
    torch.set_num_threads(n)
