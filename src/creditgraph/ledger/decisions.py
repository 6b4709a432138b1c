"""``DecisionLog``: every risk decision and every credit output, one hash-chained line each,
with the hash of what it was computed from, the model version, the thresholds applied and
the reasons given.

What an acknowledged answer guarantees depends on ``CREDITGRAPH_DECISION_ACK``:
``written`` (default) — its line was written to the log (kernel) before the answer left, so
it survives a crash of the server process; it is fsync'd within ``CREDITGRAPH_LOG_FLUSH_MS``
by the writer thread, so a power cut can lose the decisions of that last window.
``fsync`` — the answer waits for the group fsync: nothing acknowledged is ever lost, at the
price of one fsync in every decision's latency (docs/benchmarks.md has both).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from creditgraph.config import RiskSettings
from creditgraph.ledger.core import Ledger


@functools.lru_cache(maxsize=8)
def policy_hash(policy: RiskSettings) -> str:
    """Identifies every weight of the decision policy (the thresholds are logged in full)."""
    return hashlib.sha256(
        orjson.dumps(policy.model_dump(), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()[:16]


class DecisionLog:
    """Writes decisions and credit outputs to ``ledger``'s decision chain."""

    def __init__(self, ledger: Ledger, *, ack: str = "written") -> None:
        self.ledger = ledger
        self.chain = ledger.chains["decisions"]
        self.wait = ack == "fsync"

    def risk_sync(
        self,
        *,
        inputs: Mapping[str, Any],
        src: str,
        dst: str,
        decision: str,
        risk: float,
        model_version: str,
        policy: RiskSettings,
        reasons: Sequence[Mapping[str, Any]],
        degraded: bool,
        key_id: str | None,
    ) -> int:
        """Record one transfer decision; returns its seq (``await durable(seq)`` if needed)."""
        return self.ledger.append(
            "decisions",
            {
                "kind": "risk.transfer",
                "key_id": key_id,
                "model_version": model_version,
                "decision": decision,
                "risk": risk,
                "thresholds": {
                    "review": policy.review_threshold,
                    "block": policy.block_threshold,
                    "policy": policy_hash(policy),
                },
                "reasons": list(reasons),
                "degraded": degraded,
            },
            accounts=(src, dst),
            inputs=inputs,
        )

    def credit_sync(
        self,
        *,
        account_id: str,
        inputs: Mapping[str, Any],
        model_version: str,
        output: Mapping[str, Any],
        thresholds: Mapping[str, Any],
        reasons: Sequence[Mapping[str, Any]],
        key_id: str | None = None,
        kind: str = "credit",
    ) -> int:
        """Record one credit output about ``account_id`` (a score's social-credit dimension,
        a credit profile); returns its seq."""
        return self.ledger.append(
            "decisions",
            {
                "kind": kind,
                "key_id": key_id,
                "model_version": model_version,
                "output": dict(output),
                "thresholds": dict(thresholds),
                "reasons": list(reasons),
            },
            accounts=(account_id,),
            inputs=inputs,
        )

    async def credit(self, **kw: Any) -> int:
        """``credit_sync`` from the event loop; waits for the fsync under ``ack=fsync``."""
        seq = self.credit_sync(**kw)
        if self.wait:
            await self.chain.durable(seq)
        return seq

    async def settle(self, seq: int) -> None:
        """Under ``ack=fsync``, return once ``seq`` is on disk; at once otherwise."""
        if self.wait:
            await self.chain.durable(seq)
