"""Hard limits no score overrides: absurd amounts, the ceiling, the new-sender ceiling."""

from __future__ import annotations

import math

import pytest

from creditgraph.config import RiskSettings
from creditgraph.services.risk.limits import hard_limit
from creditgraph.services.risk.policy import AccountRisk, Facts, TransferCheck, decide

POLICY = RiskSettings(max_amount=10_000, new_sender_max_amount=500, absurd_amount=1e9)


def facts(amount: float, count: int, p: float = 0.0) -> Facts:
    return Facts(
        check=TransferCheck("a", "b", amount),
        sender=AccountRisk("a", p, 0.5, "table"),
        receiver=AccountRisk("b", p, 0.5, "table"),
        receiver_rings=[],
        sender_count=count,
        sender_mean=100.0 if count else 0.0,
        shared_identity=[],
        relation=["friends"],
        degraded=False,
        model_version="v1",
    )


@pytest.mark.parametrize(
    ("amount", "count", "code", "rule"),
    [
        (1e308, 50, "AMOUNT_ABSURD", None),
        (math.inf, 50, "AMOUNT_ABSURD", None),
        (math.nan, 50, "AMOUNT_ABSURD", None),
        (10_000.01, 50, "HARD_LIMIT", "max_amount"),
        (500.01, 0, "HARD_LIMIT", "new_sender"),
    ],
)
def test_limits_block_a_zero_risk_transfer_with_the_reason_first(
    amount: float, count: int, code: str, rule: str | None
) -> None:
    d = decide(facts(amount, count), POLICY)
    assert d.decision == "block"
    assert d.reasons[0]["code"] == code
    if rule is not None:
        assert d.reasons[0]["evidence"]["rule"] == rule


@pytest.mark.parametrize(("amount", "count"), [(10_000, 50), (500, 0), (499.99, 0), (1, 0)])
def test_amounts_at_or_under_the_ceilings_pass_the_limits(amount: float, count: int) -> None:
    assert hard_limit(amount, count, POLICY) is None
    assert decide(facts(amount, count), POLICY).decision == "allow"


def test_the_new_sender_ceiling_is_stricter_by_default() -> None:
    p = RiskSettings()
    assert p.new_sender_max_amount < p.max_amount < p.absurd_amount < 1e308
    assert hard_limit(1e308, 1000, p) is not None
