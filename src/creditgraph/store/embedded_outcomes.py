"""The embedded (SQLite) store's transfer outcomes, transfer properties and review queue.

A mixin of ``EmbeddedStore``, kept apart so the core backend file stays about the graph. New
tables only (``CREATE TABLE IF NOT EXISTS``), so older stores gain them on open."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

import numpy as np
import orjson

from creditgraph.domain import LabelValue, Page, TransferColumns
from creditgraph.errors import Conflict, NotFound
from creditgraph.outcomes import (
    AccountCoder,
    ReviewItem,
    ReviewStatus,
    TransferArrays,
    TransferLabelColumns,
    TransferLog,
)

_ADD_REVIEW = (
    "INSERT OR IGNORE INTO reviews(review_id, transfer_id, status, created_at, item)"
    " VALUES (?, ?, ?, ?, ?)"
)

OUTCOME_DDL = (
    """CREATE TABLE IF NOT EXISTS transfer_properties(
        transfer_id TEXT PRIMARY KEY,
        properties TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS transfer_labels(
        transfer_id TEXT PRIMARY KEY,
        label TEXT NOT NULL CHECK (label IN ('fraud', 'legit')),
        source TEXT,
        observed_at REAL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS reviews(
        review_id TEXT PRIMARY KEY,
        transfer_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'approved', 'rejected')),
        created_at REAL NOT NULL,
        item TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS reviews_status ON reviews(status, created_at, review_id)",
)
UPSERT_TRANSFER_LABEL = """
INSERT INTO transfer_labels(transfer_id, label, source, observed_at) VALUES (?, ?, ?, ?)
ON CONFLICT(transfer_id) DO UPDATE SET
    label = excluded.label, source = excluded.source, observed_at = excluded.observed_at
WHERE excluded.label IS NOT transfer_labels.label OR excluded.source IS NOT transfer_labels.source
   OR excluded.observed_at IS NOT transfer_labels.observed_at
"""
INSERT_TRANSFER_PROPERTIES = (
    "INSERT OR IGNORE INTO transfer_properties(transfer_id, properties) VALUES (?, ?)"
)
TRANSFER_LOG = """
SELECT t.transfer_id, t.src, t.dst, t.amount, t.ts, t.channel, p.properties
FROM transfers t LEFT JOIN transfer_properties p ON p.transfer_id = t.transfer_id
ORDER BY t.ts, t.transfer_id
"""
_CHUNK = 900
#: The serving state's read: plain columns in primary-key order (see ``transfer_arrays``).
TRANSFER_COLUMNS = "SELECT src, dst, amount, ts FROM transfers ORDER BY transfer_id"
_FETCH = 65_536
# Data-subject rights (issue 15): the outcomes and review items that touch one account. A
# review's transfer need not be stored (a risk check is a proposed payment), so reviews are
# matched by the item's ends; the queue is small, so the scan is cheap.
REVIEWS_OF = """
SELECT item FROM reviews
WHERE json_extract(item, '$.src') = ?1 OR json_extract(item, '$.dst') = ?1
ORDER BY created_at, review_id
"""
TRANSFERS_TOUCHING = "SELECT transfer_id FROM transfers WHERE src = ?1 OR dst = ?1"
ERASE_TRANSFER_LABELS = f"DELETE FROM transfer_labels WHERE transfer_id IN ({TRANSFERS_TOUCHING})"
ERASE_TRANSFER_PROPERTIES = (
    f"DELETE FROM transfer_properties WHERE transfer_id IN ({TRANSFERS_TOUCHING})"
)
ERASE_REVIEWS = """
DELETE FROM reviews
WHERE json_extract(item, '$.src') = ?1 OR json_extract(item, '$.dst') = ?1
"""


def review_to_json(item: ReviewItem) -> bytes:
    return orjson.dumps({k: getattr(item, k) for k in ReviewItem.__slots__})


def review_from_json(blob: str | bytes) -> ReviewItem:
    return ReviewItem(**orjson.loads(blob))


class EmbeddedOutcomes:
    """Needs the host's ``_tx`` (a transaction), ``_lock`` and ``_db``."""

    _db: sqlite3.Connection
    _lock: threading.RLock

    def _tx(
        self, immediate: bool = True, *, graph: bool = True
    ) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # provided by EmbeddedStore

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # provided by EmbeddedStore

    def _write_transfer_properties(self, db: sqlite3.Connection, batch: TransferColumns) -> None:
        if batch.properties is None:
            return
        rows = [
            (t, orjson.dumps(p).decode())
            for t, p in zip(batch.transfer_id, batch.properties, strict=True)
            if p
        ]
        db.executemany(INSERT_TRANSFER_PROPERTIES, rows)

    def missing_transfers(self, transfer_ids: Sequence[str]) -> list[str]:
        found: set[str] = set()
        ids = list(transfer_ids)
        with self._lock:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                cur = self._db.execute(
                    "SELECT transfer_id FROM transfers WHERE transfer_id IN"
                    f" ({','.join('?' * len(chunk))})",
                    tuple(chunk),
                )
                found.update(r[0] for r in cur)
        return [t for t in transfer_ids if t not in found]

    def upsert_transfer_labels(self, batch: TransferLabelColumns) -> int:
        rows = zip(batch.transfer_id, batch.label, batch.source, batch.observed_at, strict=True)
        with self._tx() as db:
            return int(db.executemany(UPSERT_TRANSFER_LABEL, rows).rowcount)

    def transfer_labels(self) -> TransferLabelColumns:
        with self._tx(immediate=False) as db:
            rows = db.execute(
                "SELECT transfer_id, label, source, observed_at FROM transfer_labels"
                " ORDER BY transfer_id"
            ).fetchall()
        return TransferLabelColumns(
            [r[0] for r in rows],
            [cast(LabelValue, r[1]) for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
        )

    def transfer_labels_of(self, transfer_ids: Sequence[str]) -> TransferLabelColumns:
        ids = list(transfer_ids)
        rows: list[Any] = []
        with self._tx(immediate=False) as db:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                rows += db.execute(
                    "SELECT transfer_id, label, source, observed_at FROM transfer_labels"
                    f" WHERE transfer_id IN ({','.join('?' * len(chunk))})",
                    tuple(chunk),
                ).fetchall()
        rows.sort(key=lambda r: r[0])
        return TransferLabelColumns(
            [r[0] for r in rows],
            [cast(LabelValue, r[1]) for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
        )

    def reviews_of(self, account_id: str) -> list[ReviewItem]:
        with self._tx(immediate=False) as db:
            return [review_from_json(r[0]) for r in db.execute(REVIEWS_OF, (account_id,))]

    def _erase_outcomes(self, db: sqlite3.Connection, account_id: str) -> tuple[int, int]:
        """Inside ``erase_account``'s transaction, before the transfers go: the outcomes and
        properties of the account's transfers, and the review items naming it; returns
        (transfer labels, review items) removed."""
        labels = db.execute(ERASE_TRANSFER_LABELS, (account_id,)).rowcount
        db.execute(ERASE_TRANSFER_PROPERTIES, (account_id,))
        reviews = db.execute(ERASE_REVIEWS, (account_id,)).rowcount
        return int(labels), int(reviews)

    def transfer_log(self) -> TransferLog:
        ids: list[str] = []
        src: list[str] = []
        dst: list[str] = []
        amount: list[float] = []
        ts: list[float] = []
        channel: list[str | None] = []
        props: list[dict[str, str]] = []
        empty: dict[str, str] = {}
        with self._tx(immediate=False) as db:
            for t, s, d, a, when, ch, p in db.execute(TRANSFER_LOG):
                ids.append(t)
                src.append(s)
                dst.append(d)
                amount.append(a)
                ts.append(when)
                channel.append(ch)
                props.append(empty if p is None else orjson.loads(p))
        return TransferLog(
            ids,
            src,
            dst,
            np.asarray(amount, np.float64),
            np.asarray(ts, np.float64),
            channel,
            props,
        )

    def transfer_arrays(self, account_ids: Sequence[str]) -> TransferArrays:
        # One scan of the table in primary-key order (transfer id: no sort in SQLite), read
        # in chunks straight into arrays; a stable sort by time then gives (ts, id) order.
        coder = AccountCoder(account_ids)
        src: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        dst: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        amount: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        ts: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        with self._read() as db:
            cur = db.execute(TRANSFER_COLUMNS)
            while rows := cur.fetchmany(_FETCH):
                s, d, a, t = zip(*rows, strict=True)
                src.append(coder.codes(s))
                dst.append(coder.codes(d))
                amount.append(np.asarray(a, np.float64))
                ts.append(np.asarray(t, np.float64))
        if not src:
            empty = np.zeros(0, np.int64)
            return TransferArrays(coder.ids, empty, empty, np.zeros(0), np.zeros(0))
        tss = np.concatenate(ts)
        order = np.argsort(tss, kind="stable")
        return TransferArrays(
            coder.ids,
            np.concatenate(src)[order],
            np.concatenate(dst)[order],
            np.concatenate(amount)[order],
            tss[order],
        )

    def add_review(self, item: ReviewItem) -> bool:
        return self.add_reviews([item])[0]

    def add_reviews(self, items: Sequence[ReviewItem]) -> list[bool]:
        rows = [
            (i.review_id, i.transfer_id, i.status, i.created_at, review_to_json(i).decode())
            for i in items
        ]
        # graph=False: the queue is not what ``snapshot`` reads. One statement per item for
        # its own rowcount; one transaction, one commit.
        with self._tx(graph=False) as db:
            return [bool(db.execute(_ADD_REVIEW, row).rowcount) for row in rows]

    def list_reviews(
        self, status: ReviewStatus | None = "open", *, limit: int = 50, offset: int = 0
    ) -> Page[ReviewItem]:
        where, params = ("", ()) if status is None else (" WHERE status = ?", (status,))
        with self._tx(immediate=False) as db:
            total = int(db.execute(f"SELECT count(*) FROM reviews{where}", params).fetchone()[0])
            rows = db.execute(
                f"SELECT item FROM reviews{where} ORDER BY created_at, review_id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return Page([review_from_json(r[0]) for r in rows], total, limit, offset)

    def get_review(self, review_id: str) -> ReviewItem:
        with self._tx(immediate=False) as db:
            row = db.execute(
                "SELECT item FROM reviews WHERE review_id = ?", (review_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"review {review_id!r} not found")
        return review_from_json(row[0])

    def resolve_review(
        self, review_id: str, status: ReviewStatus, reviewer: str, note: str, at: float
    ) -> ReviewItem:
        with self._tx() as db:
            row = db.execute(
                "SELECT item FROM reviews WHERE review_id = ?", (review_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"review {review_id!r} not found")
            item = review_from_json(row[0])
            if item.status != "open":
                raise Conflict(f"review {review_id!r} is already {item.status}")
            done = closed_review(item, status, reviewer, note, at)
            db.execute(
                "UPDATE reviews SET status = ?, item = ? WHERE review_id = ?",
                (status, review_to_json(done).decode(), review_id),
            )
        return done


def closed_review(
    item: ReviewItem, status: ReviewStatus, reviewer: str, note: str, at: float
) -> ReviewItem:
    """``item`` with the reviewer's verdict."""
    data: dict[str, Any] = {k: getattr(item, k) for k in ReviewItem.__slots__}
    data.update(status=status, reviewer=reviewer, note=note, resolved_at=at)
    return ReviewItem(**data)
