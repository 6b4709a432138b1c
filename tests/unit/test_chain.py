"""The hash-chained log: verify passes on a clean log and names the first line that was
altered, removed, reordered or replaced; rotation by size and day keeps one chain; retention
removes old files without breaking it; several writers (threads, processes) share a chain."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import threading
from pathlib import Path

import orjson
import pytest

from creditgraph.ledger.chain import GENESIS, PRUNED, ChainLog, chain_files, entries, verify

DAY = 86400.0
T0 = 1_700_000_000.0  # 2023-11-14 22:13 UTC


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def write(path: Path, n: int, clock: Clock | None = None, step: float = 1.0, **kw: float) -> None:
    clock = clock or Clock()
    log = ChainLog(path, clock=clock, **kw)  # type: ignore[arg-type]
    try:
        for i in range(n):
            log.append({"action": "look", "target": f"t{i}"})
            clock.t += step
    finally:
        log.close()


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_a_clean_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 50)
    v = verify(path)
    assert v.ok, v.broken
    assert (v.files, v.lines, v.first_seq, v.last_seq) == (1, 50, 1, 50)
    first = orjson.loads(lines(path)[0])
    assert first["prev"] == GENESIS
    assert v.head == orjson.loads(lines(path)[-1])["hash"]


def test_an_altered_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 20)
    ls = lines(path)
    ls[6] = ls[6].replace(b'"target":"t6"', b'"target":"t9"')
    path.write_bytes(b"".join(ls))
    v = verify(path)
    assert v.broken is not None
    assert (v.broken.file, v.broken.line) == (str(path), 7)
    assert "altered" in v.broken.reason


def test_a_line_rewritten_with_a_fresh_hash_is_caught_at_the_next(tmp_path: Path) -> None:
    from creditgraph.ledger.chain import seal, unseal

    path = tmp_path / "audit.jsonl"
    write(path, 20)
    ls = lines(path)
    body, _ = unseal(ls[9].rstrip(b"\n"))  # type: ignore[misc]
    forged, _ = seal(body.replace(b'"target":"t9"', b'"target":"xx"'))
    ls[9] = forged + b"\n"
    path.write_bytes(b"".join(ls))
    v = verify(path)
    assert v.broken is not None
    assert v.broken.line == 11
    assert "prev does not match" in v.broken.reason


def test_a_deleted_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 20)
    ls = lines(path)
    del ls[4]
    path.write_bytes(b"".join(ls))
    v = verify(path)
    assert v.broken is not None
    assert v.broken.line == 5
    assert "1 line(s) missing" in v.broken.reason


def test_reordered_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 20)
    ls = lines(path)
    ls[10], ls[11] = ls[11], ls[10]
    path.write_bytes(b"".join(ls))
    v = verify(path)
    assert v.broken is not None
    assert v.broken.line == 11
    assert "seq 12 after seq 10" in v.broken.reason


def test_a_torn_last_line_is_dropped_by_the_next_writer(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 5)
    with open(path, "ab") as f:
        f.write(b'{"seq":6,"ts":1,"prev":"ab')  # a crash mid-write: never acknowledged
    assert not verify(path).ok
    write(path, 3)
    v = verify(path)
    assert v.ok, v.broken
    assert v.last_seq == 8


def test_rotation_by_size_keeps_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 60, max_bytes=2000)
    files = chain_files(path)
    assert len(files) > 3
    v = verify(path)
    assert v.ok, v.broken
    assert v.lines == 60
    # Each file starts where the one before ended.
    for before, after in itertools.pairwise(files):
        last = orjson.loads(lines(before)[-1])
        first = orjson.loads(lines(after)[0])
        assert first["prev"] == last["hash"]
        assert first["seq"] == last["seq"] + 1


def test_rotation_by_day(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 12, step=DAY / 4)  # 22:13 on the 14th, then every 6 h to the 17th
    files = chain_files(path)
    days = [f.name.split(".")[1] for f in files[:-1]]
    assert days == ["2023-11-14", "2023-11-15", "2023-11-16"]
    assert [len(lines(f)) for f in files] == [1, 4, 4, 3]
    assert verify(path).ok


def test_a_file_removed_from_the_middle_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 60, max_bytes=2000)
    files = chain_files(path)
    files[1].unlink()
    v = verify(path)
    assert v.broken is not None
    assert v.broken.file == str(files[2])
    assert v.broken.line == 1
    assert "missing" in v.broken.reason


def test_retention_drops_old_files_and_the_chain_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 40, step=DAY / 2, retention_s=5 * DAY)  # 20 days, keep 5
    v = verify(path)
    assert v.ok, v.broken
    kept = list(entries(path))
    assert kept[0]["ts"] >= T0 + 20 * DAY - 7 * DAY
    pruned = [e for e in kept if e.get("event") == PRUNED]
    assert pruned
    assert pruned[-1]["through_seq"] == kept[0]["seq"] - 1
    # Removing the oldest kept file by hand is not a retention: named.
    chain_files(path)[0].unlink()
    broken = verify(path).broken
    assert broken is not None
    assert "missing" in broken.reason or "retention" in broken.reason


def test_threads_share_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = ChainLog(path, max_bytes=20_000)

    def work(k: int) -> None:
        for i in range(200):
            log.append({"thread": k, "i": i})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    v = verify(path)
    assert v.ok, v.broken
    assert v.lines == 800


def _writer(path: str, k: int) -> None:
    log = ChainLog(Path(path), max_bytes=20_000)
    for i in range(150):
        log.append({"proc": k, "i": i})
    log.close()


def test_processes_share_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), k)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    v = verify(path)
    assert v.ok, v.broken
    assert v.lines == 450


def test_durable_waits_for_the_fsync_and_close_stops_the_writer(tmp_path: Path) -> None:
    log = ChainLog(tmp_path / "d.jsonl", flush_s=5.0)  # a long window: durable must not wait it

    async def main() -> None:
        seq = log.append({"a": 1})
        await asyncio.wait_for(log.durable(seq), 2.0)

    asyncio.run(main())
    thread = log._thread
    assert thread is not None
    assert thread.is_alive()
    log.close()
    assert not thread.is_alive()


def test_a_log_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    from creditgraph.ledger.chain import LogUnavailable

    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = ChainLog(blocker / "audit.jsonl")  # its folder is a file
    with pytest.raises(LogUnavailable, match="cannot open"):
        log.append({"a": 1})


def test_append_many_writes_the_lines_one_by_one_appends_would(tmp_path: Path) -> None:
    bodies = [orjson.dumps({"action": "look", "target": f"t{i}"}) for i in range(5)]
    one, many = (
        ChainLog(tmp_path / "one.jsonl", clock=Clock()),
        ChainLog(tmp_path / "many.jsonl", clock=Clock()),
    )
    try:
        seqs = [one.append_json(b) for b in bodies]
        assert many.append_json_many(bodies) == seqs == [1, 2, 3, 4, 5]
        assert many.append_json_many([]) == []
        assert (many.lines, many.writes) == (5, 1)
        assert (one.lines, one.writes) == (5, 5)
    finally:
        one.close()
        many.close()
    assert (tmp_path / "many.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert verify(tmp_path / "many.jsonl").ok


def test_a_batch_that_cannot_be_written_leaves_the_chain_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from creditgraph.ledger.chain import LogUnavailable

    path = tmp_path / "audit.jsonl"
    log = ChainLog(path, clock=Clock())
    real_write = os.write
    try:
        log.append({"a": 1})
        before = path.read_bytes()

        def half(fd: int, data: bytes) -> int:  # a short write: part of the batch got out
            return real_write(fd, data[: len(data) // 2])

        monkeypatch.setattr("creditgraph.ledger.chain.os.write", half)
        with pytest.raises(LogUnavailable, match="short write"):
            log.append_json_many([orjson.dumps({"b": i}) for i in range(4)])
        monkeypatch.setattr("creditgraph.ledger.chain.os.write", real_write)
        assert path.read_bytes() == before
        assert log.append_json_many([orjson.dumps({"c": 1})]) == [2]
    finally:
        log.close()
    assert verify(path).ok
