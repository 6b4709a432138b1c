"""``Ledger``: the two chains and the pseudonym mapping of one data directory, and the one
way entries about accounts are written to them (ids replaced by pseudonyms everywhere)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from creditgraph.config import Settings
from creditgraph.ledger.chain import ChainLog, check_window, entries
from creditgraph.ledger.pseudonyms import Pseudonyms, restore, scrub

Stream = Literal["audit", "decisions"]
STREAMS: tuple[Stream, ...] = ("audit", "decisions")


def _map_text(value: Any, fn: Callable[[str], str]) -> Any:
    """``value`` with ``fn`` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {fn(str(k)): _map_text(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_text(v, fn) for v in value]
    return value


class Ledger:
    """Audit and decision chains plus the pseudonyms, opened from ``settings``."""

    def __init__(
        self,
        audit_path: Path,
        decisions_path: Path,
        pseudonyms_path: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        retention_s: float = 183 * 86400,
        flush_s: float = 0.02,
    ) -> None:
        kw: dict[str, Any] = {
            "max_bytes": max_bytes,
            "retention_s": retention_s,
            "flush_s": flush_s,
        }
        self.chains: dict[Stream, ChainLog] = {
            "audit": ChainLog(audit_path, **kw),
            "decisions": ChainLog(decisions_path, **kw),
        }
        self.pseudonyms = Pseudonyms(pseudonyms_path)

    @classmethod
    def from_settings(cls, settings: Settings) -> Ledger:
        return cls(
            settings.audit_log_path,
            settings.decision_log_path,
            settings.pseudonyms_file,
            max_bytes=settings.log_rotate_bytes,
            retention_s=settings.log_retention_days * 86400,
            flush_s=settings.log_flush_ms / 1000,
        )

    def path(self, stream: Stream) -> Path:
        return self.chains[stream].path

    def append(
        self,
        stream: Stream,
        payload: Mapping[str, Any],
        *,
        accounts: Sequence[str] = (),
        inputs: Any = None,
    ) -> int:
        """Append ``payload`` to ``stream`` with ``subjects`` (the pseudonyms of
        ``accounts``), every one of those ids in the payload's text replaced by its
        pseudonym, and, when ``inputs`` is given, ``input_hash``: HMAC-SHA256 of the inputs'
        canonical JSON keyed with the accounts' salts (so an erased person's inputs can no
        longer be confirmed by guessing). Returns the line's seq."""
        entry: dict[str, Any] = dict(payload)
        if accounts:
            known = self.pseudonyms.of(accounts)
            mapping = {a: known[a][0] for a in accounts}
            # One C-speed search of the serialised entry spares walking it when (as in
            # most entries beyond their target) no id appears in its text.
            blob = orjson.dumps(entry)
            if any(a.encode() in blob for a in mapping):
                entry = _map_text(entry, lambda t: scrub(t, mapping))
            entry["subjects"] = list(dict.fromkeys(mapping[a] for a in accounts))
            if inputs is not None:
                key = b"".join(known[a][1] for a in dict.fromkeys(accounts))
                entry["input_hash"] = hmac.new(
                    key, orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS), hashlib.sha256
                ).hexdigest()
        elif inputs is not None:
            entry["input_hash"] = hashlib.sha256(
                orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)
            ).hexdigest()
        return self.chains[stream].append(entry)

    def about(
        self,
        account_id: str,
        *,
        streams: Sequence[Stream] = STREAMS,
        since: float | None = None,
        until: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every entry about ``account_id`` (its pseudonym restored to the id; other people's
        pseudonyms stay as they are), oldest first per stream, tagged with ``stream``."""
        check_window(since, until)
        pseudonym = self.pseudonyms.lookup(account_id)
        if pseudonym is None:
            return
        mine = {pseudonym: account_id}

        def back(text: str) -> str:
            return restore(text, mine)

        for stream in streams:
            for e in entries(self.path(stream), since=since, until=until):
                if pseudonym in e.get("subjects", ()):
                    yield {"stream": stream, **_map_text(e, back)}

    def close(self) -> None:
        for chain in self.chains.values():
            chain.close()
        self.pseudonyms.close()
