"""Vectorised CSV output with pyarrow: ids, timestamps and amounts are formatted in Arrow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from creditgraph.domain import FloatArray, IntArray

#: Rows formatted and written per step; bounds the memory of the string columns.
CHUNK_ROWS = 1_000_000
_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=16_384, quoting_style="none")


def id_strings(prefix: str, index: IntArray, width: int) -> Any:
    """``prefix`` + zero-padded ``index + 1`` (e.g. ``A0000001``) as an Arrow string array."""
    digits = pc.utf8_lpad(pc.cast(pa.array(index + 1), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def iso_strings(ts: IntArray) -> Any:
    """UNIX seconds as ISO-8601 UTC strings like ``2024-04-01T12:00:00Z``."""
    text = pc.cast(pa.array(ts, pa.timestamp("s")), pa.string())
    return pc.binary_join_element_wise(pc.utf8_replace_slice(text, 10, 11, "T"), "Z", "")


def cents(amount: FloatArray) -> Any:
    """Amounts with exactly two decimals (``12.50``), as Arrow decimals."""
    return pa.array(amount).cast(pa.decimal128(16, 2), safe=False)


def categories(codes: npt.NDArray[np.int8], names: Sequence[str]) -> Any:
    """Small-integer codes written as their names."""
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(list(names)))


def write_csv(
    path: Path, names: Sequence[str], n_rows: int, columns: Callable[[slice], Sequence[Any]]
) -> None:
    """Write ``n_rows`` rows to ``path``; ``columns(rows)`` returns the Arrow arrays of a slice.

    The header is written by hand because Arrow quotes column names unless told otherwise,
    and that option does not exist in every supported pyarrow.
    """
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((",".join(names) + "\n").encode())
        writer = None
        for lo in range(0, n_rows, CHUNK_ROWS):
            batch = pa.record_batch(list(columns(slice(lo, min(lo + CHUNK_ROWS, n_rows)))), names)
            if writer is None:
                writer = pacsv.CSVWriter(sink, batch.schema, write_options=_OPTIONS)
            writer.write_batch(batch)
        if writer is not None:
            writer.close()
