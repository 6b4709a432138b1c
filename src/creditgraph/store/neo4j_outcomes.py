"""The Neo4j store's transfer outcomes and review queue: a mixin of ``Neo4jStore``.

Graph model (beside the core one in ``neo4j.py``)::

    (:TransferLabel {transfer_id, label, source, observed_at, seq})
    (:Review {review_id, transfer_id, status, created_at, item})   item: the JSON of the item

Transfer properties (extra CSV columns) live on the relationship as ``props`` (JSON text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import orjson
from neo4j import ManagedTransaction

from creditgraph.domain import LabelValue, Page
from creditgraph.errors import Conflict, NotFound
from creditgraph.outcomes import ReviewItem, ReviewStatus, TransferLabelColumns, TransferLog
from creditgraph.store.embedded_outcomes import closed_review, review_from_json, review_to_json

T = TypeVar("T")

MISSING_TRANSFERS = """
UNWIND $ids AS id
WITH id WHERE NOT EXISTS { MATCH ()-[:TRANSFERRED {transfer_id: id}]->() }
RETURN id
"""
UPSERT_TRANSFER_LABELS = """
UNWIND $rows AS r
OPTIONAL MATCH (old:TransferLabel {transfer_id: r[0]})
WITH r, old IS NULL AS is_new,
     [coalesce(old.label, ''), coalesce(old.source, ''), coalesce(old.observed_at, $null_f)]
     AS before
MERGE (l:TransferLabel {transfer_id: r[0]})
SET l.label = r[1], l.source = r[2], l.observed_at = r[3], l.seq = $seq
RETURN sum(CASE WHEN is_new OR before <> [r[1], coalesce(r[2], ''), coalesce(r[3], $null_f)]
       THEN 1 ELSE 0 END) AS changed
"""
TRANSFER_LABELS = """
MATCH (l:TransferLabel)
RETURN l.transfer_id AS id, l.label AS label, l.source AS source, l.observed_at AS at
ORDER BY id
"""
TRANSFER_LOG = """
MATCH (s:Account)-[t:TRANSFERRED]->(d:Account)
RETURN t.transfer_id AS id, s.account_id AS src, d.account_id AS dst, t.amount AS amount,
       t.ts AS ts, t.channel AS channel, t.props AS props
ORDER BY ts, id
"""
ADD_REVIEW = """
OPTIONAL MATCH (old:Review {review_id: $id})
WITH old WHERE old IS NULL
CREATE (r:Review {review_id: $id, transfer_id: $transfer_id, status: $status,
                  created_at: $created_at, item: $item})
RETURN count(r) AS n
"""
ADD_REVIEWS = """
UNWIND $items AS it
OPTIONAL MATCH (old:Review {review_id: it.id})
WITH it, old WHERE old IS NULL
CREATE (r:Review {review_id: it.id, transfer_id: it.transfer_id, status: it.status,
                  created_at: it.created_at, item: it.item})
RETURN it.id AS id
"""
COUNT_REVIEWS = """
MATCH (r:Review) WHERE $status IS NULL OR r.status = $status RETURN count(r) AS n
"""
LIST_REVIEWS = """
MATCH (r:Review) WHERE $status IS NULL OR r.status = $status
RETURN r.item AS item ORDER BY r.created_at, r.review_id SKIP $offset LIMIT $limit
"""
GET_REVIEW = "MATCH (r:Review {review_id: $id}) RETURN r.item AS item"
SET_REVIEW = "MATCH (r:Review {review_id: $id}) SET r.status = $status, r.item = $item"
# Data-subject rights (issue 15). A review's transfer need not be stored (a risk check is a
# proposed payment), so items are found by their text and then matched by their ends.
TRANSFER_LABELS_OF = """
UNWIND $ids AS id
MATCH (l:TransferLabel {transfer_id: id})
RETURN l.transfer_id AS id, l.label AS label, l.source AS source, l.observed_at AS at
ORDER BY id
"""
REVIEWS_MENTIONING = """
MATCH (r:Review) WHERE r.item CONTAINS $id
RETURN r.review_id AS id, r.item AS item ORDER BY r.created_at, r.review_id
"""
ERASE_TRANSFER_LABELS = """
MATCH (:Account {account_id: $id})-[t:TRANSFERRED]-()
WITH DISTINCT t.transfer_id AS tid
MATCH (l:TransferLabel {transfer_id: tid})
DELETE l
RETURN count(*) AS n
"""
DELETE_REVIEWS = "UNWIND $ids AS id MATCH (r:Review {review_id: id}) DELETE r"


class Neo4jOutcomes:
    """Needs the host's ``_read``, ``_write`` and ``_stamped_write``."""

    def _read(self, fn: Callable[[ManagedTransaction], T]) -> T:
        raise NotImplementedError  # provided by Neo4jStore

    def _write(self, fn: Callable[[ManagedTransaction], T]) -> T:
        raise NotImplementedError  # provided by Neo4jStore

    def _stamped_write(
        self,
        query: str,
        rows: list[Any],
        keep: Callable[[ManagedTransaction, list[Any]], list[Any]] | None = None,
    ) -> int:
        raise NotImplementedError  # provided by Neo4jStore

    def missing_transfers(self, transfer_ids: Sequence[str]) -> list[str]:
        ids = list(transfer_ids)
        missing: set[str] = set()
        for i in range(0, len(ids), 50_000):
            chunk = ids[i : i + 50_000]

            def run(tx: ManagedTransaction, chunk: list[str] = chunk) -> list[str]:
                return [r[0] for r in tx.run(MISSING_TRANSFERS, ids=chunk)]

            missing.update(self._read(run))
        return [t for t in transfer_ids if t in missing]

    def upsert_transfer_labels(self, batch: TransferLabelColumns) -> int:
        rows = [
            list(r)
            for r in zip(
                batch.transfer_id, batch.label, batch.source, batch.observed_at, strict=True
            )
        ]
        return self._stamped_write(UPSERT_TRANSFER_LABELS, rows)

    def transfer_labels(self) -> TransferLabelColumns:
        def run(tx: ManagedTransaction) -> list[Any]:
            return list(tx.run(TRANSFER_LABELS))

        rows = self._read(run)
        return TransferLabelColumns(
            [r["id"] for r in rows],
            [cast(LabelValue, r["label"]) for r in rows],
            [r["source"] for r in rows],
            [r["at"] for r in rows],
        )

    def transfer_log(self) -> TransferLog:
        def run(tx: ManagedTransaction) -> TransferLog:
            ids: list[str] = []
            src: list[str] = []
            dst: list[str] = []
            amount: list[float] = []
            ts: list[float] = []
            channel: list[str | None] = []
            props: list[dict[str, str]] = []
            for r in tx.run(TRANSFER_LOG):
                ids.append(r["id"])
                src.append(r["src"])
                dst.append(r["dst"])
                amount.append(r["amount"])
                ts.append(r["ts"])
                channel.append(r["channel"])
                props.append({} if r["props"] is None else orjson.loads(r["props"]))
            return TransferLog(
                ids,
                src,
                dst,
                np.asarray(amount, np.float64),
                np.asarray(ts, np.float64),
                channel,
                props,
            )

        return self._read(run)

    def transfer_labels_of(self, transfer_ids: Sequence[str]) -> TransferLabelColumns:
        ids = list(transfer_ids)

        def run(tx: ManagedTransaction) -> list[Any]:
            return [tuple(r) for r in tx.run(TRANSFER_LABELS_OF, ids=ids)]

        rows = self._read(run)
        return TransferLabelColumns(
            [r[0] for r in rows],
            [cast(LabelValue, r[1]) for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
        )

    def reviews_of(self, account_id: str) -> list[ReviewItem]:
        return [item for _, item in self._read(lambda tx: reviews_naming(tx, account_id))]

    def _erase_outcomes(self, tx: ManagedTransaction, account_id: str) -> tuple[int, int]:
        """Inside ``erase_account``'s transaction, before the account goes: the outcomes of
        its transfers (their properties go with the relationships) and the review items
        naming it; returns (transfer labels, review items) removed."""
        labels = int(tx.run(ERASE_TRANSFER_LABELS, id=account_id).single(strict=True)["n"])
        ids = [rid for rid, _ in reviews_naming(tx, account_id)]
        tx.run(DELETE_REVIEWS, ids=ids).consume()
        return labels, len(ids)

    def add_review(self, item: ReviewItem) -> bool:
        def run(tx: ManagedTransaction) -> bool:
            rec = tx.run(
                ADD_REVIEW,
                id=item.review_id,
                transfer_id=item.transfer_id,
                status=item.status,
                created_at=item.created_at,
                item=review_to_json(item).decode(),
            ).single(strict=True)
            return bool(rec["n"])

        return self._write(run)

    def add_reviews(self, items: Sequence[ReviewItem]) -> list[bool]:
        # A repeated id within the batch is dropped here: the query's match would not see
        # a node created by an earlier row of the same UNWIND.
        first: dict[str, ReviewItem] = {}
        for i in items:
            first.setdefault(i.review_id, i)
        rows = [
            {
                "id": i.review_id,
                "transfer_id": i.transfer_id,
                "status": i.status,
                "created_at": i.created_at,
                "item": review_to_json(i).decode(),
            }
            for i in first.values()
        ]

        def run(tx: ManagedTransaction) -> set[str]:
            return {str(r["id"]) for r in tx.run(ADD_REVIEWS, items=rows)}

        created = self._write(run) if rows else set()
        out = []
        for i in items:
            out.append(i.review_id in created)
            created.discard(i.review_id)  # a repeat later in the batch: not created again
        return out

    def list_reviews(
        self, status: ReviewStatus | None = "open", *, limit: int = 50, offset: int = 0
    ) -> Page[ReviewItem]:
        def run(tx: ManagedTransaction) -> Page[ReviewItem]:
            total = int(tx.run(COUNT_REVIEWS, status=status).single(strict=True)["n"])
            items = [
                review_from_json(r["item"])
                for r in tx.run(LIST_REVIEWS, status=status, offset=offset, limit=limit)
            ]
            return Page(items, total, limit, offset)

        return self._read(run)

    def get_review(self, review_id: str) -> ReviewItem:
        def run(tx: ManagedTransaction) -> str | None:
            rec = tx.run(GET_REVIEW, id=review_id).single()
            return None if rec is None else str(rec["item"])

        blob = self._read(run)
        if blob is None:
            raise NotFound(f"review {review_id!r} not found")
        return review_from_json(blob)

    def resolve_review(
        self, review_id: str, status: ReviewStatus, reviewer: str, note: str, at: float
    ) -> ReviewItem:
        def run(tx: ManagedTransaction) -> ReviewItem:
            rec = tx.run(GET_REVIEW, id=review_id).single()
            if rec is None:
                raise NotFound(f"review {review_id!r} not found")
            item = review_from_json(rec["item"])
            if item.status != "open":
                raise Conflict(f"review {review_id!r} is already {item.status}")
            done = closed_review(item, status, reviewer, note, at)
            tx.run(SET_REVIEW, id=review_id, status=status, item=review_to_json(done).decode())
            return done

        return self._write(run)


def reviews_naming(tx: ManagedTransaction, account_id: str) -> list[tuple[str, ReviewItem]]:
    """(review id, item) of every review whose transfer has ``account_id`` as an end."""
    out: list[tuple[str, ReviewItem]] = []
    for r in tx.run(REVIEWS_MENTIONING, id=account_id):
        item = review_from_json(r["item"])
        if account_id in (item.src, item.dst):
            out.append((str(r["id"]), item))
    return out
