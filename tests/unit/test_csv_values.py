"""Value parsing of the ingest layer: times, numbers, numeric-column detection."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from creditgraph.ingest.csvfile import (
    ErrorCollector,
    Table,
    is_numeric_column,
    parse_numbers,
    parse_times,
)


def table(column: str, values: list[str]) -> Table:
    return Table(
        path=Path("f.csv"),
        kind="transfers",
        columns={column: pa.array(values, pa.string())},
        lines=np.arange(2, len(values) + 2),
        num_rows=len(values),
    )


def test_iso_times_with_and_without_zone() -> None:
    t = table(
        "ts",
        [
            "2024-01-02",
            "2024-01-02T03:04:05Z",
            "2024-01-02T04:04:05+01:00",
            "2024-01-02 03:04:05",
            "2024-01-02T03:04:05.250",
            "",
        ],
    )
    errs = ErrorCollector(t)
    got = parse_times(errs, "ts", required=False)
    base = datetime(2024, 1, 2, tzinfo=UTC).timestamp()
    assert got[:5].tolist() == [base, base + 11045, base + 11045, base + 11045, base + 11045.25]
    assert np.isnan(got[5])
    assert errs.total == 0


def test_bad_times_are_located() -> None:
    t = table("ts", ["2024-01-02", "02/01/2024", "2024-02-30", ""])
    errs = ErrorCollector(t)
    parse_times(errs, "ts", required=True)
    assert sorted((e.line, e.reason.split(":")[0]) for e in errs.errors) == [
        (3, "not an ISO-8601 date/time"),
        (4, "impossible date/time"),
        (5, "missing value"),
    ]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1", True),
        ("1.5", True),
        (".5", True),
        ("1e3", True),
        ("-2", True),
        ("1,5", False),
        ("nan", False),
        ("inf", False),
        ("0x10", False),
        ("1.2.3", False),
    ],
)
def test_number_syntax(text: str, ok: bool) -> None:
    errs = ErrorCollector(table("amount", [text]))
    parse_numbers(errs, "amount", required=True, non_negative=False)
    assert (errs.total == 0) is ok


def test_numeric_column_detection() -> None:
    assert is_numeric_column(pa.array(["1", "", "2.5"]))
    assert not is_numeric_column(pa.array(["1", "x"]))
    assert not is_numeric_column(pa.array(["", ""]))
