"""The learned decision's bands: P(fraud) and expected loss against the thresholds."""

from __future__ import annotations

from typing import Literal

from creditgraph.config import RiskSettings

Decision = Literal["allow", "review", "block"]


def thresholds_of(p: RiskSettings) -> dict[str, float]:
    """The thresholds and ceilings a learned answer is taken with (audited)."""
    return {
        "review_p": p.transfer_review_p,
        "block_p": p.transfer_block_p,
        "review_loss": p.review_loss,
        "block_loss": p.block_loss,
        "max_amount": p.max_amount,
        "new_sender_max_amount": p.new_sender_max_amount,
    }


def band_learned(probability: float, amount: float, p: RiskSettings) -> Decision:
    """allow / review / block by P(fraud) and expected loss (no hard limits)."""
    loss = probability * amount
    if probability >= p.transfer_block_p or loss > p.block_loss:
        return "block"
    if probability >= p.transfer_review_p or loss > p.review_loss:
        return "review"
    return "allow"
