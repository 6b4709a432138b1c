"""Append-only audit log: one JSON line per decision and per look-up.

Who (key id and name, never the key), what (action and target), when (UNIX seconds, UTC),
the result, and an optional purpose. The file is opened with ``O_APPEND`` and each record is
one ``write`` of a whole line, so concurrent writers never interleave and nothing is ever
rewritten. Rotation/shipping is left to the platform (logrotate ``copytruncate`` is NOT
append-only safe; rotate by renaming and reloading instead).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from creditgraph.api.keys import Principal


class AuditLog:
    """Appends audit records to ``path`` (created with its folder)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

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
        ids: Sequence[str] = (),
    ) -> None:
        """Append one record (a single write of one line). ``principal`` is None for a
        request refused without a valid key (``claimed_key_id``: the id the client sent);
        ``accounts`` lists every account the action touched or showed, ``ids`` the other
        ids (transfers, links, rings) it touched."""
        entry: dict[str, object] = {
            "ts": time.time(),
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
        if accounts:
            entry["accounts"] = list(accounts)
        if ids:
            entry["ids"] = list(ids)
        line = orjson.dumps(entry) + b"\n"
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
