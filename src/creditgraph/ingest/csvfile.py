"""Read and validate the contract's CSV files before anything is written.

Parsing and checks are vectorised with pyarrow (ten million transfers validate in seconds), yet
every problem is reported as ``file:line: column: reason``: row indices map back to physical
lines exactly, through a slow exact pass when the file has quoted fields or blank lines.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from creditgraph.domain import COLUMN_NAME_RE, LINK_TYPE_RE, RESERVED_LINK_TYPES
from creditgraph.errors import InvalidInput, RowError, ValidationFailed

Kind = Literal["accounts", "transfers", "links", "labels", "transfer_labels", "obligations"]
#: The four graph files every network has (``synth`` writes them, the demo imports them).
KINDS: tuple[Kind, ...] = ("accounts", "transfers", "links", "labels")
#: Every kind ``creditgraph import`` takes: the graph files plus outcome and credit files.
IMPORT_KINDS: tuple[Kind, ...] = (*KINDS, "transfer_labels", "obligations")
ALL_KINDS = IMPORT_KINDS

REQUIRED: dict[Kind, tuple[str, ...]] = {
    "accounts": ("account_id",),
    "transfers": ("transfer_id", "src", "dst", "amount", "timestamp"),
    "links": ("src", "dst", "type"),
    "labels": ("account_id", "label"),
    "transfer_labels": ("transfer_id", "label"),
    "obligations": (
        "obligation_id",
        "account_id",
        "kind",
        "amount",
        "opened_at",
        "due_at",
        "status",
    ),
}
OPTIONAL: dict[Kind, tuple[str, ...]] = {
    "accounts": ("created_at",),
    "transfers": ("currency", "channel"),
    "links": ("since",),
    "labels": ("source", "observed_at"),
    "transfer_labels": ("source", "observed_at"),
    "obligations": ("closed_at",),
}
TIME_COLUMNS = frozenset(
    {"created_at", "timestamp", "since", "observed_at", "opened_at", "due_at", "closed_at"}
)
ID_COLUMNS = frozenset({"account_id", "transfer_id", "src", "dst", "obligation_id"})
MAX_ID_LENGTH = 128
#: Report at most this many problems; a file with more is plainly the wrong file.
MAX_ERRORS = 50

NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
#: A number or a spelling of a non-finite one (``nan``, ``inf``, ``-Infinity``): parsed as a
#: number so that the row is refused as "not a finite number", by line, instead of the
#: whole column silently turning into text.
NUMBERISH_RE = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|nan|inf|infinity)$"
ISO_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
_HAS_ZONE_RE = r"(Z|[+-]\d{2}:?\d{2})$"
_DATE_ONLY_RE = r"^\d{4}-\d{2}-\d{2}$"


@dataclass
class Table:
    """A parsed file: string columns (empty string = missing) and line numbers per row."""

    path: Path
    kind: Kind
    columns: dict[str, pa.Array]
    lines: np.ndarray
    num_rows: int

    def line(self, row: int) -> int:
        return int(self.lines[row])


class ErrorCollector:
    """Collects row errors (sorted by line when raised) up to ``MAX_ERRORS``."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.errors: list[RowError] = []
        self.total = 0

    def add_rows(self, rows: np.ndarray, column: str | None, reason: Callable[[int], str]) -> None:
        self.total += len(rows)
        for r in rows[:MAX_ERRORS]:
            self.errors.append(
                RowError(str(self.table.path), self.table.line(int(r)), column, reason(int(r)))
            )

    def add_mask(self, mask: pa.Array | np.ndarray, column: str | None, reason: str) -> None:
        rows = np.flatnonzero(_np_bool(mask))
        if len(rows):
            self.add_rows(rows, column, lambda _r: reason)

    def raise_if_any(self) -> None:
        if self.total:
            errs = sorted(self.errors, key=lambda e: (e.line, e.column or ""))[:MAX_ERRORS]
            raise ValidationFailed(errs, self.total)


def _np_bool(mask: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask.astype(bool)
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _fail(path: Path, line: int, reason: str, column: str | None = None) -> ValidationFailed:
    return ValidationFailed([RowError(str(path), line, column, reason)])


def read_table(path: Path, kind: Kind) -> Table:
    """Parse ``path`` as a ``kind`` file: encoding, header and row shape; values stay strings."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read: {e.strerror or e}") from e
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        start = data.rfind(b"\n", 0, e.start) + 1
        col = _column_at(data[start : e.start], data[: data.find(b"\n")] if b"\n" in data else data)
        raise _fail(path, line, f"not valid UTF-8 (byte 0x{data[e.start]:02x})", col) from None
    if not data.strip():
        raise _fail(path, 1, "empty file: expected a header row")
    header = next(
        csv.reader(
            io.StringIO(data[: data.find(b"\n") if b"\n" in data else len(data)].decode("utf-8"))
        )
    )
    _check_header(path, kind, header)
    if not data.rstrip(b"\r\n").count(b"\n"):
        raise _fail(path, 1, "no data rows after the header")

    # Fast path: no blank lines and one record per physical line, so row i is line i + 2.
    # Otherwise (quoted newlines, blank or ragged lines) an exact pass maps rows to lines.
    physical = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    blank = b"\n\n" in data or b"\n\r\n" in data
    try:
        table, ragged = _parse(data, header, newlines_in_values=False)
    except pa.ArrowInvalid:
        table, ragged = None, True
    if table is not None and not blank and not ragged and table.num_rows == physical - 1:
        line_numbers = np.arange(2, table.num_rows + 2, dtype=np.int64)
    else:
        records = _record_lines(data)
        bad_shape = [ln for ln, n in records if n != len(header)]
        if bad_shape:
            errs = [
                RowError(str(path), ln, None, f"expected {len(header)} fields as in the header")
                for ln in bad_shape[:MAX_ERRORS]
            ]
            raise ValidationFailed(errs, len(bad_shape))
        try:
            table, _ = _parse(data, header, newlines_in_values=True)
        except pa.ArrowInvalid as e:
            raise InvalidInput(f"{path}: not a readable CSV file: {e}") from e
        line_numbers = np.array([ln for ln, _ in records], dtype=np.int64)
    n = table.num_rows
    columns = {
        name: pc.utf8_trim_whitespace(table.column(name).combine_chunks()) for name in header
    }
    return Table(path=path, kind=kind, columns=columns, lines=line_numbers, num_rows=n)


def _parse(data: bytes, header: list[str], *, newlines_in_values: bool) -> tuple[pa.Table, bool]:
    """All columns as strings; returns the table and whether any row had the wrong width."""
    ragged: list[bool] = []

    def on_invalid(_row: object) -> Literal["skip"]:
        ragged.append(True)
        return "skip"

    table = pa_csv.read_csv(
        io.BytesIO(data),
        read_options=pa_csv.ReadOptions(use_threads=True, block_size=1 << 24),
        parse_options=pa_csv.ParseOptions(
            newlines_in_values=newlines_in_values, invalid_row_handler=on_invalid
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
        ),
    )
    return table, bool(ragged)


def _column_at(prefix: bytes, header_line: bytes) -> str | None:
    """Name of the column a byte offset within a line falls in (best effort, for messages)."""
    names = header_line.decode("utf-8", "replace").strip().split(",")
    idx = prefix.count(b",")
    return names[idx] if idx < len(names) else None


def _check_header(path: Path, kind: Kind, header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise _fail(path, 1, "column appears twice in the header", name)
        seen.add(name)
        if not COLUMN_NAME_RE.match(name):
            raise _fail(path, 1, "column names must be identifiers (letters, digits, _)", name)
    missing = [c for c in REQUIRED[kind] if c not in seen]
    if missing:
        raise _fail(
            path,
            1,
            f"missing required column(s) {', '.join(missing)} for a {kind} file; "
            f"header is {','.join(header)}",
        )


def _record_lines(data: bytes) -> list[tuple[int, int]]:
    """(first physical line, field count) of every non-blank record, via the csv module."""
    out: list[tuple[int, int]] = []
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    next(reader)
    prev_end = reader.line_num
    for rec in reader:
        start = prev_end + 1
        prev_end = reader.line_num
        if not rec:
            continue
        out.append((start, len(rec)))
    return out


# -- value checks ------------------------------------------------------------------------------


def check_ids(errs: ErrorCollector, column: str, *, required: bool = True) -> None:
    """Ids: non-empty (when required), at most ``MAX_ID_LENGTH`` characters."""
    col = errs.table.columns[column]
    length = pc.utf8_length(col)
    if required:
        errs.add_mask(pc.equal(length, 0), column, "missing value")
    errs.add_mask(
        pc.greater(length, MAX_ID_LENGTH), column, f"longer than {MAX_ID_LENGTH} characters"
    )


def check_unique(errs: ErrorCollector, keys: pa.Array, label: str) -> None:
    """Report every row whose key repeats an earlier row's key, with the first line."""
    if len(pc.unique(keys)) == len(keys):  # hashing is much cheaper than sorting strings
        return
    order = pc.sort_indices(keys).to_numpy()
    sorted_keys = keys.take(pa.array(order))
    if len(order) < 2:
        return
    same = _np_bool(pc.equal(sorted_keys[1:], sorted_keys[:-1]))
    if not same.any():
        return
    first_of: dict[int, int] = {}
    dup_rows: list[int] = []
    run_start = order[0]
    for k in range(1, len(order)):
        if same[k - 1]:
            first_of[int(order[k])] = int(run_start)
            dup_rows.append(int(order[k]))
        else:
            run_start = order[k]
    rows = np.array(sorted(dup_rows), dtype=np.int64)
    # Within a run of equal keys, sort_indices is stable, so run_start is the earliest row.
    errs.add_rows(rows, label, lambda r: f"duplicate of line {errs.table.line(first_of[r])}")


def _matching(
    errs: ErrorCollector, column: str, pattern: str, *, required: bool, what: str
) -> np.ndarray:
    """Mask of values matching ``pattern``; reports empty (when required) and other values."""
    col = errs.table.columns[column]
    empty = _np_bool(pc.equal(pc.utf8_length(col), 0))
    ok = _np_bool(pc.match_substring_regex(col, pattern))
    if required:
        errs.add_mask(empty, column, "missing value")
    errs.add_rows(
        np.flatnonzero(~ok & ~empty), column, lambda r: f"{what}: {col[r].as_py()[:40]!r}"
    )
    return ok


def parse_numbers(
    errs: ErrorCollector, column: str, *, required: bool, non_negative: bool
) -> np.ndarray:
    """Finite floats (NaN where empty and optional)."""
    col = errs.table.columns[column]
    ok = _matching(errs, column, NUMBERISH_RE, required=required, what="not a number")
    values = np.full(len(col), np.nan)
    if ok.any():
        with np.errstate(over="ignore"):
            values[ok] = pc.cast(col.filter(pa.array(ok)), pa.float64()).to_numpy()
    bad = ok & ~np.isfinite(values)
    errs.add_rows(
        np.flatnonzero(bad), column, lambda r: f"not a finite number: {col[r].as_py()[:40]!r}"
    )
    ok &= ~bad
    if non_negative:
        errs.add_mask(ok & (values < 0), column, "must not be negative")
    return values


def parse_times(errs: ErrorCollector, column: str, *, required: bool) -> np.ndarray:
    """ISO-8601 date or date-time to UNIX seconds (NaN where empty); no zone means UTC."""
    col = errs.table.columns[column]
    ok = _matching(errs, column, ISO_RE, required=required, what="not an ISO-8601 date/time")
    values = np.full(len(col), np.nan)
    if not ok.any():
        return values
    good = col.filter(pa.array(ok))
    good = pc.if_else(
        pc.match_substring_regex(good, _DATE_ONLY_RE),
        pc.binary_join_element_wise(good, pa.scalar("T00:00:00"), ""),
        good,
    )
    good = pc.if_else(
        pc.match_substring_regex(good, _HAS_ZONE_RE),
        good,
        pc.binary_join_element_wise(good, pa.scalar("Z"), ""),
    )
    try:
        micros = pc.cast(good, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        # Shape was right but a value is impossible (2024-02-30): find which, row by row.
        ok_rows = np.flatnonzero(ok)
        parsed = np.full(len(ok_rows), np.nan)
        for i, text in enumerate(good.to_pylist()):
            try:
                parsed[i] = datetime.fromisoformat(text).timestamp()
            except ValueError:
                errs.add_rows(
                    ok_rows[i : i + 1],
                    column,
                    lambda r: f"impossible date/time: {col[r].as_py()[:40]!r}",
                )
        values[ok_rows] = parsed
        return values
    values[ok] = micros / 1e6
    return values


def check_in(errs: ErrorCollector, column: str, allowed: Sequence[str]) -> None:
    col = errs.table.columns[column]
    bad = ~_np_bool(pc.is_in(col, value_set=pa.array(list(allowed))))
    errs.add_rows(
        np.flatnonzero(bad),
        column,
        lambda r: f"{col[r].as_py()[:40]!r} is not one of {', '.join(allowed)}",
    )


def check_link_types(errs: ErrorCollector) -> None:
    col = errs.table.columns["type"]
    values = col.to_pylist()
    bad = [i for i, t in enumerate(values) if not LINK_TYPE_RE.match(t) or t in RESERVED_LINK_TYPES]
    errs.add_rows(
        np.array(bad, dtype=np.int64),
        "type",
        lambda r: (
            f"{values[r][:40]!r} is not an UPPER_SNAKE link type (reserved: "
            f"{', '.join(sorted(RESERVED_LINK_TYPES))})"
        ),
    )


def is_numeric_column(col: pa.Array) -> bool:
    """A column is a numeric feature when every non-empty value is a number. Non-finite
    ones (``nan``, ``inf``, ``1e999``) count, so ``parse_numbers`` refuses their rows: a
    feature is never stored as text because one row overflowed."""
    nonempty = col.filter(pc.greater(pc.utf8_length(col), 0))
    if len(nonempty) == 0:
        return False
    return bool(pc.all(pc.match_substring_regex(nonempty, NUMBERISH_RE)).as_py())


def optional_strings(col: pa.Array) -> list[str | None]:
    """Empty string means missing."""
    return [v or None for v in col.to_pylist()]


def optional_floats(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values.tolist()]
