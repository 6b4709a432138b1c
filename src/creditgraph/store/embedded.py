"""Embedded default store: one SQLite file in WAL mode (durable, no server to run).

Over ~450 lines on purpose: one backend of the ``GraphStore`` contract, its SQL beside the
method that runs each statement, as ``store.neo4j`` keeps its Cypher.

A file import runs in one transaction, so a killed import leaves nothing behind; reads during
``snapshot`` run in one read transaction, which WAL makes a true snapshot.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from creditgraph.domain import (
    TRANSFER,
    Account,
    AccountColumns,
    Counts,
    GraphEdge,
    LabelColumns,
    LabelValue,
    LinkColumns,
    Obligation,
    ObligationColumns,
    Page,
    Ring,
    RingKind,
    RingStatus,
    Score,
    Snapshot,
    StatusChange,
    Ties,
    Transfer,
    TransferColumns,
    TransferEvents,
)
from creditgraph.errors import NotFound, StoreUnavailable
from creditgraph.store.base import (
    IMPORT_REVISION,
    AccountVersion,
    Erased,
    GraphStore,
    Revision,
    ScoreRow,
    StoredAccount,
    check_page,
    check_ring_status,
    refuse_changed_transfers,
    revise_accounts,
    rings_without,
    score_row,
    tombstone_of,
)
from creditgraph.store.embedded_outcomes import OUTCOME_DDL, EmbeddedOutcomes
from creditgraph.store.obligations import change_of_advance, changes_of_new, plan_obligations
from creditgraph.store.snapshot import SnapshotBuilder

SCHEMA_VERSION = 4

# Tables are created idempotently; ``user_version`` records the layout for later migrations.
DDL = (
    """CREATE TABLE IF NOT EXISTS accounts(
        account_id TEXT PRIMARY KEY,
        created_at REAL,
        features TEXT NOT NULL DEFAULT '{}',
        properties TEXT NOT NULL DEFAULT '{}'
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS transfers(
        transfer_id TEXT PRIMARY KEY,
        src TEXT NOT NULL,
        dst TEXT NOT NULL,
        amount REAL NOT NULL,
        ts REAL NOT NULL,
        currency TEXT,
        channel TEXT
    ) WITHOUT ROWID""",
    *(
        TRANSFER_INDEXES := (
            # ``amount`` makes them covering for ``adjacent``'s per-pair count and sum: an
            # account's transfers are read from index pages alone, not one table row each
            # (the cold-page tail of request-time scoring, docs/benchmarks.md, session 8).
            "CREATE INDEX IF NOT EXISTS transfers_src_dst ON transfers(src, dst, amount)",
            "CREATE INDEX IF NOT EXISTS transfers_dst_src ON transfers(dst, src, amount)",
            # An account's transfers newest first (the investigator's transfers page).
            "CREATE INDEX IF NOT EXISTS transfers_src_ts ON transfers(src, ts)",
            "CREATE INDEX IF NOT EXISTS transfers_dst_ts ON transfers(dst, ts)",
        )
    ),
    """CREATE TABLE IF NOT EXISTS links(
        src TEXT NOT NULL,
        dst TEXT NOT NULL,
        type TEXT NOT NULL,
        since REAL,
        PRIMARY KEY (src, dst, type)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS links_dst ON links(dst, src, type)",
    """CREATE TABLE IF NOT EXISTS labels(
        account_id TEXT PRIMARY KEY,
        label TEXT NOT NULL CHECK (label IN ('fraud', 'legit')),
        source TEXT,
        observed_at REAL
    ) WITHOUT ROWID""",
    # A rowid table: a row's reasons (~1.5 KB of JSON) fit its leaf page; WITHOUT ROWID
    # spilled every row past ~1 KB into an overflow page (2.3x the bytes, 2x the write time).
    (
        SCORES_TABLE := """CREATE TABLE IF NOT EXISTS scores(
        account_id TEXT PRIMARY KEY,
        fraud_probability REAL NOT NULL,
        social_credit REAL NOT NULL,
        model_version TEXT NOT NULL,
        reasons TEXT NOT NULL,
        scored_at REAL NOT NULL
    )"""
    ),
    # One row: this store's random id and a count of write transactions that changed rows
    # other than scores and rings (``graph_revision``).
    """CREATE TABLE IF NOT EXISTS graph_revision(
        one INTEGER PRIMARY KEY CHECK (one = 0),
        store TEXT NOT NULL,
        n INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO graph_revision VALUES (0, lower(hex(randomblob(16))), 0)",
    """CREATE TABLE IF NOT EXISTS rings(
        ring_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        score REAL NOT NULL,
        status TEXT NOT NULL,
        note TEXT NOT NULL,
        evidence TEXT NOT NULL,
        detected_at REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS ring_members(
        ring_id TEXT NOT NULL REFERENCES rings(ring_id) ON DELETE CASCADE,
        account_id TEXT NOT NULL,
        PRIMARY KEY (ring_id, account_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ring_members_account ON ring_members(account_id)",
    # Changes to existing accounts' attributes (issue 15): the fields' values before and
    # after, when, by whom and why; one row per account and version.
    """CREATE TABLE IF NOT EXISTS account_versions(
        account_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        changed_at REAL NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT,
        before TEXT NOT NULL,
        after TEXT NOT NULL,
        PRIMARY KEY (account_id, version)
    ) WITHOUT ROWID""",
    # Investigator expansion (v2): per-account relationship counts per relation, and every
    # tie (both directions, oneself left out) with its weight, the relationships joining the
    # pair; ``ties_rank`` serves "the k strongest ties of an account" without reading the rest.
    """CREATE TABLE IF NOT EXISTS degrees(
        account_id TEXT NOT NULL,
        relation TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (account_id, relation)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS ties(
        account_id TEXT NOT NULL,
        other TEXT NOT NULL,
        w INTEGER NOT NULL,
        PRIMARY KEY (account_id, other)
    ) WITHOUT ROWID""",
    # Data-subject erasure: digests of erased ids (store.base.tombstone_of).
    """CREATE TABLE IF NOT EXISTS tombstones(
        digest TEXT PRIMARY KEY,
        erased_at REAL NOT NULL
    ) WITHOUT ROWID""",
    *(TIE_INDEXES := ("CREATE INDEX IF NOT EXISTS ties_rank ON ties(account_id, w DESC, other)",)),
    *(
        TIE_TRIGGERS := (
            """CREATE TRIGGER IF NOT EXISTS transfers_ties AFTER INSERT ON transfers BEGIN
        INSERT INTO degrees(account_id, relation, n) VALUES (NEW.src, 'TRANSFER', 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO degrees(account_id, relation, n) VALUES (NEW.dst, 'TRANSFER', 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO ties(account_id, other, w) SELECT NEW.src, NEW.dst, 1 WHERE NEW.src <> NEW.dst
            ON CONFLICT DO UPDATE SET w = w + 1;
        INSERT INTO ties(account_id, other, w) SELECT NEW.dst, NEW.src, 1 WHERE NEW.src <> NEW.dst
            ON CONFLICT DO UPDATE SET w = w + 1;
        END""",
            """CREATE TRIGGER IF NOT EXISTS links_ties AFTER INSERT ON links BEGIN
        INSERT INTO degrees(account_id, relation, n) VALUES (NEW.src, NEW.type, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO degrees(account_id, relation, n) VALUES (NEW.dst, NEW.type, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO ties(account_id, other, w) SELECT NEW.src, NEW.dst, 1 WHERE NEW.src <> NEW.dst
            ON CONFLICT DO UPDATE SET w = w + 1;
        INSERT INTO ties(account_id, other, w) SELECT NEW.dst, NEW.src, 1 WHERE NEW.src <> NEW.dst
            ON CONFLICT DO UPDATE SET w = w + 1;
        END""",
        )
    ),
)
# Credit data: obligations with their terms and current status, and every status change.
CREDIT_DDL = (
    """CREATE TABLE IF NOT EXISTS obligations(
        obligation_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        amount REAL NOT NULL,
        opened_at REAL NOT NULL,
        due_at REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'repaid', 'late', 'defaulted')),
        closed_at REAL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS obligations_account ON obligations(account_id)",
    """CREATE TABLE IF NOT EXISTS obligation_events(
        obligation_id TEXT NOT NULL,
        status TEXT NOT NULL,
        at REAL NOT NULL,
        recorded_at REAL NOT NULL,
        PRIMARY KEY (obligation_id, status)
    ) WITHOUT ROWID""",
)
INSERT_OBLIGATION = """
INSERT INTO obligations(obligation_id, account_id, kind, amount, opened_at, due_at, status,
                        closed_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
ADVANCE_OBLIGATION = "UPDATE obligations SET status = ?, closed_at = ? WHERE obligation_id = ?"
INSERT_OBLIGATION_EVENT = """
INSERT INTO obligation_events(obligation_id, status, at, recorded_at) VALUES (?, ?, ?, ?)
"""
OBLIGATION_COLUMNS = "obligation_id, account_id, kind, amount, opened_at, due_at, status, closed_at"
TRANSFER_INDEX_NAMES = tuple(stmt.split()[5] for stmt in TRANSFER_INDEXES)
# Rebuilding the derived tables from scratch: after a bulk load and by the v1 -> v2 migration.
# Each branch reads a table in one of its index orders; the outer GROUP BY sorts once.
REBUILD_DERIVED = (
    "DELETE FROM degrees",
    "DELETE FROM ties",
    """INSERT INTO degrees(account_id, relation, n)
    SELECT a, r, sum(n) FROM (
        SELECT src AS a, 'TRANSFER' AS r, count(*) AS n FROM transfers GROUP BY src
        UNION ALL SELECT dst, 'TRANSFER', count(*) FROM transfers GROUP BY dst
        UNION ALL SELECT src, type, count(*) FROM links GROUP BY src, type
        UNION ALL SELECT dst, type, count(*) FROM links GROUP BY dst, type
    ) GROUP BY a, r""",
    """INSERT INTO ties(account_id, other, w)
    SELECT a, b, sum(n) FROM (
        SELECT src AS a, dst AS b, count(*) AS n FROM transfers WHERE src <> dst GROUP BY src, dst
        UNION ALL SELECT dst, src, count(*) FROM transfers WHERE src <> dst GROUP BY dst, src
        UNION ALL SELECT src, dst, 1 FROM links WHERE src <> dst
        UNION ALL SELECT dst, src, 1 FROM links WHERE src <> dst
    ) GROUP BY a, b""",
)

UPSERT_ACCOUNT = """
INSERT INTO accounts(account_id, created_at, features, properties)
VALUES (?, ?, json(?), json(?))
ON CONFLICT(account_id) DO UPDATE SET
    created_at = coalesce(excluded.created_at, accounts.created_at),
    features = json_patch(accounts.features, excluded.features),
    properties = json_patch(accounts.properties, excluded.properties)
WHERE coalesce(excluded.created_at, accounts.created_at) IS NOT accounts.created_at
   OR json_patch(accounts.features, excluded.features) IS NOT accounts.features
   OR json_patch(accounts.properties, excluded.properties) IS NOT accounts.properties
"""
INSERT_TRANSFER = """
INSERT OR IGNORE INTO transfers(transfer_id, src, dst, amount, ts, currency, channel)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
UPSERT_LINK = """
INSERT INTO links(src, dst, type, since) VALUES (?, ?, ?, ?)
ON CONFLICT(src, dst, type) DO UPDATE SET since = excluded.since
WHERE excluded.since IS NOT links.since
"""
UPSERT_LABEL = """
INSERT INTO labels(account_id, label, source, observed_at) VALUES (?, ?, ?, ?)
ON CONFLICT(account_id) DO UPDATE SET
    label = excluded.label, source = excluded.source, observed_at = excluded.observed_at
WHERE excluded.label IS NOT labels.label OR excluded.source IS NOT labels.source
   OR excluded.observed_at IS NOT labels.observed_at
"""
UPSERT_SCORE = """
INSERT OR REPLACE INTO scores(account_id, fraud_probability, social_credit, model_version,
                              reasons, scored_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
TRANSFER_COLUMNS = "transfer_id, src, dst, amount, ts, currency, channel"
ERASE_COUNT_TRANSFERS = "SELECT count(*) FROM transfers WHERE src = ?1 OR dst = ?1"
ERASE_COUNT_LINKS = "SELECT count(*) FROM links WHERE src = ?1 OR dst = ?1"
# A neighbour's degree per relation drops by its relationships with the erased account.
ERASE_NEIGHBOUR_DEGREES = """
UPDATE degrees SET n = degrees.n - d.c FROM (
    SELECT CASE WHEN src = ?1 THEN dst ELSE src END AS a, 'TRANSFER' AS r, count(*) AS c
    FROM transfers WHERE (src = ?1 OR dst = ?1) AND src <> dst GROUP BY 1
    UNION ALL
    SELECT CASE WHEN src = ?1 THEN dst ELSE src END, type, count(*)
    FROM links WHERE (src = ?1 OR dst = ?1) AND src <> dst GROUP BY 1, 2
) AS d WHERE degrees.account_id = d.a AND degrees.relation = d.r
"""
#: The b-trees request-time scoring searches per account (``warm_request_pages``).
#: ``count(column)``, not ``count(*)``: SQLite answers that from the smallest index instead.
REQUEST_PAGES = (
    "SELECT count(created_at) FROM accounts NOT INDEXED",
    "SELECT count(amount) FROM transfers INDEXED BY transfers_src_dst",
    "SELECT count(amount) FROM transfers INDEXED BY transfers_dst_src",
    "SELECT count(since) FROM links",
    "SELECT count(type) FROM links INDEXED BY links_dst",
)
#: Below this many rows an import keeps the transfer indexes as they are.
BULK_MIN_ROWS = 100_000
#: Read connections of one store (the API's readers wait for one beyond this).
READERS = 8
# SQLite allows 32766 host parameters; stay well below for IN (...) lists.
CHUNK = 900


def _chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _transfer(row: Sequence[Any]) -> Transfer:
    return Transfer(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _revision(db: sqlite3.Connection) -> str:
    store, n = db.execute("SELECT store, n FROM graph_revision").fetchone()
    return f"{store}:{n}"


def _without_rowid(db: sqlite3.Connection, table: str) -> bool:
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    sql = row.fetchone()
    return sql is not None and "WITHOUT ROWID" in sql[0].upper()


def _stale_indexes(db: sqlite3.Connection, stmts: Sequence[str]) -> list[tuple[str, str]]:
    """(name, CREATE statement) of each index in ``stmts`` whose columns in the database
    differ from the statement's (``CREATE INDEX IF NOT EXISTS`` keeps an older layout)."""
    stale = []
    for stmt in stmts:
        name = stmt.split()[5]
        wanted = [c.strip() for c in stmt[stmt.index("(") + 1 : stmt.rindex(")")].split(",")]
        have = [r[2] for r in db.execute(f"PRAGMA index_info({name})")]
        if have != wanted:
            stale.append((name, stmt))
    return stale


def _write_failed(path: Path, e: sqlite3.OperationalError) -> StoreUnavailable:
    """A write SQLite could not finish, as one clear line; the transaction is rolled back."""
    code = getattr(e, "sqlite_errorname", "")
    hint = (
        " (the disk is full or a file size limit was reached)"
        if code.startswith(("SQLITE_FULL", "SQLITE_IOERR"))
        else ""
    )
    return StoreUnavailable(
        f"cannot write the embedded store {path}: {e}{hint}; "
        "the transaction was rolled back, nothing of it was written"
    )


class EmbeddedStore(EmbeddedOutcomes, GraphStore):
    """GraphStore over a local SQLite database file."""

    backend = "embedded"

    def __init__(self, path: Path, *, readers: int = READERS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreUnavailable(f"cannot open embedded store at {path}: {e}") from e
        self.path = path
        # The one writer connection, shared by threads; the lock serialises its use. Reads go
        # to a pool of read-only connections (``_read``): WAL lets them run beside the writer
        # and beside each other, so a long investigator read never holds up the payment
        # path's look-ups (the bulkhead of issue 15), nor does an import.
        self._lock = threading.RLock()
        self._in_tx = False
        self._tx_owner: int | None = None
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._reader_slots = threading.BoundedSemaphore(max(1, readers))
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._held = threading.local()  # the read connection this thread holds, if any
        self._closed = False
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "cache_size=-1048576",
            "temp_store=MEMORY",
            "busy_timeout=10000",
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self.apply_schema()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()
        with self._readers_lock:
            for db in self._all_readers:
                db.close()

    def _new_reader(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # query_only: a read connection can never write, whatever a bug sends it. The
            # page cache is per connection: small here, the OS cache (mmap) is shared.
            for pragma in (
                "query_only=1",
                "cache_size=-65536",
                "mmap_size=1073741824",
                "temp_store=MEMORY",
                "busy_timeout=10000",
            ):
                db.execute(f"PRAGMA {pragma}")
        except sqlite3.Error as e:
            raise StoreUnavailable(f"cannot open a read connection to {self.path}: {e}") from e
        with self._readers_lock:  # not the writer's lock: a write may be open
            self._all_readers.append(db)
        return db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction (a consistent snapshot under WAL) on a pooled read-only
        connection; nested reads of one thread share it. Inside this thread's write
        transaction, the writer itself (so the transaction reads its own rows)."""
        if self._tx_owner == threading.get_ident():
            yield self._db
            return
        held: sqlite3.Connection | None = getattr(self._held, "db", None)
        if held is not None:
            yield held
            return
        if self._closed:
            raise StoreUnavailable(f"the embedded store at {self.path} is closed")
        self._reader_slots.acquire()
        try:
            try:
                db = self._readers.get_nowait()
            except queue.Empty:
                db = self._new_reader()
            self._held.db = db
            try:
                db.execute("BEGIN")
                try:
                    yield db
                finally:
                    db.execute("COMMIT")  # read-only: ends the snapshot
            finally:
                self._held.db = None
                self._readers.put(db)
        finally:
            self._reader_slots.release()

    def apply_schema(self) -> list[str]:
        with self._tx(graph=False) as db:
            before = int(db.execute("PRAGMA user_version").fetchone()[0])
            for stmt in (*DDL, *OUTCOME_DDL, *CREDIT_DDL):
                db.execute(stmt)
            applied = [f"sqlite schema v{SCHEMA_VERSION}"]
            if 0 < before < 2:
                # v1 stores lack the degree and tie tables: derive them once, in this
                # transaction (a killed migration leaves the v1 store as it was).
                self._rebuild_derived(db)
                applied.append("migrated v1 -> v2: degrees and ties derived")
            if 0 < before < 3 and _without_rowid(db, "scores"):
                # v2 kept scores WITHOUT ROWID: copy them into the rowid layout, in this
                # transaction (a killed migration leaves the v2 table as it was).
                db.execute("ALTER TABLE scores RENAME TO scores_v2")
                db.execute(SCORES_TABLE)
                db.execute("INSERT INTO scores SELECT * FROM scores_v2 ORDER BY account_id")
                db.execute("DROP TABLE scores_v2")
                applied.append("migrated v2 -> v3: scores in a rowid table")
            stale = _stale_indexes(db, TRANSFER_INDEXES)
            if stale:
                # v3 transfer pair indexes lacked ``amount``: rebuilt with it, in this
                # transaction (once; a killed migration leaves the v3 indexes as they were).
                for name, stmt in stale:
                    db.execute(f"DROP INDEX {name}")
                    db.execute(stmt)
                applied.append(
                    "migrated v3 -> v4: " + ", ".join(n for n, _ in stale) + " cover amount"
                )
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return applied

    @staticmethod
    def _rebuild_derived(db: sqlite3.Connection) -> None:
        db.execute("DROP INDEX IF EXISTS ties_rank")
        for stmt in REBUILD_DERIVED:
            db.execute(stmt)
        for stmt in TIE_INDEXES:
            db.execute(stmt)

    @contextmanager
    def _tx(self, immediate: bool = True, *, graph: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction, or nothing extra when already inside ``import_scope``.

        ``graph``: whether rows it changes may be ones ``snapshot`` reads; if so and it
        changed any row, it advances ``graph_revision`` (in the same transaction)."""
        with self._lock:
            if self._in_tx:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            self._in_tx = True
            self._tx_owner = threading.get_ident()
            changes = self._db.total_changes
            try:
                yield self._db
                if graph and self._db.total_changes != changes:
                    self._db.execute("UPDATE graph_revision SET n = n + 1")
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as e:
                self._rollback()
                raise _write_failed(self.path, e) from e
            except BaseException:
                self._rollback()
                raise
            finally:
                self._in_tx = False
                self._tx_owner = None

    def _rollback(self) -> None:
        # After SQLITE_FULL / SQLITE_IOERR (a failed COMMIT too) SQLite may have rolled the
        # transaction back itself; a second ROLLBACK would raise over the real error.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    @contextmanager
    def import_scope(
        self, kind: str = "", rows: int = 0, *, atomic: bool = False
    ) -> Iterator[None]:
        with self._tx() as db:
            # Loading more rows than the table holds: building the secondary indexes and the
            # derived tables (degrees, ties) once afterwards beats updating them row by row
            # (2-3x on ten million rows). DDL is transactional in SQLite, so a killed import
            # still leaves the old tables, indexes and triggers.
            table = {"transfers": "transfers", "links": "links"}.get(kind)
            rebuild = table is not None and rows > BULK_MIN_ROWS and rows > self._rows(table)
            if rebuild:
                if kind == "transfers":
                    for name in TRANSFER_INDEX_NAMES:
                        db.execute(f"DROP INDEX IF EXISTS {name}")
                db.execute("DROP TRIGGER IF EXISTS transfers_ties")
                db.execute("DROP TRIGGER IF EXISTS links_ties")
            yield
            if rebuild:
                if kind == "transfers":
                    for stmt in TRANSFER_INDEXES:
                        db.execute(stmt)
                self._rebuild_derived(db)
                for stmt in TIE_TRIGGERS:
                    db.execute(stmt)

    def _rows(self, table: str) -> int:
        return int(self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    # -- writes ----------------------------------------------------------------------------------
    def upsert_accounts(self, batch: AccountColumns, revision: Revision | None = None) -> int:
        rows = zip(
            batch.account_id,
            batch.created_at,
            map(orjson.dumps, batch.features),
            map(orjson.dumps, batch.properties),
            strict=True,
        )
        with self._tx() as db:
            stored: dict[str, StoredAccount] = {}
            latest: dict[str, int] = {}
            for ids in _chunks(list(dict.fromkeys(batch.account_id))):
                marks = _marks(len(ids))
                for a, c, f, p in db.execute(
                    "SELECT account_id, created_at, features, properties FROM accounts"
                    f" WHERE account_id IN ({marks})",
                    ids,
                ):
                    stored[a] = (c, orjson.loads(f), orjson.loads(p))
            if stored:
                for ids in _chunks(list(stored)):
                    latest.update(
                        db.execute(
                            "SELECT account_id, max(version) FROM account_versions"
                            f" WHERE account_id IN ({_marks(len(ids))}) GROUP BY account_id",
                            ids,
                        ).fetchall()
                    )
            versions = revise_accounts(
                batch, stored, revision or IMPORT_REVISION, latest, time.time()
            )  # raising rolls the batch back
            db.executemany(
                "INSERT INTO account_versions(account_id, version, changed_at, actor, reason,"
                " before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        v.account_id,
                        v.version,
                        v.changed_at,
                        v.actor,
                        v.reason,
                        orjson.dumps(v.before).decode(),
                        orjson.dumps(v.after).decode(),
                    )
                    for v in versions
                ],
            )
            return db.executemany(UPSERT_ACCOUNT, rows).rowcount

    def upsert_transfers(self, batch: TransferColumns) -> int:
        with self._tx() as db:
            inserted: int = db.executemany(INSERT_TRANSFER, batch.rows()).rowcount
            self._write_transfer_properties(db, batch)
            if inserted < len(batch):  # some ids were stored: same content, or a conflict
                stored: dict[str, Sequence[Any]] = {}
                for ids in _chunks(batch.transfer_id):
                    for r in db.execute(
                        "SELECT transfer_id, src, dst, amount, ts, currency, channel"
                        f" FROM transfers WHERE transfer_id IN ({_marks(len(ids))})",
                        ids,
                    ):
                        stored[r[0]] = r[1:]
                refuse_changed_transfers(batch, stored)  # raising rolls the batch back
            return inserted

    def upsert_links(self, batch: LinkColumns) -> int:
        rows = zip(batch.src, batch.dst, batch.type, batch.since, strict=True)
        with self._tx() as db:
            return db.executemany(UPSERT_LINK, rows).rowcount

    def upsert_labels(self, batch: LabelColumns) -> int:
        rows = zip(batch.account_id, batch.label, batch.source, batch.observed_at, strict=True)
        with self._tx() as db:
            return db.executemany(UPSERT_LABEL, rows).rowcount

    def upsert_obligations(self, batch: ObligationColumns) -> int:
        now = time.time()
        with self._tx() as db:
            plan = plan_obligations(batch, self._obligations(db, batch.obligation_id, None))
            db.executemany(
                INSERT_OBLIGATION,
                [
                    (
                        batch.obligation_id[i],
                        batch.account_id[i],
                        batch.kind[i],
                        batch.amount[i],
                        batch.opened_at[i],
                        batch.due_at[i],
                        batch.status[i],
                        batch.closed_at[i],
                    )
                    for i in plan.new
                ],
            )
            db.executemany(
                ADVANCE_OBLIGATION,
                [
                    (batch.status[i], batch.closed_at[i], batch.obligation_id[i])
                    for i in plan.advance
                ],
            )
            events = [(i, c) for i in plan.new for c in changes_of_new(batch, i, now)]
            events += [(i, change_of_advance(batch, i, now)) for i in plan.advance]
            db.executemany(
                INSERT_OBLIGATION_EVENT,
                [(batch.obligation_id[i], c.status, c.at, c.recorded_at) for i, c in events],
            )
        return plan.changed

    def get_obligations(
        self,
        obligation_ids: Sequence[str] | None = None,
        *,
        account_ids: Sequence[str] | None = None,
    ) -> dict[str, Obligation]:
        with self._tx(immediate=False) as db:
            return self._obligations(db, obligation_ids, account_ids)

    @staticmethod
    def _obligations(
        db: sqlite3.Connection,
        obligation_ids: Sequence[str] | None,
        account_ids: Sequence[str] | None,
    ) -> dict[str, Obligation]:
        base = f"SELECT {OBLIGATION_COLUMNS} FROM obligations"
        ev = "SELECT e.obligation_id, e.status, e.at, e.recorded_at FROM obligation_events e"
        rows: list[Any] = []
        events: list[Any] = []
        if obligation_ids is None and account_ids is None:
            rows = db.execute(base).fetchall()
            events = db.execute(ev).fetchall()
        else:
            column, ids = (
                ("obligation_id", obligation_ids)
                if obligation_ids is not None
                else ("account_id", account_ids or [])
            )
            for chunk in _chunks(sorted(set(ids))):
                rows += db.execute(
                    f"{base} WHERE {column} IN ({_marks(len(chunk))})", tuple(chunk)
                ).fetchall()
            found = [r[0] for r in rows]
            for chunk in _chunks(found):
                events += db.execute(
                    f"{ev} WHERE e.obligation_id IN ({_marks(len(chunk))})", tuple(chunk)
                ).fetchall()
        history: dict[str, list[StatusChange]] = {}
        for oid, status, at, recorded in events:
            history.setdefault(oid, []).append(StatusChange(status, at, recorded))
        return {
            r[0]: Obligation(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                history=tuple(
                    sorted(history.get(r[0], []), key=lambda c: (c.status != "open", c.at))
                ),
            )
            for r in sorted(rows)
        }

    def property_values(
        self, name: str, account_ids: Sequence[str] | None = None
    ) -> dict[str, str]:
        sql = (
            "SELECT account_id, json_extract(properties, '$.' || ?) AS v FROM accounts"
            " WHERE v IS NOT NULL"
        )
        out: dict[str, str] = {}
        with self._tx(immediate=False) as db:
            if account_ids is None:
                out.update(db.execute(sql, (name,)).fetchall())
            else:
                for chunk in _chunks(sorted(set(account_ids))):
                    out.update(
                        db.execute(
                            f"{sql} AND account_id IN ({_marks(len(chunk))})", (name, *chunk)
                        ).fetchall()
                    )
        return {k: str(v) for k, v in out.items()}

    def transfer_events(self, account_ids: Sequence[str] | None = None) -> TransferEvents:
        sql = "SELECT transfer_id, src, dst, amount, ts FROM transfers"
        with self._tx(immediate=False) as db:
            if account_ids is None:
                rows = db.execute(sql).fetchall()
            else:
                found: dict[str, Any] = {}
                for chunk in _chunks(sorted(set(account_ids))):
                    marks = _marks(len(chunk))
                    for r in db.execute(
                        f"{sql} WHERE src IN ({marks}) UNION ALL {sql} WHERE dst IN ({marks})",
                        (*chunk, *chunk),
                    ):
                        found[r[0]] = r
                rows = list(found.values())
        rows.sort(key=lambda r: (r[4], r[0]))
        return TransferEvents(
            [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows]
        )

    def write_scores(self, scores: Sequence[Score]) -> int:
        return self.write_score_rows([score_row(s) for s in scores])

    def write_score_rows(self, rows: Sequence[ScoreRow]) -> int:
        self._require_accounts([r[0] for r in rows], "cannot score")
        with self._tx(graph=False) as db:
            db.executemany(UPSERT_SCORE, rows)
        return len(rows)

    def graph_revision(self) -> str:
        with self._read() as db:
            return _revision(db)

    def write_rings(self, rings: Sequence[Ring]) -> int:
        self._require_accounts(sorted({m for r in rings for m in r.members}), "ring members")
        with self._tx(graph=False) as db:
            for r in rings:
                db.execute("DELETE FROM rings WHERE ring_id = ?", (r.ring_id,))
                db.execute(
                    "INSERT INTO rings(ring_id, kind, score, status, note, evidence, detected_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.ring_id,
                        r.kind,
                        r.score,
                        r.status,
                        r.note,
                        orjson.dumps(r.evidence).decode(),
                        r.detected_at,
                    ),
                )
                db.executemany(
                    "INSERT INTO ring_members(ring_id, account_id) VALUES (?, ?)",
                    [(r.ring_id, m) for m in sorted(set(r.members))],
                )
        return len(rings)

    def delete_rings(self, ring_ids: Sequence[str]) -> int:
        with self._tx(graph=False) as db:
            return db.executemany(
                "DELETE FROM rings WHERE ring_id = ?", [(r,) for r in ring_ids]
            ).rowcount

    def update_ring(self, ring_id: str, status: str, note: str | None = None) -> Ring:
        checked = check_ring_status(status)
        with self._tx(graph=False) as db:
            changed = db.execute(
                "UPDATE rings SET status = ?, note = coalesce(?, note) WHERE ring_id = ?",
                (checked, note, ring_id),
            ).rowcount
        if not changed:
            raise NotFound(f"ring {ring_id!r} not found")
        return self.get_ring(ring_id)

    # -- data-subject erasure ---------------------------------------------------------------------
    def erase_account(self, account_id: str) -> Erased:
        with self._tx() as db:
            if self.missing_accounts([account_id]):
                raise NotFound(f"account {account_id!r} not found")
            delete, keep = rings_without(self.rings_of(account_id), account_id)
            self.delete_rings(delete)
            a = (account_id,)
            n_transfers = db.execute(ERASE_COUNT_TRANSFERS, a).fetchone()[0]
            n_links = db.execute(ERASE_COUNT_LINKS, a).fetchone()[0]
            # Keep the derived tables true for the neighbours (no delete triggers).
            db.execute(ERASE_NEIGHBOUR_DEGREES, a)
            db.execute("DELETE FROM degrees WHERE n <= 0 OR account_id = ?", a)
            db.execute("DELETE FROM ties WHERE account_id = ? OR other = ?", a * 2)
            n_outcomes, n_reviews = self._erase_outcomes(db, account_id)
            db.execute("DELETE FROM transfers WHERE src = ? OR dst = ?", a * 2)
            db.execute("DELETE FROM links WHERE src = ? OR dst = ?", a * 2)
            label = db.execute("DELETE FROM labels WHERE account_id = ?", a).rowcount
            score = db.execute("DELETE FROM scores WHERE account_id = ?", a).rowcount
            db.execute("DELETE FROM ring_members WHERE account_id = ?", a)
            db.execute("DELETE FROM account_versions WHERE account_id = ?", a)
            # A data subject's erasure takes its credit records too.
            n_obligations = db.execute(
                "SELECT count(*) FROM obligations WHERE account_id = ?", a
            ).fetchone()[0]
            db.execute(
                "DELETE FROM obligation_events WHERE obligation_id IN"
                " (SELECT obligation_id FROM obligations WHERE account_id = ?)",
                a,
            )
            db.execute("DELETE FROM obligations WHERE account_id = ?", a)
            db.execute("DELETE FROM accounts WHERE account_id = ?", a)
            for r in keep:
                db.execute("UPDATE rings SET evidence = ? WHERE ring_id = ?",
                           (orjson.dumps(r.evidence).decode(), r.ring_id))  # fmt: skip
            db.execute(
                "INSERT OR REPLACE INTO tombstones(digest, erased_at) VALUES (?, ?)",
                (tombstone_of(account_id), time.time()),
            )
        return Erased(
            account_id, n_transfers, n_links, bool(label), bool(score),
            [r.ring_id for r in keep], delete, n_outcomes, n_reviews, int(n_obligations),
        )  # fmt: skip

    def erased(self, account_ids: Sequence[str]) -> dict[str, float]:
        with self._lock:
            if self._db.execute("SELECT 1 FROM tombstones LIMIT 1").fetchone() is None:
                return {}  # the common case: an import pays no hashing
            by_digest = {tombstone_of(a): a for a in account_ids}
            out: dict[str, float] = {}
            for chunk in _chunks(list(by_digest)):
                for d, at in self._db.execute(
                    "SELECT digest, erased_at FROM tombstones"
                    f" WHERE digest IN ({_marks(len(chunk))})",
                    chunk,
                ):
                    out[by_digest[d]] = float(at)
        return out

    def lift_tombstones(self, account_ids: Sequence[str]) -> int:
        with self._tx() as db:
            return db.executemany(
                "DELETE FROM tombstones WHERE digest = ?", [(tombstone_of(a),) for a in account_ids]
            ).rowcount

    # -- reads -----------------------------------------------------------------------------------
    def missing_accounts(self, account_ids: Sequence[str]) -> list[str]:
        found: set[str] = set()
        with self._read() as db:
            for chunk in _chunks(account_ids):
                cur = db.execute(
                    f"SELECT account_id FROM accounts WHERE account_id IN ({_marks(len(chunk))})",
                    tuple(chunk),
                )
                found.update(r[0] for r in cur)
        return [a for a in account_ids if a not in found]

    def counts(self) -> Counts:
        with self._read() as db:

            def one(sql: str) -> int:
                return int(db.execute(sql).fetchone()[0])

            by_type = {
                t: int(n)
                for t, n in db.execute(
                    "SELECT type, count(*) FROM links GROUP BY type ORDER BY type"
                )
            }
            return Counts(
                accounts=one("SELECT count(*) FROM accounts"),
                transfers=one("SELECT count(*) FROM transfers"),
                links=sum(by_type.values()),
                labels=one("SELECT count(*) FROM labels"),
                scores=one("SELECT count(*) FROM scores"),
                rings=one("SELECT count(*) FROM rings"),
                links_by_type=by_type,
            )

    def get_account(self, account_id: str) -> Account:
        with self._read() as db:
            row = db.execute(
                "SELECT a.account_id, a.created_at, a.features, a.properties, l.label"
                " FROM accounts a LEFT JOIN labels l USING (account_id)"
                " WHERE a.account_id = ?",
                (account_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"account {account_id!r} not found")
        scores = self.get_scores([account_id])
        label: LabelValue | None = row[4]
        return Account(
            account_id=row[0],
            created_at=row[1],
            features=orjson.loads(row[2]),
            properties=orjson.loads(row[3]),
            label=label,
            score=scores[0] if scores else None,
        )

    def account_attributes(self, account_id: str) -> Account:
        with self._read() as db:
            row = db.execute(
                "SELECT created_at, features, properties FROM accounts WHERE account_id = ?",
                (account_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"account {account_id!r} not found")
        return Account(account_id, row[0], orjson.loads(row[1]), orjson.loads(row[2]))

    def account_history(self, account_id: str) -> list[AccountVersion]:
        if self.missing_accounts([account_id]):
            raise NotFound(f"account {account_id!r} not found")
        with self._read() as db:
            rows = db.execute(
                "SELECT version, changed_at, actor, reason, before, after FROM account_versions"
                " WHERE account_id = ? ORDER BY version",
                (account_id,),
            ).fetchall()
        return [
            AccountVersion(
                account_id, r[0], r[1], r[2], r[3], orjson.loads(r[4]), orjson.loads(r[5])
            )
            for r in rows
        ]

    def get_labels(self, account_ids: Sequence[str]) -> LabelColumns:
        rows: list[Any] = []
        with self._read() as db:
            for chunk in _chunks(sorted(set(account_ids))):
                rows += db.execute(
                    "SELECT account_id, label, source, observed_at FROM labels"
                    f" WHERE account_id IN ({_marks(len(chunk))})",
                    tuple(chunk),
                ).fetchall()
        rows.sort()
        return LabelColumns(
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]
        )

    def get_scores(self, account_ids: Sequence[str] | None = None) -> list[Score]:
        sql = (
            "SELECT account_id, fraud_probability, social_credit, model_version, reasons,"
            " scored_at FROM scores"
        )
        rows: list[Any] = []
        with self._read() as db:
            if account_ids is None:
                rows = db.execute(sql + " ORDER BY account_id").fetchall()
            else:
                for chunk in _chunks(account_ids):
                    rows += db.execute(
                        sql + f" WHERE account_id IN ({_marks(len(chunk))})", tuple(chunk)
                    ).fetchall()
                rows.sort()
        return [
            Score(r[0], r[1], r[2], r[3], reasons=orjson.loads(r[4]), scored_at=r[5]) for r in rows
        ]

    def list_rings(self) -> list[Ring]:
        with self._read() as db:
            ids = [r[0] for r in db.execute("SELECT ring_id FROM rings")]
        rings = [self.get_ring(i) for i in ids]
        rings.sort(key=lambda r: (-r.score, r.ring_id))
        return rings

    def get_ring(self, ring_id: str) -> Ring:
        with self._read() as db:
            row = db.execute(
                "SELECT ring_id, kind, score, status, note, evidence, detected_at FROM rings"
                " WHERE ring_id = ?",
                (ring_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"ring {ring_id!r} not found")
            members = [
                m[0]
                for m in db.execute(
                    "SELECT account_id FROM ring_members WHERE ring_id = ? ORDER BY account_id",
                    (ring_id,),
                )
            ]
        return Ring(
            ring_id=row[0],
            kind=row[1],
            score=row[2],
            members=members,
            evidence=orjson.loads(row[5]),
            status=row[3],
            note=row[4],
            detected_at=row[6],
        )

    def rings_of(self, account_id: str) -> list[Ring]:
        if self.missing_accounts([account_id]):
            raise NotFound(f"account {account_id!r} not found")
        with self._read() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT ring_id FROM ring_members WHERE account_id = ?", (account_id,)
                )
            ]
        rings = [self.get_ring(i) for i in ids]
        rings.sort(key=lambda r: (-r.score, r.ring_id))
        return rings

    def adjacent(
        self, account_ids: Sequence[str], relations: frozenset[str] | None = None
    ) -> list[GraphEdge]:
        edges: dict[tuple[str, str, str], GraphEdge] = {}
        want_transfers = relations is None or TRANSFER in relations
        link_types = None if relations is None else sorted(relations - {TRANSFER})
        with self._read() as db:
            for chunk in _chunks(sorted(set(account_ids)), CHUNK // 2):
                marks, params = _marks(len(chunk)), tuple(chunk)
                if want_transfers:
                    for col in ("src", "dst"):
                        for s, d, n, total in db.execute(
                            "SELECT src, dst, count(*), sum(amount) FROM transfers"
                            f" WHERE {col} IN ({marks}) GROUP BY src, dst",
                            params,
                        ):
                            edges[(s, d, TRANSFER)] = GraphEdge(s, d, TRANSFER, True, n, total)
                if link_types is not None and not link_types:
                    continue
                type_filter = ""
                type_params: tuple[str, ...] = ()
                if link_types is not None:
                    type_filter = f" AND type IN ({_marks(len(link_types))})"
                    type_params = tuple(link_types)
                for col in ("src", "dst"):
                    for s, d, t in db.execute(
                        f"SELECT src, dst, type FROM links WHERE {col} IN ({marks}){type_filter}",
                        params + type_params,
                    ):
                        edges[(s, d, t)] = GraphEdge(s, d, t, False)
        return [edges[k] for k in sorted(edges)]

    def expand(
        self,
        account_ids: Sequence[str],
        relations: frozenset[str] | None,
        limit: int,
        hub_degree: int | None = None,
    ) -> dict[str, Ties]:
        ids = list(dict.fromkeys(account_ids))
        out: dict[str, Ties] = {}
        with self._read() as db:
            degree: dict[str, dict[str, int]] = {a: {} for a in ids}
            for chunk in _chunks(ids):
                for a, rel, n in db.execute(
                    "SELECT account_id, relation, n FROM degrees"
                    f" WHERE account_id IN ({_marks(len(chunk))}) AND n > 0",
                    tuple(chunk),
                ):
                    if relations is None or rel in relations:
                        degree[a][rel] = n
            for a in ids:
                d = degree[a]
                total = sum(d.values())
                ties: list[tuple[str, int]] | None = None
                if limit <= 0 or not d:
                    ties = []
                elif hub_degree is None or total <= hub_degree:
                    ties = self._ties(db, a, relations, limit)
                out[a] = Ties(d, ties)
        return out

    @staticmethod
    def _ties(
        db: sqlite3.Connection, account_id: str, relations: frozenset[str] | None, limit: int
    ) -> list[tuple[str, int]]:
        if relations is None:
            # ties_rank: the first ``limit`` entries of the account, nothing more.
            return [
                (b, int(w))
                for b, w in db.execute(
                    "SELECT other, w FROM ties WHERE account_id = ? ORDER BY w DESC, other LIMIT ?",
                    (account_id, limit),
                )
            ]
        # A relation filter weighs ties by the chosen relations only: counted from the
        # account's own relationships (a hub's whole list when one is asked for filtered).
        weight: dict[str, int] = {}
        if TRANSFER in relations:
            for sql in (
                "SELECT dst, count(*) FROM transfers WHERE src = ?1 AND dst <> ?1 GROUP BY dst",
                "SELECT src, count(*) FROM transfers WHERE dst = ?1 AND src <> ?1 GROUP BY src",
            ):
                for b, n in db.execute(sql, (account_id,)):
                    weight[b] = weight.get(b, 0) + int(n)
        types = sorted(relations - {TRANSFER})
        if types:
            marks = _marks(len(types))
            for sql in (
                f"SELECT dst FROM links WHERE src = ? AND dst <> src AND type IN ({marks})",
                f"SELECT src FROM links WHERE dst = ? AND dst <> src AND type IN ({marks})",
            ):
                for (b,) in db.execute(sql, (account_id, *types)):
                    weight[b] = weight.get(b, 0) + 1
        return sorted(weight.items(), key=lambda t: (-t[1], t[0]))[:limit]

    def edges_between(
        self, pairs: Sequence[tuple[str, str]], relations: frozenset[str] | None = None
    ) -> list[GraphEdge]:
        edges: dict[tuple[str, str, str], GraphEdge] = {}
        want_transfers = relations is None or TRANSFER in relations
        with self._read() as db:
            for x, y in dict.fromkeys(pairs):
                if want_transfers:
                    for s, d, n, total in db.execute(
                        "SELECT src, dst, count(*), sum(amount) FROM transfers"
                        " WHERE (src = ?1 AND dst = ?2) OR (src = ?2 AND dst = ?1)"
                        " GROUP BY src, dst",
                        (x, y),
                    ):
                        edges[(s, d, TRANSFER)] = GraphEdge(s, d, TRANSFER, True, n, total)
                a, b = (x, y) if x <= y else (y, x)
                for s, d, t in db.execute(
                    "SELECT src, dst, type FROM links WHERE src = ? AND dst = ?", (a, b)
                ):
                    if relations is None or t in relations:
                        edges[(s, d, t)] = GraphEdge(s, d, t, False)
        return [edges[k] for k in sorted(edges)]

    def edges_among(
        self, account_ids: Sequence[str], relations: frozenset[str] | None, heavy: set[str]
    ) -> list[GraphEdge]:
        # The pairs come from the ties table (both ends listed, one index range per light
        # account); only the drawn pairs' transfers are then read. Every light account is
        # paired with itself too (ties leave transfers to oneself out); a hub is not, as in
        # the contract's default.
        inside = set(account_ids)
        pairs: set[tuple[str, str]] = {(a, a) for a in inside if a not in heavy}
        with self._read() as db:
            for a in account_ids:
                if a in heavy:
                    continue
                for (b,) in db.execute("SELECT other FROM ties WHERE account_id = ?", (a,)):
                    if b in inside:
                        pairs.add((a, b) if a <= b else (b, a))
        big = sorted(heavy & inside)
        pairs.update((a, b) for i, a in enumerate(big) for b in big[i + 1 :])
        return self.edges_between(sorted(pairs), relations)

    def transfers_of(
        self,
        account_id: str,
        *,
        since: float | None = None,
        until: float | None = None,
        counterparty: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Transfer]:
        check_page(limit, offset)
        self._require_accounts([account_id], "transfers")
        # One branch per direction so each uses an index: (src, dst) / (dst, src) for a
        # counterparty, else (src, ts) / (dst, ts), which also serve "newest first" without
        # reading a hub's whole list. A transfer to oneself is taken by the first branch only;
        # the count subtracts those instead of testing every row of the second branch.
        cp = counterparty is not None
        window = (" AND ts >= :since" if since is not None else "") + (
            " AND ts <= :until" if until is not None else ""
        )
        src_index, dst_index = (
            ("transfers_src_dst", "transfers_dst_src")
            if cp
            else ("transfers_src_ts", "transfers_dst_ts")
        )
        outgoing = (
            f"FROM transfers INDEXED BY {src_index} WHERE src = :id"
            + (" AND dst = :cp" if cp else "")
            + window
        )
        incoming = (
            f"FROM transfers INDEXED BY {dst_index} WHERE dst = :id"
            + (" AND src = :cp" if cp else "")
            + window
        )
        own = f"FROM transfers WHERE src = :id AND dst = :id{window}"
        order = " ORDER BY ts DESC, transfer_id DESC"
        params = {
            "id": account_id,
            "cp": counterparty,
            "since": since,
            "until": until,
            "n": limit + offset,
            "limit": limit,
            "offset": offset,
        }
        with self._read() as db:

            def count(sql: str) -> int:
                return int(db.execute(f"SELECT count(*) {sql}", params).fetchone()[0])

            total = count(outgoing) + count(incoming)
            if counterparty in (None, account_id):
                total -= count(own)  # counted by both branches
            # Each branch stops after offset + limit rows in index order; the merge is small.
            rows = db.execute(
                f"SELECT * FROM (SELECT {TRANSFER_COLUMNS} {outgoing}{order} LIMIT :n)"
                f" UNION ALL SELECT * FROM (SELECT {TRANSFER_COLUMNS} {incoming} AND src <> :id"
                f"{order} LIMIT :n){order} LIMIT :limit OFFSET :offset",
                params,
            ).fetchall()
        return Page([_transfer(r) for r in rows], total, limit, offset)

    def transfers_among(self, account_ids: Sequence[str], *, limit: int = 200) -> list[Transfer]:
        check_page(limit, 0)
        ids = sorted(set(account_ids))
        wanted = set(ids)
        found: list[Transfer] = []
        with self._read() as db:
            for chunk in _chunks(ids):
                for row in db.execute(
                    f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE src IN ({_marks(len(chunk))})",
                    tuple(chunk),
                ):
                    if row[2] in wanted:
                        found.append(_transfer(row))
        found.sort(key=lambda t: (t.timestamp, t.transfer_id), reverse=True)
        return found[:limit]

    def find_rings(
        self,
        *,
        statuses: Sequence[RingStatus] | None = None,
        kinds: Sequence[RingKind] | None = None,
        min_score: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Ring]:
        check_page(limit, offset)
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (("status", statuses), ("kind", kinds)):
            if values is not None:
                clauses.append(f"{column} IN ({_marks(len(values))})" if values else "0")
                params += list(values)
        if min_score is not None:
            clauses.append("score >= ?")
            params.append(min_score)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as db:
            total = int(db.execute(f"SELECT count(*) FROM rings{where}", params).fetchone()[0])
            ids = [
                r[0]
                for r in db.execute(
                    f"SELECT ring_id FROM rings{where}"
                    " ORDER BY score DESC, ring_id LIMIT ? OFFSET ?",
                    (*params, limit, offset),
                )
            ]
            # get_ring per id (a page is small): one place knows how a ring is read.
            return Page([self.get_ring(i) for i in ids], total, limit, offset)

    def ring_memberships(self, account_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self._read() as db:
            for chunk in _chunks(sorted(set(account_ids))):
                for account_id, ring_id in db.execute(
                    "SELECT account_id, ring_id FROM ring_members"
                    f" WHERE account_id IN ({_marks(len(chunk))}) ORDER BY account_id, ring_id",
                    tuple(chunk),
                ):
                    out.setdefault(account_id, []).append(ring_id)
        return out

    def warm_request_pages(self) -> float:
        # Each count walks every page of one b-tree that ``account_attributes`` and
        # ``adjacent`` search (sequentially, so read ahead); a request then meets them in the
        # OS page cache, which the readers' mmap shares. A snapshot reads only the tables.
        start = time.perf_counter()
        with self._read() as db:
            for sql in REQUEST_PAGES:
                db.execute(sql).fetchone()
        return time.perf_counter() - start

    def snapshot(self) -> Snapshot:
        with self._read() as db:
            accounts = db.execute(
                "SELECT account_id, created_at, features FROM accounts ORDER BY account_id"
            ).fetchall()
            builder = SnapshotBuilder(
                [a[0] for a in accounts],
                [a[1] for a in accounts],
                [orjson.loads(a[2]) for a in accounts],
            )
            builder.set_labels(db.execute("SELECT account_id, label FROM labels"))
            # A sequential scan aggregated in numpy: GROUP BY would walk an index and look up
            # every row in the table (ten times slower on ten million transfers).
            src, dst, amount, ts = [], [], [], []
            for s, d, a, t in db.execute("SELECT src, dst, amount, ts FROM transfers"):
                src.append(s)
                dst.append(d)
                amount.append(a)
                ts.append(t)
            builder.add_raw_transfers(src, dst, amount, ts)
            builder.add_links(db.execute("SELECT src, dst, type FROM links"))
            return builder.build(revision=_revision(db))
