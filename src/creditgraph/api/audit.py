"""The audit log: one hash-chained JSON line per decision, look-up and change.

Who (key id and name, never the key), what (action and target), when (UNIX seconds, UTC),
the result, and an optional purpose. Account ids never reach the file: the accounts an entry
is about (``accounts``) are written as pseudonyms (``subjects``), and each of those ids in
the target, result or purpose text is replaced by its pseudonym. The chain, its fsync, its
rotation and retention are ``creditgraph.ledger.chain``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from creditgraph.api.keys import Principal
from creditgraph.ledger import Ledger


class AuditLog:
    """Appends audit entries to ``ledger``'s audit chain."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.chain = ledger.chains["audit"]

    def record(
        self,
        *,
        principal: Principal | None,
        action: str,
        target: str,
        result: str,
        purpose: str | None = None,
        accounts: Sequence[str] = (),
        claimed_key_id: str | None = None,
    ) -> int:
        """Append one entry (never waits for the disk); returns its seq. ``principal`` None
        records a refusal before anyone was identified (``claimed_key_id``: the id the
        client sent, if any)."""
        entry: dict[str, Any] = {
            "key_id": None if principal is None else principal.key_id,
            "key_name": None if principal is None else principal.name,
            "role": None if principal is None else principal.role,
            "action": action,
            "target": target,
            "result": result,
        }
        if claimed_key_id is not None:
            entry["claimed_key_id"] = claimed_key_id
        if purpose is not None:
            entry["purpose"] = purpose
        return self.ledger.append("audit", entry, accounts=accounts)

    async def arecord(self, **kw: Any) -> int:
        """``record``, returning once the entry is fsync'd."""
        seq = self.record(**kw)
        await self.chain.durable(seq)
        return seq
