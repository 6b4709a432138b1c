"""Account ids as the logs write them: a random pseudonym per account, kept apart.

The audit and decision logs never hold an account id, only ``p_<24 hex>``, a random token
drawn the first time the account is logged, and input hashes keyed with a random per-account
salt. The id ↔ (pseudonym, salt) mapping lives in its own SQLite file (0600,
``CREDITGRAPH_PSEUDONYMS_PATH``, by default beside the logs but meant for other storage).
Erasing a person deletes their row (crypto-shredding): every line about them stays, byte
for byte, so the hash chain is intact, but nothing links those lines to the person any more,
and their input hashes can no longer be tested against a guessed input. Nothing is derived
from the id, so the pseudonym cannot be recomputed either.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from creditgraph.errors import StoreUnavailable

DDL = """CREATE TABLE IF NOT EXISTS pseudonyms(
    account_id TEXT PRIMARY KEY,
    pseudonym TEXT NOT NULL UNIQUE,
    salt BLOB NOT NULL
) WITHOUT ROWID"""
PSEUDONYM_RE = re.compile(r"p_[0-9a-f]{24}")
#: Mappings kept in memory (the hot path asks about the same accounts again and again).
CACHE = 200_000


class Pseudonyms:
    """The id ↔ pseudonym mapping; safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # NORMAL in WAL: a commit costs no fsync; a power cut may lose the newest rows,
            # which only makes their log lines unlinkable (as if erased), never wrong.
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000"):
                self._db.execute(f"PRAGMA {pragma}")
            self._db.execute(DDL)
        except (OSError, sqlite3.Error) as e:
            raise StoreUnavailable(f"cannot open the pseudonym mapping {path}: {e}") from e
        self.path = path
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[str, bytes]] = OrderedDict()

    def of(self, account_ids: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        """(pseudonym, salt) of each id, drawn for ids seen for the first time."""
        out: dict[str, tuple[str, bytes]] = {}
        missing: list[str] = []
        with self._lock:
            for a in dict.fromkeys(account_ids):
                hit = self._cache.get(a)
                if hit is None:
                    missing.append(a)
                else:
                    out[a] = hit
            if missing:
                try:
                    found = self._read(missing)
                    new = [a for a in missing if a not in found]
                    if new:
                        self._db.executemany(
                            "INSERT OR IGNORE INTO pseudonyms VALUES (?, ?, ?)",
                            [
                                (a, f"p_{secrets.token_hex(12)}", secrets.token_bytes(16))
                                for a in new
                            ],
                        )
                        found.update(self._read(new))  # another process may have won
                except sqlite3.Error as e:
                    raise StoreUnavailable(f"pseudonym mapping {self.path}: {e}") from e
                for a, v in found.items():
                    out[a] = v
                    self._cache[a] = v
                while len(self._cache) > CACHE:
                    self._cache.popitem(last=False)
        return out

    def _read(self, ids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        found: dict[str, tuple[str, bytes]] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            rows = self._db.execute(
                "SELECT account_id, pseudonym, salt FROM pseudonyms WHERE account_id IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            for a, p, s in rows:
                found[a] = (p, bytes(s))
        return found

    def lookup(self, account_id: str) -> str | None:
        """The account's pseudonym if it was ever logged (and not erased); draws none."""
        with self._lock:
            row = self._db.execute(
                "SELECT pseudonym FROM pseudonyms WHERE account_id = ?", (account_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def reverse(self, pseudonyms: Iterable[str]) -> dict[str, str]:
        """pseudonym -> account id for those still mapped."""
        ps = list(dict.fromkeys(pseudonyms))
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(ps), 900):
                chunk = ps[i : i + 900]
                rows = self._db.execute(
                    "SELECT pseudonym, account_id FROM pseudonyms WHERE pseudonym IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                )
                out.update({str(p): str(a) for p, a in rows})
        return out

    def forget(self, account_id: str) -> str | None:
        """Delete the account's mapping (durably: this is the erasure); returns the pseudonym
        it had, None if it was never logged."""
        with self._lock:
            self._cache.pop(account_id, None)
            try:
                self._db.execute("PRAGMA synchronous=FULL")
                row = self._db.execute(
                    "DELETE FROM pseudonyms WHERE account_id = ? RETURNING pseudonym",
                    (account_id,),
                ).fetchone()
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no copy left in the WAL
                self._db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as e:
                raise StoreUnavailable(f"pseudonym mapping {self.path}: {e}") from e
        return None if row is None else str(row[0])

    def drop_cached(self, account_ids: Iterable[str]) -> None:
        """Forget cached mappings (another process erased these accounts)."""
        with self._lock:
            for a in account_ids:
                self._cache.pop(a, None)

    def cached_ids(self) -> list[str]:
        with self._lock:
            return list(self._cache)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _edge(ch: str) -> bool:
    """Whether ``ch`` may border an id (an id inside a longer word is not that id)."""
    return not (ch.isalnum() or ch == "_")


def scrub(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with each id of ``mapping`` (as a whole token) replaced by its pseudonym.

    No regular expression: compiling one per entry cost more than the rest of the entry."""
    if text in mapping:
        return mapping[text]
    for a in sorted((a for a in mapping if a and a in text), key=len, reverse=True):
        out, i = [], 0
        while (j := text.find(a, i)) >= 0:
            k = j + len(a)
            if (j == 0 or _edge(text[j - 1])) and (k == len(text) or _edge(text[k])):
                out += [text[i:j], mapping[a]]
            else:
                out.append(text[i:k])
            i = k
        text = "".join([*out, text[i:]])
    return text


def restore(text: str, reverse: Mapping[str, str]) -> str:
    """``text`` with the pseudonyms of ``reverse`` replaced by their account ids."""
    return PSEUDONYM_RE.sub(lambda m: reverse.get(m.group(0), m.group(0)), text)
