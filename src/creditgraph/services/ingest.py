"""Import contract rows into a store (a CSV file, or an HTTP batch with the same checks):
validate everything, then write in batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditgraph.domain import (
    COLUMN_NAME_RE,
    AccountColumns,
    LinkColumns,
    ObligationColumns,
    TransferColumns,
)
from creditgraph.errors import AccountConflict, InvalidInput, ObligationConflict, TransferConflict
from creditgraph.ingest.csvfile import REQUIRED, ErrorCollector, Kind, Table, read_table
from creditgraph.ingest.records import (
    CLI_MISSING_HINT,
    Batch,
    dangling_rows,
    parse,
    unknown_transfer_rows,
)
from creditgraph.outcomes import TransferLabelColumns
from creditgraph.store.base import GraphStore, Revision
from creditgraph.store.obligations import plan_obligations

#: Called after each written batch with (rows written so far, total rows).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportReport:
    """What an import did; ``changed`` is 0 when the file was already fully imported."""

    kind: Kind
    path: Path
    rows: int
    changed: int
    created_accounts: int
    validate_s: float
    write_s: float


def import_file(
    store: GraphStore,
    kind: Kind,
    path: Path,
    *,
    create_missing_accounts: bool = False,
    batch_size: int = 20_000,
    progress: Progress | None = None,
    allow_erased: bool = False,
) -> ImportReport:
    """Validate ``path`` completely, then upsert it. Nothing is written from an invalid file.

    The embedded store writes the whole file in one transaction; Neo4j commits per batch and
    every write is idempotent by key, so re-running an interrupted import finishes it exactly.
    Rows naming an erased account (a data-subject erasure's tombstone) are refused with
    their file and line unless ``allow_erased``, which re-admits the account.
    """
    t0 = time.perf_counter()
    table = read_table(path, kind)
    report, _ = _import_table(
        store,
        table,
        t0,
        create_missing_accounts=create_missing_accounts,
        batch_size=batch_size,
        progress=progress,
        missing_hint=CLI_MISSING_HINT,
        allow_erased=allow_erased,
    )
    return report


@dataclass(frozen=True)
class RecordsImport:
    """What ``import_records`` did, with the validated batch it wrote."""

    report: ImportReport
    batch: Batch


def import_records(
    store: GraphStore,
    kind: Kind,
    records: Sequence[Mapping[str, str | None]],
    *,
    create_missing_accounts: bool = False,
    source: str = "items",
    missing_hint: str = "create the accounts first, or set create_missing_accounts=true",
    revision: Revision | None = None,
) -> RecordsImport:
    """Import rows given as values (an HTTP batch) with exactly the CSV file's checks.

    Each record maps column names to text as it would appear in the CSV file (None or ""
    means missing). Errors name the record's index in ``line`` and the file ``source``.
    Everything is validated before anything is written, in one ``import_scope``.
    ``revision``: who writes accounts and which existing values they may change
    (``GraphStore.upsert_accounts``).
    """
    t0 = time.perf_counter()
    if not records:
        raise InvalidInput("no items: send at least one")
    names: dict[str, None] = dict.fromkeys(REQUIRED[kind])
    for r in records:
        names.update(dict.fromkeys(r))
    for name in names:
        if not COLUMN_NAME_RE.match(name):
            raise InvalidInput(f"{name!r}: field names must be identifiers (letters, digits, _)")
    columns = {
        name: pc.utf8_trim_whitespace(pa.array([(r.get(name) or "") for r in records], pa.string()))
        for name in names
    }
    table = Table(
        path=Path(source),
        kind=kind,
        columns=columns,
        lines=np.arange(len(records), dtype=np.int64),
        num_rows=len(records),
    )
    report, batch = _import_table(
        store,
        table,
        t0,
        create_missing_accounts=create_missing_accounts,
        batch_size=len(records),
        missing_hint=missing_hint,
        revision=revision,
        atomic=True,
    )
    return RecordsImport(report, batch)


def _import_table(
    store: GraphStore,
    table: Table,
    t0: float,
    *,
    create_missing_accounts: bool,
    batch_size: int,
    missing_hint: str,
    progress: Progress | None = None,
    revision: Revision | None = None,
    atomic: bool = False,
    allow_erased: bool = False,
) -> tuple[ImportReport, Batch]:
    parsed = parse(table)
    stubs: list[str] = []
    id_columns = {n: table.columns[n] for n in ERASABLE_COLUMNS if n in table.columns}
    erased = _refuse_erased(store, table, id_columns, allow_erased)
    if parsed.references:
        referenced = pc.unique(
            pa.concat_arrays([c for c in parsed.references.values()])
        ).to_pylist()
        missing = store.missing_accounts(referenced)
        if missing and not create_missing_accounts:
            errs = ErrorCollector(table)
            dangling_rows(table, parsed, missing, errs, missing_hint)
            errs.raise_if_any()
        stubs = sorted(missing)
    if parsed.transfer_references:
        ids = pc.unique(pa.concat_arrays(list(parsed.transfer_references.values()))).to_pylist()
        unknown = store.missing_transfers(ids)
        if unknown:
            errs = ErrorCollector(table)
            unknown_transfer_rows(parsed, unknown, errs)
            errs.raise_if_any()
    t1 = time.perf_counter()
    batch = parsed.batch
    if isinstance(batch, ObligationColumns):
        # The whole file against the store before any batch is written: a refused row
        # leaves nothing half-applied, on Neo4j (per-batch commits) as well.
        try:
            plan_obligations(batch, store.get_obligations(batch.obligation_id))
        except ObligationConflict as e:
            raise _located(e, table, 0) from None
    total = len(batch)
    changed = 0
    with store.import_scope(table.kind, total, atomic=atomic):
        if stubs:
            store.upsert_accounts(
                AccountColumns(stubs, [None] * len(stubs), [{}] * len(stubs), [{}] * len(stubs))
            )
        for start in range(0, total, batch_size):
            try:
                changed += _write(store, batch.slice(start, start + batch_size), revision)
            except ObligationConflict as e:
                raise _located(e, table, start) from None
            except TransferConflict as e:  # locate the rows: file and line
                raise TransferConflict(
                    [
                        replace(c, row=table.line(start + c.row), file=str(table.path))
                        for c in e.changed
                    ]
                ) from None
            except AccountConflict as e:
                raise AccountConflict(
                    [
                        replace(c, row=table.line(start + c.row), file=str(table.path))
                        for c in e.changed
                    ]
                ) from None
            if progress is not None:
                progress(min(start + batch_size, total), total)
        if erased:
            store.lift_tombstones(erased)  # re-admitted on purpose (allow_erased)
    report = ImportReport(
        kind=table.kind,
        path=table.path,
        rows=total,
        changed=changed,
        created_accounts=len(stubs),
        validate_s=t1 - t0,
        write_s=time.perf_counter() - t1,
    )
    return report, batch


def _located(e: ObligationConflict, table: Table, start: int) -> ObligationConflict:
    return ObligationConflict(
        [replace(c, row=table.line(start + c.row), file=str(table.path)) for c in e.refused]
    )


#: Columns that name accounts, in every kind of file.
ERASABLE_COLUMNS = ("account_id", "src", "dst")


def _refuse_erased(
    store: GraphStore, table: Table, columns: Mapping[str, pa.Array], allow: bool
) -> list[str]:
    """Refuse rows naming an erased account (file and line each), unless ``allow``; returns
    the erased ids the import re-admits."""
    if not columns:
        return []
    ids = pc.unique(pa.concat_arrays(list(columns.values()))).to_pylist()
    erased = store.erased([i for i in ids if i])
    if not erased or allow:
        return sorted(erased)
    errs = ErrorCollector(table)
    value_set = pa.array(sorted(erased), pa.string())
    for name, col in columns.items():
        rows = np.flatnonzero(
            np.asarray(pc.is_in(col, value_set=value_set).fill_null(False), dtype=bool)
        )

        def reason(r: int, col: pa.Array = col) -> str:
            a = col[r].as_py()
            when = time.strftime("%Y-%m-%d", time.gmtime(erased[a]))
            return (
                f"account {a!r} was erased on {when} (data-subject erasure); refused so the "
                "person is not brought back (to re-admit: creditgraph import --allow-erased)"
            )

        errs.add_rows(rows, name, reason)
    errs.raise_if_any()
    return []


def _write(store: GraphStore, batch: Batch, revision: Revision | None) -> int:
    if isinstance(batch, AccountColumns):
        return store.upsert_accounts(batch, revision)
    if isinstance(batch, TransferColumns):
        return store.upsert_transfers(batch)
    if isinstance(batch, LinkColumns):
        return store.upsert_links(batch)
    if isinstance(batch, TransferLabelColumns):
        return store.upsert_transfer_labels(batch)
    if isinstance(batch, ObligationColumns):
        return store.upsert_obligations(batch)
    return store.upsert_labels(batch)
