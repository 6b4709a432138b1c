"""The embedded store reads on connections of their own (issue 15, defect 3): a read never
waits for a write transaction, and a write transaction reads its own rows."""

from __future__ import annotations

import threading
from pathlib import Path

from creditgraph.domain import AccountColumns
from creditgraph.store.embedded import EmbeddedStore

WAIT_S = 10.0  # only reached when reads are serialised behind the writer (the defect)


def _accounts(*ids: str) -> AccountColumns:
    return AccountColumns(list(ids), [None] * len(ids), [{}] * len(ids), [{}] * len(ids))


def test_a_read_does_not_wait_for_an_open_write_transaction(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.sqlite")
    try:
        store.upsert_accounts(_accounts("A"))
        inside, read_done = threading.Event(), threading.Event()
        own_view: list[list[str]] = []
        read_while_open: list[bool] = []

        def writer() -> None:
            with store.import_scope():
                store.upsert_accounts(_accounts("B"))
                own_view.append(store.missing_accounts(["A", "B"]))  # its own, uncommitted B
                inside.set()
                read_while_open.append(read_done.wait(WAIT_S))

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        assert inside.wait(WAIT_S)
        missing = store.missing_accounts(["A", "B"])
        scores = store.get_scores(["A"])
        read_done.set()
        t.join(WAIT_S)
        assert read_while_open == [True]
        assert own_view == [[]]
        assert missing == ["B"]  # the other reader sees the last commit only
        assert scores == []
        assert store.missing_accounts(["A", "B"]) == []  # committed now
    finally:
        store.close()


def test_many_threads_read_at_once_on_a_bounded_pool(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.sqlite", readers=2)
    try:
        store.upsert_accounts(_accounts(*[f"A{i}" for i in range(50)]))
        errors: list[BaseException] = []
        results: list[int] = []

        def read() -> None:
            try:
                for _ in range(20):
                    results.append(store.counts().accounts)
            except BaseException as e:  # collected: the assertion below reports it
                errors.append(e)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT_S)
        assert errors == []
        assert results == [50] * 160
        assert len(store._all_readers) <= 2
    finally:
        store.close()
