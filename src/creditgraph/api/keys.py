"""API keys: ``cg_<key_id>_<secret>``; only a SHA-256 of the secret is stored.

The secret is 32 random bytes, so a fast hash is enough (no password-stretching needed: it
cannot be guessed from a dictionary). Keys live in a SQLite file under ``data_dir``
(``Settings.api_keys_path``, mode 0600). A running server stats that file at most every
``CHECK_INTERVAL_S`` and re-reads it when it changed, so a key created, revoked or rotated by
``creditgraph keys ...`` takes effect on every worker within a second, at the cost of one
``stat`` per half second (never a read per request). Expiry is checked on every request
against the in-memory table.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from creditgraph.config import Settings
from creditgraph.errors import InvalidInput, NotFound, StoreUnavailable

ROLES = ("payment", "investigator", "admin")
PREFIX = "cg"
#: How stale a server's view of the key file may be (revocation is effective within this).
CHECK_INTERVAL_S = 0.5

_DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    expires_at REAL
)
"""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who called: the key's id (safe to log), its name and role."""

    key_id: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key without its hash (what ``keys list`` shows)."""

    key_id: str
    name: str
    role: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def status(self, now: float | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or time.time()):
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class _StoredKey:
    principal: Principal
    digest: bytes
    revoked: bool
    expires_at: float | None


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Created 0600: the hashes are not secrets, but who holds which role is.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(_DDL)
        columns = {r[1] for r in db.execute("PRAGMA table_info(api_keys)")}
        if "expires_at" not in columns:  # a key file from before expiry existed
            db.execute("ALTER TABLE api_keys ADD COLUMN expires_at REAL")
    except sqlite3.Error as e:
        raise StoreUnavailable(f"cannot open the API key file {path}: {e}") from e
    return db


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _key_id(presented: str) -> str:
    """The id of ``KEY_ID`` or of a whole ``cg_<id>_<secret>`` pasted by mistake."""
    parts = presented.strip().split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else presented.strip()


def create_key(settings: Settings, role: str, name: str, *, expires_at: float | None = None) -> str:
    """Create a key for ``role`` (valid until ``expires_at``, UNIX seconds, if given);
    returns the plaintext key (shown once, never stored)."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise InvalidInput("the key name must be 1-100 characters")
    if expires_at is not None and expires_at <= time.time():
        raise InvalidInput("the expiry must lie in the future")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    db = _connect(settings.api_keys_path)
    try:
        db.execute(
            "INSERT INTO api_keys (key_id, name, role, secret_sha256, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key_id, name.strip(), role, _digest(secret).hex(), time.time(), expires_at),
        )
    finally:
        db.close()
    return f"{PREFIX}_{key_id}_{secret}"


_INFO = "SELECT key_id, name, role, created_at, expires_at, revoked_at FROM api_keys"


def list_keys(settings: Settings) -> list[KeyInfo]:
    """Every stored key, oldest first (revoked and expired ones too)."""
    db = _connect(settings.api_keys_path)
    try:
        return [KeyInfo(*r) for r in db.execute(_INFO + " ORDER BY created_at, key_id")]
    finally:
        db.close()


def revoke_key(settings: Settings, key_id: str) -> KeyInfo:
    """Revoke a key (again: no change); ``NotFound`` for an unknown id."""
    key_id = _key_id(key_id)
    db = _connect(settings.api_keys_path)
    try:
        db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            (time.time(), key_id),
        )
        row = db.execute(_INFO + " WHERE key_id = ?", (key_id,)).fetchone()
    finally:
        db.close()
    if row is None:
        raise NotFound(f"no API key {key_id!r} (see creditgraph keys list)")
    return KeyInfo(*row)


def rotate_key(
    settings: Settings, key_id: str, *, grace_s: float = 0.0, expires_at: float | None = None
) -> tuple[str, KeyInfo]:
    """A new key with the old one's role and name; the old one is revoked at once, or with
    ``grace_s`` expires that many seconds from now (both work meanwhile). Returns the new
    plaintext key and the old key's record. A revoked key cannot be rotated."""
    key_id = _key_id(key_id)
    old = next((k for k in list_keys(settings) if k.key_id == key_id), None)
    if old is None:
        raise NotFound(f"no API key {key_id!r} (see creditgraph keys list)")
    if old.revoked_at is not None:
        raise InvalidInput(f"API key {key_id!r} is revoked: create a new one instead")
    if grace_s < 0:
        raise InvalidInput("the grace period cannot be negative")
    new = create_key(settings, old.role, old.name, expires_at=expires_at)
    if grace_s == 0:
        return new, revoke_key(settings, key_id)
    until = time.time() + grace_s
    db = _connect(settings.api_keys_path)
    try:
        db.execute(
            "UPDATE api_keys SET expires_at = min(coalesce(expires_at, ?), ?) WHERE key_id = ?",
            (until, until, key_id),
        )
        row = db.execute(_INFO + " WHERE key_id = ?", (key_id,)).fetchone()
    finally:
        db.close()
    return new, KeyInfo(*row)


class KeyRing:
    """The server's view of the key file: verify a presented key in microseconds."""

    def __init__(self, path: Path, check_interval_s: float = CHECK_INTERVAL_S) -> None:
        self.path = path
        self.check_interval_s = check_interval_s
        self._lock = threading.Lock()
        self._keys: dict[str, _StoredKey] = {}
        self._loaded_stamp: tuple[int, int, int] = (0, 0, 0)
        self._next_check = 0.0
        self.reload()

    def _stamp(self) -> tuple[int, int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (0, 0, 0)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload(self) -> None:
        """Read every key from the file again."""
        stamp = self._stamp()
        db = _connect(self.path)
        try:
            rows = db.execute(
                "SELECT key_id, name, role, secret_sha256, revoked_at, expires_at FROM api_keys"
            ).fetchall()
        finally:
            db.close()
        keys = {
            r[0]: _StoredKey(
                Principal(r[0], r[1], r[2]), bytes.fromhex(r[3]), r[4] is not None, r[5]
            )
            for r in rows
        }
        with self._lock:
            self._keys = keys
            self._loaded_stamp = stamp

    def _refresh(self, now: float) -> None:
        """Re-read the file if it changed since the last look (one stat per interval)."""
        self._next_check = now + self.check_interval_s
        if self._stamp() != self._loaded_stamp:
            self.reload()

    def verify(self, presented: str) -> Principal | None:
        """The principal of a valid, unrevoked, unexpired key; None otherwise."""
        now = time.monotonic()
        if now >= self._next_check:
            self._refresh(now)
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        key_id, secret = parts[1], parts[2]
        stored = self._keys.get(key_id)
        # An unknown id may be a key created a moment ago: look at once, not at the next tick.
        if stored is None and self._stamp() != self._loaded_stamp:
            self.reload()
            stored = self._keys.get(key_id)
        if stored is None or stored.revoked:
            return None
        if stored.expires_at is not None and stored.expires_at <= time.time():
            return None
        if not hmac.compare_digest(stored.digest, _digest(secret)):
            return None
        return stored.principal
