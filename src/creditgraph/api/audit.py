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
        principal: Principal,
        action: str,
        target: str,
        result: str,
        purpose: str | None = None,
    ) -> None:
        """Append one record (a single write of one line)."""
        entry = {
            "ts": time.time(),
            "key_id": principal.key_id,
            "key_name": principal.name,
            "role": principal.role,
            "action": action,
            "target": target,
            "result": result,
        }
        if purpose is not None:
            entry["purpose"] = purpose
        line = orjson.dumps(entry) + b"\n"
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
