"""An append-only, hash-chained, fsync'd JSON-lines log, rotated by size and by day and kept
for a retention period. The audit log and the decision log are two of these.

Each line is one JSON object: ``{"seq": N, "ts": T, "prev": H(N-1), ...payload, "hash": H(N)}``
where ``H(N)`` is the SHA-256 of the line's own bytes up to (not including) ``,"hash":...``.
Altering a line breaks its own hash; removing, inserting or reordering lines breaks ``seq``
or ``prev``; so ``verify`` names the first line that is not what was written. The chain runs
on across rotated files (a file's first ``prev`` is the last hash of the file before) and
survives retention: removing expired files appends a ``chain.pruned`` line saying up to
which ``seq`` and hash the chain was cut, and ``verify`` accepts the oldest kept file only
if it starts right after such a cut. Truncating the newest lines cannot be seen from the
log alone; ``verify`` prints the head (last seq and hash) to compare with one kept elsewhere.

Durability (group commit): ``append`` writes the line with one ``write`` under an exclusive
``flock`` (several processes, e.g. the server and a CLI, share one chain) and returns; a
writer thread fsyncs at most every ``flush_s`` (sooner when someone waits), so an appended
line survives a crash of the process at once and a crash of the machine once fsync'd.
``await durable(seq)`` / ``wait_durable(seq)`` return once the line is on disk. The thread
is stopped by ``close`` (a flag, a notify and a join), never by cancelling an await.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from creditgraph.errors import InvalidInput, StoreUnavailable

log = logging.getLogger("creditgraph.ledger")

GENESIS = "0" * 64
PRUNED = "chain.pruned"
_SUFFIX = re.compile(rb',"hash":"([0-9a-f]{64})"\}$')
_TAIL_READ = 1 << 16


class LogUnavailable(StoreUnavailable):
    """The log cannot be written (disk full, permissions): nothing is half-written."""


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _next_midnight(ts: float) -> float:
    return (int(ts // 86400) + 1) * 86400.0


def seal(body: bytes) -> tuple[bytes, str]:
    """``body`` (a JSON object's bytes) with its hash appended, and that hash."""
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}', digest


def unseal(line: bytes) -> tuple[bytes, str] | None:
    """(body, stated hash) of one line without its newline; None if it carries no hash."""
    m = _SUFFIX.search(line)
    if m is None:
        return None
    return line[: m.start()] + b"}", m.group(1).decode()


@dataclass
class _Waiter:
    seq: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


@dataclass
class _Tail:
    """Where the chain ends (this process's view, refreshed under the flock)."""

    seq: int = 0
    prev: str = GENESIS
    size: int = 0
    first_ts: float | None = None


class ChainLog:
    """One hash chain in ``path`` (the active file) and its rotated siblings."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        retention_s: float = 183 * 86400,
        flush_s: float = 0.02,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path  # sets _path_str too
        self.max_bytes = max_bytes
        self.retention_s = retention_s
        self.flush_s = flush_s
        self.clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._tail = _Tail()
        self._written = 0  # highest seq this process wrote
        self._synced = 0  # highest seq this process knows is fsync'd
        self._sync_error: BaseException | None = None
        self._waiters: list[_Waiter] = []
        self._urgent = False
        self._idle = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._rotate_at: tuple[float, float] | None = None  # (first ts, next UTC midnight)
        #: fsyncs done by the writer thread (lines / fsyncs = the group size; bench/).
        self.fsyncs = 0
        #: Lines written by this process, and the ``write`` calls that carried them.
        self.lines = 0
        self.writes = 0

    @property
    def path(self) -> Path:
        """The active file."""
        return self._path

    @path.setter
    def path(self, value: Path) -> None:
        self._path, self._path_str = value, str(value)

    # -- appending ------------------------------------------------------------------------------
    def append(self, payload: Mapping[str, Any]) -> int:
        """Write one line (``seq``, ``ts``, ``prev`` and ``payload``); returns its ``seq``.
        ``LogUnavailable`` when it cannot be written; nothing partial is left behind."""
        return self.append_json(orjson.dumps(payload))

    def append_json(self, body: bytes) -> int:
        """``append`` of a payload already serialised (compact JSON of an object without
        ``seq``, ``ts``, ``prev`` or ``hash`` keys, as ``orjson.dumps`` writes it): the line
        is the same bytes, without parsing and serialising the payload a second time."""
        return self.append_json_many((body,))[-1]

    def append_json_many(self, bodies: Sequence[bytes]) -> list[int]:
        """``append_json`` of each of ``bodies`` in order, as consecutive lines: under one
        lock, one ``flock``, one look at the tail and one ``write`` for them all (each of
        those is a system call; on a busy server a few µs each, paid once per batch instead of
        once per line). All the lines are written or none: ``LogUnavailable`` leaves the
        chain as it was. Returns their seqs."""
        if not bodies:
            return []
        with self._lock:
            self._ensure_open()
            assert self._fd is not None
            assert self._lock_fd is not None
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                now = self.clock()
                try:
                    self._refresh_tail()
                except OSError as e:
                    raise LogUnavailable(f"cannot read the end of {self.path}: {e}") from e
                if self._should_rotate(now):
                    self._rotate(now)
                seqs = self._write_lines(now, bodies)
                if self._tail.first_ts is None:
                    self._tail.first_ts = now
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        with self._cond:
            self._written = max(self._written, seqs[-1])
            self.lines += len(seqs)
            self.writes += 1
            if self._idle:  # wake the writer only to start a group, not for every line
                self._idle = False
                self._cond.notify()
        return seqs

    def _write(self, entry: dict[str, Any]) -> int:
        payload = dict(entry)
        seq, ts = int(payload.pop("seq")), payload.pop("ts")
        if seq != self._tail.seq + 1:
            raise ValueError(f"line {seq} does not follow {self._tail.seq}")
        return self._write_lines(ts, (orjson.dumps(payload),))[-1]

    def _write_lines(self, ts: float, payloads: Sequence[bytes]) -> list[int]:
        """Write the lines after the tail: ``{"seq":..,"ts":..,"prev":..`` then each
        payload's members, byte for byte what ``orjson.dumps`` gives for the merged object;
        one ``write`` for all of them."""
        assert self._fd is not None
        stamp = orjson.dumps(ts)
        seq, prev = self._tail.seq, self._tail.prev
        lines: list[bytes] = []
        seqs: list[int] = []
        for payload in payloads:
            seq += 1
            head = b'{"seq":%d,"ts":%b,"prev":"%b"' % (seq, stamp, prev.encode())
            body = head + b"}" if payload == b"{}" else head + b"," + payload[1:]
            line, prev = seal(body)
            lines.append(line + b"\n")
            seqs.append(seq)
        data = b"".join(lines)
        try:
            n = os.write(self._fd, data)
            if n != len(data):
                raise OSError(f"short write ({n} of {len(data)} bytes)")
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._tail.size)  # no torn line for the next writer
            raise LogUnavailable(f"cannot write {self.path}: {e}") from e
        self._tail.seq, self._tail.prev = seq, prev
        self._tail.size += len(data)
        return seqs

    def _ensure_open(self) -> None:
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            self._open_active()
        except OSError as e:
            raise LogUnavailable(f"cannot open {self.path}: {e}") from e
        self._tail = _Tail(size=-1)  # forces a read of the tail under the flock
        with self._cond:
            self._stop = False  # reopened after a close
        self._thread = threading.Thread(target=self._run, name=f"chainlog:{self.path.name}")
        self._thread.daemon = True
        self._thread.start()

    def _open_active(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)

    def _refresh_tail(self) -> None:
        """Re-read where the chain ends when another process wrote or rotated since."""
        assert self._fd is not None
        try:
            on_disk = os.stat(self._path_str)  # a str: os.stat(Path) costs 3x more
        except FileNotFoundError:
            on_disk = None
        mine = os.fstat(self._fd)
        if on_disk is None or on_disk.st_ino != mine.st_ino:
            self._open_active()
            mine = os.fstat(self._fd)
            self._tail.size = -1
        if mine.st_size == self._tail.size:
            return
        data = _read_tail(self._fd, mine.st_size)
        if data and not data.endswith(b"\n"):
            # A line torn by a crash mid-write was never acknowledged: drop it.
            cut = data.rfind(b"\n") + 1
            log.warning("dropping a torn last line", extra={"path": str(self.path)})
            os.ftruncate(self._fd, mine.st_size - (len(data) - cut))
            data = data[:cut]
            mine = os.fstat(self._fd)
        self._tail = _Tail(size=mine.st_size)
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1] if data.strip() else b""
        if last:
            self._tail.seq, self._tail.prev = _seq_hash(last, self.path)
            self._tail.first_ts = _first_ts(self._fd)
            return
        rotated = rotated_files(self.path)
        if rotated:
            with open(rotated[-1], "rb") as f:
                tail = _read_tail(f.fileno(), os.fstat(f.fileno()).st_size).rstrip(b"\n")
            if tail:
                self._tail.seq, self._tail.prev = _seq_hash(tail.rsplit(b"\n", 1)[-1], rotated[-1])
        self._tail.first_ts = None

    # -- rotation and retention ---------------------------------------------------------------
    def _should_rotate(self, now: float) -> bool:
        if self._tail.size <= 0:
            return False
        if self._tail.size >= self.max_bytes:
            return True
        first = self._tail.first_ts
        if first is None:
            return False
        if self._rotate_at is None or self._rotate_at[0] != first:
            self._rotate_at = (first, _next_midnight(first))
        return now >= self._rotate_at[1]

    def _rotate(self, now: float) -> None:
        """Rename the active file to ``<stem>.<day>.<first seq>.jsonl`` (fsync'd first) and
        start a new one that carries the chain on; then drop expired files."""
        assert self._fd is not None
        first_seq = _first_seq(self._fd)
        day = _day(self._tail.first_ts or now)
        target = self.path.with_name(f"{self.path.stem}.{day}.{first_seq:012d}{self.path.suffix}")
        try:
            os.fsync(self._fd)
            os.rename(self.path, target)
            self._open_active()
            _fsync_dir(self.path.parent)
        except OSError as e:
            raise LogUnavailable(f"cannot rotate {self.path}: {e}") from e
        self._tail = _Tail(seq=self._tail.seq, prev=self._tail.prev, size=0)
        self._prune(now)

    def _prune(self, now: float) -> None:
        removed: list[str] = []
        through: tuple[int, str] | None = None
        for f in rotated_files(self.path):
            with open(f, "rb") as fh:
                tail = _read_tail(fh.fileno(), os.fstat(fh.fileno()).st_size).rstrip(b"\n")
            sealed = unseal(tail.rsplit(b"\n", 1)[-1])
            if sealed is None or float(orjson.loads(sealed[0])["ts"]) >= now - self.retention_s:
                break  # kept (or not ours to judge: verify will say)
            last = tail.rsplit(b"\n", 1)[-1]
            through = _seq_hash(last, f)
            os.unlink(f)
            removed.append(f.name)
        if through is not None:
            self._write(
                {
                    "seq": self._tail.seq + 1,
                    "ts": now,
                    "event": PRUNED,
                    "files": removed,
                    "through_seq": through[0],
                    "through_hash": through[1],
                }
            )
            self._tail.first_ts = now

    # -- durability ---------------------------------------------------------------------------
    async def durable(self, seq: int) -> None:
        """Return once line ``seq`` is fsync'd (``LogUnavailable`` if fsync failed)."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._synced >= seq:
                return
            if self._thread is None or not self._thread.is_alive():
                raise LogUnavailable(f"{self.path} is closed: nothing waits for its fsync")
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append(_Waiter(seq, loop, future))
            self._urgent = True
            self._cond.notify()
        await future

    def wait_durable(self, seq: int) -> None:
        """Block until line ``seq`` is fsync'd (for threads and the CLI)."""
        if self._thread is None or not self._thread.is_alive():
            raise LogUnavailable(f"{self.path} is closed: nothing waits for its fsync")
        with self._cond:
            self._urgent = True
            self._cond.notify()
            while self._synced < seq:
                if self._sync_error is not None:
                    raise LogUnavailable(f"cannot fsync {self.path}: {self._sync_error}")
                self._cond.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._written <= self._synced:
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                # Group commit: what arrives within flush_s shares one fsync, unless someone
                # waits for durability (then at once: lines arriving meanwhile join the next).
                deadline = time.monotonic() + self.flush_s
                while not self._urgent and not self._stop:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._urgent = False
                target, stop = self._written, self._stop
            error: BaseException | None = None
            synced = False
            if target > self._synced:
                with self._lock:
                    fd = None if self._fd is None else os.dup(self._fd)
                try:
                    if fd is not None:
                        os.fsync(fd)
                        synced = True
                except OSError as e:
                    error = e
                finally:
                    if fd is not None:
                        os.close(fd)
            with self._cond:
                if error is None:
                    self._synced = max(self._synced, target)
                    self.fsyncs += int(synced)
                self._sync_error = error
                done = [w for w in self._waiters if w.seq <= self._synced or error is not None]
                self._waiters = [w for w in self._waiters if w not in done]
                self._cond.notify_all()
            for w in done:
                w.loop.call_soon_threadsafe(_settle, w.future, error, self.path)
            if stop and self._written <= self._synced:
                return
            if stop and error is not None:
                return

    def close(self) -> None:
        """fsync what was written, stop the writer thread (signal and join) and close."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for fd in (self._fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)
            self._fd = self._lock_fd = None


def _settle(future: asyncio.Future[None], error: BaseException | None, path: Path) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(LogUnavailable(f"cannot fsync {path}: {error}"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_tail(fd: int, size: int) -> bytes:
    start = max(0, size - _TAIL_READ)
    data = os.pread(fd, size - start, start)
    while start > 0 and data.count(b"\n") < 2:  # a line longer than the window
        start = max(0, start - _TAIL_READ)
        data = os.pread(fd, size - start, start)
    return data


def _first_line(fd: int) -> bytes:
    data = os.pread(fd, _TAIL_READ, 0)
    return data.split(b"\n", 1)[0]


def _first_ts(fd: int) -> float | None:
    line = _first_line(fd)
    sealed = unseal(line)
    return None if sealed is None else float(orjson.loads(sealed[0])["ts"])


def _first_seq(fd: int) -> int:
    sealed = unseal(_first_line(fd))
    return 0 if sealed is None else int(orjson.loads(sealed[0])["seq"])


def _seq_hash(line: bytes, path: Path) -> tuple[int, str]:
    sealed = unseal(line)
    if sealed is None:
        raise LogUnavailable(
            f"{path}: the last line carries no hash; run `creditgraph audit verify`"
        )
    return int(orjson.loads(sealed[0])["seq"]), sealed[1]


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of the chain whose active file is ``path``, oldest first."""
    pattern = re.compile(
        re.escape(path.stem) + r"\.\d{4}-\d\d-\d\d\.(\d{12})" + re.escape(path.suffix) + "$"
    )
    found = []
    for p in path.parent.glob(f"{path.stem}.*{path.suffix}"):
        m = pattern.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def chain_files(path: Path) -> list[Path]:
    """Every file of the chain, oldest first (the active one last, if it exists)."""
    return [*rotated_files(path), *([path] if path.exists() else [])]


# -- reading and verifying ------------------------------------------------------------------------
@dataclass(frozen=True)
class Broken:
    """The first line that is not what was written."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class Verified:
    """What ``verify`` found: how much it checked, the head, and the first broken line."""

    files: int = 0
    lines: int = 0
    first_seq: int | None = None
    last_seq: int = 0
    head: str = GENESIS
    broken: Broken | None = None
    pruned_through: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify(path: Path) -> Verified:
    """Check every line of the chain at ``path``, oldest file first; stops at the first
    broken line and names it (file:line and why)."""
    out = Verified()
    prev_hash, prev_seq = None, None
    anchor: tuple[str, int, int, str] | None = None  # file, line, first seq, its prev
    for f in chain_files(path):
        out.files += 1
        with open(f, "rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        elif lines:
            out.broken = Broken(str(f), len(lines), "torn line (no newline at the end)")
            return out
        for no, line in enumerate(lines, 1):
            broken = _check(line, prev_hash, prev_seq)
            if broken is not None:
                out.broken = Broken(str(f), no, broken)
                return out
            body = orjson.loads(unseal(line)[0])  # type: ignore[index]
            seq = int(body["seq"])
            if prev_seq is None:
                out.first_seq = seq
                if body["prev"] != GENESIS or seq != 1:
                    anchor = (str(f), no, seq, str(body["prev"]))
            if body.get("event") == PRUNED:
                out.pruned_through.append((int(body["through_seq"]), str(body["through_hash"])))
            prev_seq, prev_hash = seq, unseal(line)[1]  # type: ignore[index]
            out.lines += 1
    if anchor is not None and (anchor[2] - 1, anchor[3]) not in out.pruned_through:
        out.broken = Broken(
            anchor[0],
            anchor[1],
            f"the chain starts at seq {anchor[2]} without a retention record of the lines "
            "before it (older files removed by hand?)",
        )
    out.last_seq = prev_seq or 0
    out.head = prev_hash or GENESIS
    return out


def _check(line: bytes, prev_hash: str | None, prev_seq: int | None) -> str | None:
    sealed = unseal(line)
    if sealed is None:
        return "no hash at the end of the line (not written by creditgraph, or cut)"
    body, stated = sealed
    if hashlib.sha256(body).hexdigest() != stated:
        return "the line's content does not match its hash (altered)"
    try:
        entry = orjson.loads(body)
        seq, prev = int(entry["seq"]), str(entry["prev"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return "not a log entry (no seq/prev)"
    if prev_seq is not None:
        if seq <= prev_seq:
            return f"seq {seq} after seq {prev_seq}: lines reordered or duplicated"
        if seq != prev_seq + 1:
            return f"seq {seq} after seq {prev_seq}: {seq - prev_seq - 1} line(s) missing before it"
        if prev != prev_hash:
            return "prev does not match the hash of the line before (that line replaced)"
    return None


def entries(
    path: Path, *, since: float | None = None, until: float | None = None
) -> Iterator[dict[str, Any]]:
    """Every entry of the chain, oldest first, with ``since <= ts <= until``."""
    for f in chain_files(path):
        with open(f, "rb") as fh:
            for line in fh:
                sealed = unseal(line.rstrip(b"\n"))
                if sealed is None:
                    continue
                entry: dict[str, Any] = orjson.loads(sealed[0])
                ts = float(entry.get("ts", 0.0))
                if (since is None or ts >= since) and (until is None or ts <= until):
                    entry["hash"] = sealed[1]
                    yield entry


def check_window(since: float | None, until: float | None) -> None:
    if since is not None and until is not None and since > until:
        raise InvalidInput(f"--since ({since}) is after --until ({until})")
