"""The learned decision's context lines (``policy.context_reasons``) are exactly the lines
the hand-weighted ``decide`` gives for the two accounts, in its order, on random facts:
building only them (instead of the whole baseline decision) changes no answer."""

from __future__ import annotations

import random

from creditgraph.config import RiskSettings
from creditgraph.ml.scorer import InductiveScore
from creditgraph.services.risk.policy import (
    AccountRisk,
    Facts,
    TransferCheck,
    context_reasons,
    decide,
)
from creditgraph.services.risk.tables import RingInfo

CONTEXT = {"RECEIVER_RISK", "SENDER_RISK", "RECEIVER_IN_RING", "SAME_ACCOUNT", "SHARED_IDENTITY"}


def _party(rng: random.Random, account_id: str) -> AccountRisk:
    source = rng.choice(["table", "live", "inductive", "unavailable"])
    if source == "unavailable":
        return AccountRisk(account_id, None, None, "unavailable")
    p, c = rng.random(), rng.random()
    inductive = None
    if source in ("live", "inductive"):
        reasons = [
            {"code": f"R{k}", "message": f"m{k}", "weight": rng.random(), "evidence": {}}
            for k in range(rng.randint(0, 5))
        ]
        inductive = InductiveScore(account_id, p, c, "v1", reasons, True, False, 0.1, 0.2)  # type: ignore[arg-type]
    return AccountRisk(account_id, p, c, source, inductive)  # type: ignore[arg-type]


def test_context_reasons_equal_the_baselines_account_lines() -> None:
    rng = random.Random(7)
    policy = RiskSettings()
    kinds: dict[str, int] = {}
    for _ in range(2000):
        src = rng.choice(["a", "b"])
        dst = rng.choice(["a", "b", "c"])
        rings = [
            RingInfo(f"ring{k}", rng.choice(["fanin", "cycle"]), rng.random() * 1.2, "open")
            for k in range(rng.choice([0, 0, 1, 3]))
        ]
        shared = sorted(
            rng.sample(["SHARES_DEVICE", "SHARES_ADDRESS", "SHARES_PHONE"], k=rng.randint(0, 2))
        )
        sender, receiver = _party(rng, src), _party(rng, dst)
        count = rng.choice([0, 1, 30])
        facts = Facts(
            check=TransferCheck(src, dst, rng.choice([5.0, 250.0, 1e7, 1e308])),
            sender=sender,
            receiver=receiver,
            receiver_rings=rings,
            sender_count=count,
            sender_mean=40.0 if count else 0.0,
            shared_identity=shared,
            relation=rng.choice([[], ["friends"], ["common neighbour"]]),
            degraded=False,
            model_version="v0001",
        )
        want = [r for r in decide(facts, policy).reasons if r["code"] in CONTEXT]
        got = context_reasons(sender, receiver, rings, shared, src == dst, "v0001")
        assert got == want
        for r in got:
            kinds[r["code"]] = kinds.get(r["code"], 0) + 1
    # Every kind of line was compared, many times.
    assert all(kinds.get(code, 0) > 100 for code in CONTEXT), kinds
