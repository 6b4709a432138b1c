"""Initial load of a whole network into an empty local Neo4j database with ``neo4j-admin``.

Transactional upserts (``services.ingest``) are the way to add data to a live graph; for the
first load of millions of rows Neo4j's offline importer writes the store files directly and
is an order of magnitude faster. This module validates the four contract files with exactly
the parsers of the normal import, writes them in the importer's format
(``store.neo4j_bulk``), takes the local server (``devtools.neo4j_server``) offline for the
import, and brings it back with the schema applied.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditgraph.config import Settings
from creditgraph.devtools import neo4j_server
from creditgraph.domain import AccountColumns, Counts, LabelColumns, LinkColumns, TransferColumns
from creditgraph.errors import Conflict, CreditGraphError, InvalidInput, StoreUnavailable
from creditgraph.ingest.csvfile import KINDS, ErrorCollector, Kind, Table, read_table
from creditgraph.ingest.records import Batch, Parsed, parse
from creditgraph.store.neo4j import Neo4jStore
from creditgraph.store.neo4j_bulk import PreparedImport, node_files, relationship_files

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
B = TypeVar("B", bound=Batch)


@dataclass(frozen=True)
class BulkLoadReport:
    """What ``initial_load`` did and where the time went (seconds)."""

    rows: dict[str, int]
    counts: Counts
    validate_s: float
    convert_s: float
    import_s: float
    restart_s: float
    schema_s: float
    total_s: float
    #: Building the strongest-ties lists of high-degree accounts (``store.neo4j_ties``).
    ties_s: float = 0.0


def prepare_import(input_dir: Path, out_dir: Path) -> PreparedImport:
    """Validate ``input_dir``'s contract files and write ``neo4j-admin`` CSVs into ``out_dir``.

    ``accounts.csv`` is required; ``transfers.csv``, ``links.csv`` and ``labels.csv`` may be
    absent. Every account a file references must be in ``accounts.csv``. Raises
    ``ValidationFailed`` (file:line errors) before anything is written for a bad file.
    """
    paths = {kind: input_dir / f"{kind}.csv" for kind in KINDS}
    if not paths["accounts"].is_file():
        raise InvalidInput(f"{paths['accounts']}: not found (a bulk load needs accounts.csv)")
    validate_s = convert_s = 0.0
    rows: dict[str, int] = {}

    t = time.perf_counter()
    accounts_table = read_table(paths["accounts"], "accounts")
    accounts = parse(accounts_table)
    account_ids = accounts_table.columns["account_id"]
    del accounts_table
    labels = _parse_checked(paths["labels"], "labels", account_ids)
    validate_s += time.perf_counter() - t
    t = time.perf_counter()
    nodes, multiline = node_files(
        out_dir,
        _batch(accounts, AccountColumns),
        accounts.feature_columns,
        accounts.property_columns,
        None if labels is None else _batch(labels, LabelColumns),
    )
    rows["accounts"] = len(accounts.batch)
    if labels is not None:
        rows["labels"] = len(labels.batch)
    del accounts, labels
    convert_s += time.perf_counter() - t

    relationships: list[tuple[str | None, Path, Path]] = []
    rel_kinds: tuple[Kind, ...] = ("transfers", "links")
    for kind in rel_kinds:
        t = time.perf_counter()
        parsed = _parse_checked(paths[kind], kind, account_ids)
        validate_s += time.perf_counter() - t
        if parsed is None:
            continue
        t = time.perf_counter()
        batch = (
            _batch(parsed, TransferColumns) if kind == "transfers" else _batch(parsed, LinkColumns)
        )
        rel_type, (header, data), spans = relationship_files(out_dir, batch)
        relationships.append((rel_type, header, data))
        multiline = multiline or spans
        rows[kind] = len(parsed.batch)
        del parsed, batch
        convert_s += time.perf_counter() - t
    return PreparedImport(nodes, relationships, multiline, rows, validate_s, convert_s)


def initial_load(settings: Settings, input_dir: Path, *, force: bool = False) -> BulkLoadReport:
    """Load ``input_dir`` (the four contract files) into an empty Neo4j database, fast.

    Works on the local server that ``devtools.neo4j_server`` manages for ``settings`` (same
    home, ports and database as ``creditgraph neo4j start``); it is started if needed. Refuses
    a database that holds accounts, transfers, links or rings unless ``force``, in which case
    they are replaced. Every file is validated and converted before the server is touched, so
    a bad file leaves the database as it was. Then the server stops (clients see it go away),
    ``neo4j-admin database import full`` rewrites the database, the server starts again and
    the schema (constraints, indexes, Meta node) is applied. Temporary files go to the system
    temp directory (``TMPDIR``); they take about as much space as the input.
    """
    started = time.perf_counter()
    _check_local(settings)
    neo4j_server.start(settings)
    existing = _counts(settings)
    if not force and (existing.accounts or existing.transfers or existing.links or existing.rings):
        raise Conflict(
            f"Neo4j database {settings.neo4j_database!r} is not empty ({existing.accounts} "
            f"accounts, {existing.transfers} transfers, {existing.links} links, "
            f"{existing.rings} rings); a bulk load replaces everything: pass --force to do so"
        )
    with tempfile.TemporaryDirectory(prefix="creditgraph-bulkload-") as tmp:
        work = Path(tmp)
        prepared = prepare_import(input_dir, work)
        t = time.perf_counter()
        neo4j_server.stop(settings)
        stop_s = time.perf_counter() - t
        t = time.perf_counter()
        try:
            neo4j_server.admin(
                settings, prepared.admin_args(settings.neo4j_database, work / "import.report")
            )
        except CreditGraphError as e:
            _restart_after_failure(settings, e)
            raise StoreUnavailable(
                f"neo4j-admin import failed; database {settings.neo4j_database!r} was "
                f"overwritten and may be unusable: fix the cause and bulk-load again with "
                f"--force.\n{e}"
            ) from e
        import_s = time.perf_counter() - t
    t = time.perf_counter()
    neo4j_server.start(settings)
    restart_s = stop_s + time.perf_counter() - t
    t = time.perf_counter()
    store = Neo4jStore.connect(settings)  # which applies the schema
    try:
        # neo4j-admin bypassed the writes that keep hubs' strongest ties on the node.
        schema_s = time.perf_counter() - t
        t = time.perf_counter()
        store.rebuild_ties()
        ties_s = time.perf_counter() - t
        counts = store.counts()
    finally:
        store.close()
    return BulkLoadReport(
        rows=prepared.rows,
        counts=counts,
        validate_s=prepared.validate_s,
        convert_s=prepared.convert_s,
        import_s=import_s,
        restart_s=restart_s,
        schema_s=schema_s,
        ties_s=ties_s,
        total_s=time.perf_counter() - started,
    )


# -- validation ----------------------------------------------------------------------------------


def _parse_checked(path: Path, kind: Kind, account_ids: pa.Array) -> Parsed | None:
    """Parse ``path`` as the normal import does, then check its references against the
    accounts file (the database is about to be replaced, so the store cannot vouch for them).
    None when the optional file is absent."""
    if not path.is_file():
        return None
    table = read_table(path, kind)
    parsed = parse(table)
    _check_references(table, parsed, account_ids)
    return parsed


def _check_references(table: Table, parsed: Parsed, account_ids: pa.Array) -> None:
    errs = ErrorCollector(table)
    for column, col in parsed.references.items():
        unknown = pc.invert(pc.is_in(col, value_set=account_ids)).to_numpy(zero_copy_only=False)
        errs.add_rows(np.flatnonzero(unknown), column, _not_an_account(col))
    errs.raise_if_any()


def _not_an_account(col: pa.Array) -> Callable[[int], str]:
    def reason(row: int) -> str:
        return f"account {col[row].as_py()!r} is not in accounts.csv"

    return reason


def _check_local(settings: Settings) -> None:
    """Refuse when the URI is not the server this process can stop and import into."""
    uri = urlsplit(settings.neo4j_uri)
    if uri.hostname not in _LOCAL_HOSTS or (uri.port or 7687) != settings.neo4j_bolt_port:
        raise StoreUnavailable(
            f"a bulk load rewrites the local server's files: CREDITGRAPH_NEO4J_URI "
            f"({settings.neo4j_uri}) must be that server, bolt://127.0.0.1:"
            f"{settings.neo4j_bolt_port} (CREDITGRAPH_NEO4J_BOLT_PORT)"
        )


def _counts(settings: Settings) -> Counts:
    store = Neo4jStore.connect(settings)
    try:
        return store.counts()
    finally:
        store.close()


def _restart_after_failure(settings: Settings, cause: CreditGraphError) -> None:
    """Bring the server back after a failed import; a second failure must not hide the first."""
    try:
        neo4j_server.start(settings)
    except CreditGraphError as e:
        raise StoreUnavailable(
            f"neo4j-admin import failed and the server did not come back ({e}).\n{cause}"
        ) from cause


def _batch(parsed: Parsed, kind: type[B]) -> B:
    if not isinstance(parsed.batch, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(parsed.batch).__name__}")
    return parsed.batch
