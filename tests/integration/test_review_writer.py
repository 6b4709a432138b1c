"""The group-committed review queue (``ReviewWriter``) over a real embedded store: concurrent
items share one transaction, every answer gets its id only after its batch committed, a
failed commit fails every answer of that batch (and only that batch) with a clear error,
``close`` commits what was submitted and then refuses more."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from creditgraph.outcomes import ReviewItem
from creditgraph.services.review_writer import ReviewQueueFailed, ReviewWriter
from creditgraph.store.embedded import EmbeddedStore


def _item(k: int) -> ReviewItem:
    return ReviewItem(
        review_id=f"rv{k:03d}",
        transfer_id=f"t{k:03d}",
        src="A",
        dst="B",
        amount=10.0 + k,
        timestamp=1.7e9 + k,
        created_at=1.7e9 + k,
        risk=0.4,
        model_version="v0001/t0001",
        reasons=[{"code": "TRANSFER_MODEL", "message": "P(fraud) 0.400", "evidence": {}}],
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    st = EmbeddedStore(tmp_path / "store.sqlite")
    st.apply_schema()
    try:
        yield st
    finally:
        st.close()


class Gated:
    """The store's ``add_reviews`` behind a gate: the first batch waits inside its commit
    until released, so the test knows which items arrive while a batch is committing."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sizes: list[int] = []

    def __call__(self, items: Sequence[ReviewItem]) -> list[str | None]:
        self.entered.set()
        assert self.release.wait(30)
        self.store.add_reviews(items)
        self.sizes.append(len(items))
        return [i.review_id for i in items]


def test_items_arriving_during_a_commit_share_the_next_transaction(store: EmbeddedStore) -> None:
    gated = Gated(store)
    writer = ReviewWriter(gated)
    try:
        first = writer.submit(_item(0))
        assert gated.entered.wait(30)  # batch 1 (one item) is inside its commit
        rest = [writer.submit(_item(k)) for k in range(1, 40)]
        assert not first.done()  # no answer before the commit
        gated.release.set()
        ids = [f.result(30) for f in [first, *rest]]
    finally:
        writer.close()
    assert ids == [f"rv{k:03d}" for k in range(40)]
    assert gated.sizes == [1, 39]  # two transactions for 40 items
    assert (writer.batches, writer.items) == (2, 40)
    assert store.list_reviews("open", limit=100).total == 40


def test_a_failed_commit_fails_every_answer_of_its_batch_and_only_those(
    store: EmbeddedStore,
) -> None:
    gated = Gated(store)
    writer = ReviewWriter(gated)
    try:
        first = writer.submit(_item(0))
        assert gated.entered.wait(30)
        doomed = [writer.submit(_item(k)) for k in range(1, 6)]
        # A real failure of the second batch's transaction: the table is gone.
        other = sqlite3.connect(store.path)
        other.execute("DROP TABLE reviews")
        other.commit()
        other.close()
        gated.release.set()
        with pytest.raises(ReviewQueueFailed, match="could not commit a batch of 1 item"):
            first.result(30)  # batch 1 commits after the drop too: it fails, not allows
        for f in doomed:
            with pytest.raises(ReviewQueueFailed) as err:
                f.result(30)
            assert "batch of 5 item(s)" in str(err.value)
            assert "reviews" in str(err.value)  # the store's own reason is quoted
            assert "the transfer was not answered" in str(err.value)
        store.apply_schema()  # the table is back: the next batch commits
        assert writer.submit(_item(9)).result(30) == "rv009"
    finally:
        writer.close()
    assert [r.review_id for r in store.list_reviews(None).items] == ["rv009"]


def test_close_commits_what_was_submitted_then_refuses(store: EmbeddedStore) -> None:
    gated = Gated(store)
    writer = ReviewWriter(gated)
    futures = [writer.submit(_item(k)) for k in range(5)]
    assert gated.entered.wait(30)
    closer = threading.Thread(target=writer.close)
    closer.start()
    gated.release.set()
    closer.join(30)
    assert not closer.is_alive()
    assert [f.result(0) for f in futures] == [f"rv{k:03d}" for k in range(5)]
    assert store.list_reviews(None).total == 5
    with pytest.raises(ReviewQueueFailed, match="closed"):
        writer.submit(_item(7))
