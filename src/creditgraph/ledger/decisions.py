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

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from creditgraph.batching import PassBatch
from creditgraph.config import RiskSettings
from creditgraph.ledger.chain import ChainLog, LogUnavailable
from creditgraph.ledger.core import Ledger


class LineBatch(PassBatch[bytes, int]):
    """The decision lines submitted in one event-loop pass, written by one
    ``ChainLog.append_json_many`` (one lock, ``flock``, tail check and ``write``): each line's
    system calls cost more than the rest of it on a busy server. Each submitter gets its
    line's seq, or a ``LogUnavailable`` when the batch could not be written (then none of its
    lines is, and no answer goes out unrecorded)."""

    def __init__(self, chain: ChainLog) -> None:
        super().__init__(self._write)
        self.chain = chain

    def _write(self, bodies: list[bytes]) -> Sequence[int | BaseException]:
        try:
            return self.chain.append_json_many(bodies)
        except LogUnavailable as e:  # each waiter raises its own instance
            return [LogUnavailable(*e.args) for _ in bodies]


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
        self._policy: tuple[RiskSettings, str] | None = None
        self.batch = LineBatch(self.chain)

    def _policy_hash(self, policy: RiskSettings) -> str:
        # By identity: hashing the (frozen) settings model each decision cost ~10 µs.
        if self._policy is None or self._policy[0] is not policy:
            self._policy = (policy, policy_hash(policy))
        return self._policy[1]

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
        applied: Mapping[str, Any] | None = None,
    ) -> int:
        """Record one transfer decision; returns its seq (``await durable(seq)`` if needed).

        ``applied``: what the deciding policy itself used (its name, the thresholds it
        applied, a review-queue id), recorded beside the configured thresholds."""
        return self.chain.append_json(
            self.risk_line(
                inputs=inputs,
                src=src,
                dst=dst,
                decision=decision,
                risk=risk,
                model_version=model_version,
                policy=policy,
                reasons=reasons,
                degraded=degraded,
                key_id=key_id,
                applied=applied,
            )
        )

    async def risk(self, **kw: Any) -> int:
        """``risk_sync`` from the event loop: the line joins the others of this loop pass
        (``LineBatch``) and is written with them; returns once it is written."""
        return await self.batch.submit(self.risk_line(**kw))

    def risk_line(
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
        applied: Mapping[str, Any] | None = None,
    ) -> bytes:
        """The body of ``risk_sync``'s line (``ChainLog.append_json``)."""
        return self.ledger.line(
            {
                "kind": "risk.transfer",
                "key_id": key_id,
                "model_version": model_version,
                "decision": decision,
                "risk": risk,
                "thresholds": {
                    "review": policy.review_threshold,
                    "block": policy.block_threshold,
                    "policy": self._policy_hash(policy),
                },
                "reasons": list(reasons),
                "degraded": degraded,
                **({"applied": dict(applied)} if applied else {}),
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
