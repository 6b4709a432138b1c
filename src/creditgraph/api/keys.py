"""API keys: ``cg_<key_id>_<secret>``; only a SHA-256 of the secret is stored.

The secret is 32 random bytes, so a fast hash is enough (no password-stretching needed: it
cannot be guessed from a dictionary). Keys live in a SQLite file under ``data_dir``
(``Settings.api_keys_path``); the API reads it again when it meets an unknown key id, so a key
created by ``creditgraph keys create`` works on a running server at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from creditgraph.config import Settings
from creditgraph.errors import InvalidInput, StoreUnavailable

ROLES = ("payment", "investigator", "admin")
PREFIX = "cg"

_DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
)
"""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who called: the key's id (safe to log), its name and role."""

    key_id: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class _StoredKey:
    principal: Principal
    digest: bytes
    revoked: bool


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(_DDL)
    except sqlite3.Error as e:
        raise StoreUnavailable(f"cannot open the API key file {path}: {e}") from e
    return db


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_key(settings: Settings, role: str, name: str) -> str:
    """Create a key for ``role``; returns the plaintext key (shown once, never stored)."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise InvalidInput("the key name must be 1-100 characters")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    db = _connect(settings.api_keys_path)
    try:
        db.execute(
            "INSERT INTO api_keys (key_id, name, role, secret_sha256, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key_id, name.strip(), role, _digest(secret).hex(), time.time()),
        )
    finally:
        db.close()
    return f"{PREFIX}_{key_id}_{secret}"


class KeyRing:
    """The server's view of the key file: verify a presented key in microseconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: dict[str, _StoredKey] = {}
        self._loaded_stamp: tuple[int, int] = (0, 0)
        self.reload()

    def _stamp(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> None:
        """Read every key from the file again."""
        stamp = self._stamp()
        db = _connect(self.path)
        try:
            rows = db.execute(
                "SELECT key_id, name, role, secret_sha256, revoked_at FROM api_keys"
            ).fetchall()
        finally:
            db.close()
        keys = {
            r[0]: _StoredKey(Principal(r[0], r[1], r[2]), bytes.fromhex(r[3]), r[4] is not None)
            for r in rows
        }
        with self._lock:
            self._keys = keys
            self._loaded_stamp = stamp

    def verify(self, presented: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None otherwise."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        key_id, secret = parts[1], parts[2]
        stored = self._keys.get(key_id)
        # An unknown id may be a key created since: re-read when the file changed.
        if stored is None and self._stamp() != self._loaded_stamp:
            self.reload()
            stored = self._keys.get(key_id)
        if stored is None or stored.revoked:
            return None
        if not hmac.compare_digest(stored.digest, _digest(secret)):
            return None
        return stored.principal
