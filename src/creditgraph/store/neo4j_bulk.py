"""The ``neo4j-admin database import`` file format for the graph model of ``store.neo4j``.

Validated batches (the normal import's parsers made them) become the importer's CSVs, with
separate header and data files, so an offline bulk load is indistinguishable from a normal
import. Missing optional values are written as unquoted empty fields, which the importer
skips, so they end up as absent properties exactly as ``SET x = null`` leaves them.
Everything gets ``seq = 0``, the Meta counter's initial value: a snapshot sees it all, later
imports stamp 1+. ``devtools.bulkload`` validates the files and runs the importer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from creditgraph.domain import AccountColumns, LabelColumns, LinkColumns, TransferColumns

#: The importer's ID space of accounts; relationship files refer to it.
_ID_SPACE = "Account"
# Arrow quotes every string and leaves nulls as bare empty fields: the importer reads a quoted
# value verbatim (commas, doubled quotes) and skips a bare empty field (absent property).
_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")

Columns = dict[str, pa.Array]
Files = tuple[Path, Path]


@dataclass(frozen=True)
class PreparedImport:
    """Validated input converted to ``neo4j-admin`` CSVs (separate header and data files)."""

    nodes: Files
    #: (relationship type, or None when the file has a ``:TYPE`` column; header; data)
    relationships: list[tuple[str | None, Path, Path]]
    #: Some value spans lines: the importer must parse quoted newlines (slower).
    multiline: bool
    #: Rows per contract file kind.
    rows: dict[str, int]
    validate_s: float
    convert_s: float

    def admin_args(self, database: str, report_file: Path) -> list[str]:
        """Arguments for ``neo4j-admin`` that import these files into ``database``."""
        args = [
            "database",
            "import",
            "full",
            database,
            "--overwrite-destination=true",
            # Belt and braces: an empty string never reaches the store in a normal import.
            "--ignore-empty-strings=true",
            f"--multiline-fields={'true' if self.multiline else 'false'}",
            f"--report-file={report_file}",
            f"--nodes={_ID_SPACE}={self.nodes[0]},{self.nodes[1]}",
        ]
        for rel_type, header, data in self.relationships:
            prefix = f"{rel_type}=" if rel_type else ""
            args.append(f"--relationships={prefix}{header},{data}")
        return args


def node_files(
    out_dir: Path,
    accounts: AccountColumns,
    feature_columns: Sequence[str],
    property_columns: Sequence[str],
    labels: LabelColumns | None,
) -> tuple[Files, bool]:
    """The accounts (with their labels merged in) as node files; also whether any value
    spans lines."""
    return _write(
        out_dir, "accounts", _node_columns(accounts, feature_columns, property_columns, labels)
    )


def relationship_files(
    out_dir: Path, batch: TransferColumns | LinkColumns
) -> tuple[str | None, Files, bool]:
    """Transfers (type ``TRANSFERRED``) or links (a ``:TYPE`` column) as relationship files:
    (type or None, files, whether any value spans lines)."""
    if isinstance(batch, TransferColumns):
        files, spans = _write(out_dir, "transfers", _transfer_columns(batch))
        return "TRANSFERRED", files, spans
    files, spans = _write(out_dir, "links", _link_columns(batch))
    return None, files, spans


def _node_columns(
    batch: AccountColumns,
    feature_columns: Sequence[str],
    property_columns: Sequence[str],
    labels: LabelColumns | None,
) -> Columns:
    cols: Columns = {
        f"account_id:ID({_ID_SPACE})": pa.array(batch.account_id, pa.string()),
        "created_at:double": pa.array(batch.created_at, pa.float64()),
    }
    for name in feature_columns:
        cols[f"f_{name}:double"] = pa.array([f.get(name) for f in batch.features], pa.float64())
    for name in property_columns:
        cols[f"p_{name}"] = pa.array([p.get(name) for p in batch.properties], pa.string())
    if labels is not None:
        lb = labels
        # Row of each account in labels.csv (null: unlabelled), to merge labels into nodes.
        where = pc.index_in(
            cols[f"account_id:ID({_ID_SPACE})"], value_set=pa.array(lb.account_id, pa.string())
        )
        cols["label"] = pa.array(lb.label, pa.string()).take(where)
        cols["label_source"] = pa.array(lb.source, pa.string()).take(where)
        cols["label_observed_at:double"] = pa.array(lb.observed_at, pa.float64()).take(where)
    cols["seq:long"] = _zeros(len(batch))
    return cols


def _transfer_columns(b: TransferColumns) -> Columns:
    return {
        "transfer_id": pa.array(b.transfer_id, pa.string()),
        f":START_ID({_ID_SPACE})": pa.array(b.src, pa.string()),
        f":END_ID({_ID_SPACE})": pa.array(b.dst, pa.string()),
        "amount:double": pa.array(b.amount, pa.float64()),
        "ts:double": pa.array(b.timestamp, pa.float64()),
        "currency": pa.array(b.currency, pa.string()),
        "channel": pa.array(b.channel, pa.string()),
        "seq:long": _zeros(len(b)),
    }


def _link_columns(b: LinkColumns) -> Columns:
    # The parser already put each pair in canonical order (smaller id first).
    return {
        f":START_ID({_ID_SPACE})": pa.array(b.src, pa.string()),
        f":END_ID({_ID_SPACE})": pa.array(b.dst, pa.string()),
        ":TYPE": pa.array(b.type, pa.string()),
        "since:double": pa.array(b.since, pa.float64()),
        "seq:long": _zeros(len(b)),
    }


def _zeros(n: int) -> pa.Array:
    return pa.array(np.zeros(n, dtype=np.int64))


def _write(out_dir: Path, name: str, columns: Columns) -> tuple[tuple[Path, Path], bool]:
    """Header and data file for ``columns``; also whether any value holds a line break."""
    header = out_dir / f"{name}.header.csv"
    data = out_dir / f"{name}.csv"
    # Names are identifiers plus the importer's type suffixes: nothing to quote.
    header.write_text(",".join(columns) + "\n", encoding="utf-8")
    pa_csv.write_csv(pa.table(list(columns.values()), names=list(columns)), data, _WRITE_OPTIONS)
    multiline = any(_has_line_break(col) for col in columns.values())
    return (header, data), multiline


def _has_line_break(col: pa.Array) -> bool:
    """Whether a string value holds CR or LF. A string array keeps all values' bytes in one
    buffer, so a byte search answers for every value at once (20x faster than a regex per
    value); bytes outside a sliced array could only raise a false alarm: slower, still right."""
    data = col.buffers()[2] if pa.types.is_string(col.type) else None
    if data is None:
        return False
    raw = data.to_pybytes()
    return b"\n" in raw or b"\r" in raw
