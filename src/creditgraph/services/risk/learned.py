"""The learned transfer decision: the transfer model's calibrated P(fraud) and expected loss
turned into allow / review / block. Pure: no I/O, no state.

- a hard limit (``limits.hard_limit``) blocks first, whatever the score;
- ``block`` when P(fraud) >= ``transfer_block_p`` or the expected loss P(fraud) x amount is
  above ``block_loss``; ``review`` likewise with ``transfer_review_p`` / ``review_loss``;
- reasons: the model line (P, expected loss, thresholds, model version) and, for review and
  block answers, the top factors of the contributions to the margin (path contributions or
  TreeSHAP, ``RiskSettings.transfer_reasons``; ``services.transfers.factors``); an allow
  answer carries the model line alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from creditgraph.config import RiskSettings
from creditgraph.domain import Reason, ReasonCode, reason
from creditgraph.services.risk.limits import hard_limit
from creditgraph.services.risk.policy import Decision
from creditgraph.services.transfers.bands import band_learned, thresholds_of
from creditgraph.services.transfers.factors import factor_reasons
from creditgraph.services.transfers.scorer import TransferScore


@dataclass(frozen=True)
class LearnedDecision:
    decision: Decision
    probability: float
    expected_loss: float
    reasons: list[Reason]
    thresholds: dict[str, float]


def decide_learned(
    score: TransferScore, amount: float, p: RiskSettings, version: str
) -> LearnedDecision:
    """The decision on a scored transfer under ``p`` (see the module docstring)."""
    th = thresholds_of(p)
    prob = score.probability
    loss = prob * amount if math.isfinite(amount) else math.inf
    decision: Decision = band_learned(prob, amount, p)
    reasons: list[Reason] = []
    limit = hard_limit(amount, score.sender_count, p)
    if limit is not None:
        decision = "block"
        reasons.append(limit)
    reasons.append(
        reason(
            ReasonCode.TRANSFER_MODEL,
            f"P(fraud) {prob:.3f}, expected loss {loss:,.2f} (review at P >= "
            f"{p.transfer_review_p:g} or loss > {p.review_loss:g}; block at P >= "
            f"{p.transfer_block_p:g} or loss > {p.block_loss:g})",
            {
                "probability": round(prob, 6),
                "expected_loss": round(loss, 2) if math.isfinite(loss) else None,
                "transfer_model_version": version,
                "thresholds": th,
            },
        )
    )
    if decision != "allow":
        # Contributions only where the answer needs its factors: review and block name
        # them; an allow answer is the calibrated margin and the model line.
        reasons += factor_reasons(
            score.names, score.explain(), score.features, attribution=score.attribution
        )
    return LearnedDecision(decision, prob, loss, reasons, th)
