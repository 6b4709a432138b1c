"""``Ledger``: the two chains and the pseudonym mapping of one data directory, and the one
way entries about accounts are written to them (ids replaced by pseudonyms everywhere)."""

from __future__ import annotations

import hashlib
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


def _scrubbed(value: Any, mapping: Mapping[str, str], ids: tuple[str, ...]) -> Any:
    """``_map_text(value, lambda t: scrub(t, mapping))``, the same result, at a fraction of
    the cost: a string is handed to ``scrub`` only when an id occurs in it (most strings of
    an entry hold none: reason codes, sentences, figures' names). ``ids``: the non-empty
    keys of ``mapping``. On the risk route this walk was ~75 µs of a ~165 µs decision line
    (docs/benchmarks.md, session 4)."""
    if isinstance(value, str):
        hit = mapping.get(value)
        if hit is not None:
            return hit
        for a in ids:
            if a in value:
                return scrub(value, mapping)
        return value
    if isinstance(value, dict):
        return {
            _scrubbed(str(k), mapping, ids): _scrubbed(v, mapping, ids) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrubbed(v, mapping, ids) for v in value]
    return value


def _verbatim_in_json(account_id: str) -> bool:
    """Whether ``account_id``'s bytes appear as they are in the JSON that holds it (no
    character orjson escapes: quote, backslash, control characters)."""
    return '"' not in account_id and "\\" not in account_id and account_id.isprintable()


#: What compact JSON holds outside its strings (numbers, true/false/null, structure).
_OUTSIDE_STRINGS = frozenset("0123456789+-.eE,:[]{}truefalsn")


def _scrub_text(blob: bytes, mapping: Mapping[str, str]) -> bytes | None:
    """``blob`` (an entry's compact JSON) with the ids replaced, by one ``scrub`` of the
    text: the same bytes as serialising the walked entry when no string in it needed an
    escape (no backslash in the blob) and every id is written verbatim and holds a
    character that only a string can (so a match is always inside one string, whose quotes
    are token edges as its ends are). None when that does not hold: walk instead."""
    if b"\\" in blob:
        return None
    for a in mapping:
        if not a or not _verbatim_in_json(a) or set(a) <= _OUTSIDE_STRINGS:
            return None
    return scrub(blob.decode(), mapping).encode()


def pseudonymised_json(entry: Mapping[str, Any], mapping: Mapping[str, str]) -> bytes:
    """The compact JSON of ``entry`` with every id of ``mapping`` replaced (as a whole token,
    in any string of it, keys included) by its pseudonym, by the cheapest way that gives the
    same bytes as walking the entry: one C-speed search of the serialised entry spares any
    work when no id appears in its text; else one ``scrub`` of that text where that is exact
    (``_scrub_text``), else the walk. An id that JSON escapes (a quote, a backslash, a
    control character) is not in the text as it is: such an entry is always walked. The
    decision line is written from these bytes, never parsed back."""
    blob = orjson.dumps(entry)
    if not any(not _verbatim_in_json(a) or a.encode() in blob for a in mapping):
        return blob
    text = _scrub_text(blob, mapping)
    if text is None:
        text = orjson.dumps(_scrubbed(entry, mapping, tuple(a for a in mapping if a)))
    return text


def pseudonymise(entry: dict[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """``entry`` with every id of ``mapping`` (as a whole token, in any string of it, keys
    included) replaced by its pseudonym: ``_map_text(entry, lambda t: scrub(t, mapping))``
    (``tests/unit/test_ledger_scrub.py``), parsed back from ``pseudonymised_json``."""
    out: dict[str, Any] = orjson.loads(pseudonymised_json(entry, mapping))
    return out


def _merged(body: bytes, extra: Mapping[str, Any]) -> bytes:
    """``body`` (an object's compact JSON) with ``extra``'s members appended: the bytes of
    ``orjson.dumps({**parsed body, **extra})`` where no key of ``extra`` is in the body."""
    if not extra:
        return body
    tail = orjson.dumps(extra)
    return tail if body == b"{}" else body[:-1] + b"," + tail[1:]


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
        """Append ``payload`` to ``stream`` (``line``'s bytes); returns the line's seq."""
        return self.chains[stream].append_json(self.line(payload, accounts=accounts, inputs=inputs))

    def line(
        self,
        payload: Mapping[str, Any],
        *,
        accounts: Sequence[str] = (),
        inputs: Any = None,
    ) -> bytes:
        """The body of ``payload``'s line (for ``ChainLog.append_json``): with ``subjects``
        (the pseudonyms of ``accounts``), every one of those ids in the payload's text
        replaced by its pseudonym, and, when ``inputs`` is given, ``input_hash``: keyed
        BLAKE2b-256 of the inputs' canonical JSON keyed with the accounts' salts (so an
        erased person's inputs can no longer be confirmed by guessing)."""
        extra: dict[str, Any] = {}
        if accounts:
            known = self.pseudonyms.of(accounts)
            mapping = {a: known[a][0] for a in accounts}
            body = pseudonymised_json(payload, mapping)
            extra["subjects"] = list(dict.fromkeys(mapping[a] for a in accounts))
            if inputs is not None:
                key = b"".join(known[a][1] for a in dict.fromkeys(accounts))
                canonical = orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)
                # Keyed BLAKE2b is a MAC by design (a third of HMAC-SHA256's cost here).
                extra["input_hash"] = hashlib.blake2b(
                    canonical, key=key[:64], digest_size=32
                ).hexdigest()
        else:
            body = orjson.dumps(payload)
            if inputs is not None:
                extra["input_hash"] = hashlib.sha256(
                    orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)
                ).hexdigest()
        return _merged(body, extra)

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
