"""Turn a parsed ``Table`` into store batches, checking every rule of the data contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditgraph.domain import (
    CLOSED_STATUSES,
    CONSENT_PROPERTY,
    CONSENT_VALUES,
    LABEL_VALUES,
    OBLIGATION_STATUSES,
    AccountColumns,
    LabelColumns,
    LabelValue,
    LinkColumns,
    ObligationColumns,
    ObligationStatus,
    TransferColumns,
)
from creditgraph.ingest.csvfile import (
    OPTIONAL,
    REQUIRED,
    ErrorCollector,
    Table,
    _np_bool,
    check_ids,
    check_in,
    check_link_types,
    check_unique,
    is_numeric_column,
    optional_floats,
    optional_strings,
    parse_numbers,
    parse_times,
)
from creditgraph.outcomes import TransferLabelColumns

Batch = (
    AccountColumns
    | TransferColumns
    | LinkColumns
    | LabelColumns
    | TransferLabelColumns
    | ObligationColumns
)


@dataclass
class Parsed:
    """A file that passed every check that needs no store: the batch to write, and the
    account references (column name → ids) the store must still confirm, and the transfer
    references (transfer labels) likewise."""

    batch: Batch
    references: dict[str, pa.Array] = field(default_factory=dict)
    transfer_references: dict[str, pa.Array] = field(default_factory=dict)
    feature_columns: list[str] = field(default_factory=list)
    property_columns: list[str] = field(default_factory=list)


def parse(table: Table) -> Parsed:
    """Validate ``table`` by kind; raises ``ValidationFailed`` listing every bad row."""
    errs = ErrorCollector(table)
    parsed = _PARSERS[table.kind](table, errs)
    errs.raise_if_any()
    return parsed


def _accounts(t: Table, errs: ErrorCollector) -> Parsed:
    check_ids(errs, "account_id")
    check_unique(errs, t.columns["account_id"], "account_id")
    created = (
        parse_times(errs, "created_at", required=False)
        if "created_at" in t.columns
        else np.full(t.num_rows, np.nan)
    )
    if CONSENT_PROPERTY in t.columns:
        consent = t.columns[CONSENT_PROPERTY]
        errs.add_mask(
            pc.and_(
                pc.greater(pc.utf8_length(consent), 0),
                pc.invert(pc.is_in(consent, value_set=pa.array(list(CONSENT_VALUES)))),
            ),
            CONSENT_PROPERTY,
            f"must be one of {', '.join(CONSENT_VALUES)} (or empty for the default)",
        )
    known = set(REQUIRED["accounts"]) | set(OPTIONAL["accounts"])
    extra = [c for c in t.columns if c not in known]
    numeric = [c for c in extra if c != CONSENT_PROPERTY and is_numeric_column(t.columns[c])]
    props = [c for c in extra if c not in numeric]
    feats: list[list[float]] = [
        parse_numbers(errs, c, required=False, non_negative=False).tolist() for c in numeric
    ]
    prop_values = [t.columns[c].to_pylist() for c in props]
    features = (
        [
            {name: v for name, v in zip(numeric, row, strict=True) if v == v}  # drop NaN (missing)
            for row in zip(*feats, strict=True)
        ]
        if numeric
        else [{} for _ in range(t.num_rows)]
    )
    properties = (
        [
            {name: v for name, v in zip(props, row, strict=True) if v}
            for row in zip(*prop_values, strict=True)
        ]
        if props
        else [{} for _ in range(t.num_rows)]
    )
    batch = AccountColumns(
        account_id=t.columns["account_id"].to_pylist(),
        created_at=optional_floats(created),
        features=features,
        properties=properties,
    )
    return Parsed(batch, feature_columns=numeric, property_columns=props)


def _transfers(t: Table, errs: ErrorCollector) -> Parsed:
    for c in ("transfer_id", "src", "dst"):
        check_ids(errs, c)
    check_unique(errs, t.columns["transfer_id"], "transfer_id")
    amount = parse_numbers(errs, "amount", required=True, non_negative=True)
    ts = parse_times(errs, "timestamp", required=True)
    empty = pa.array([""] * t.num_rows, pa.string())
    known = set(REQUIRED["transfers"]) | set(OPTIONAL["transfers"])
    # Extra columns (location, device, merchant_category...) are kept as text properties;
    # the transfer model reads string ones as categories and numeric ones as numbers.
    props = [c for c in t.columns if c not in known]
    prop_values = [t.columns[c].to_pylist() for c in props]
    properties: list[dict[str, str]] | None = (
        [
            {name: v for name, v in zip(props, row, strict=True) if v}
            for row in zip(*prop_values, strict=True)
        ]
        if props
        else None
    )
    batch = TransferColumns(
        transfer_id=t.columns["transfer_id"].to_pylist(),
        src=t.columns["src"].to_pylist(),
        dst=t.columns["dst"].to_pylist(),
        amount=amount.tolist(),
        timestamp=ts.tolist(),
        currency=optional_strings(t.columns.get("currency", empty)),
        channel=optional_strings(t.columns.get("channel", empty)),
        properties=properties,
    )
    return Parsed(
        batch,
        references={"src": t.columns["src"], "dst": t.columns["dst"]},
        property_columns=props,
    )


def _links(t: Table, errs: ErrorCollector) -> Parsed:
    src, dst = t.columns["src"], t.columns["dst"]
    check_ids(errs, "src")
    check_ids(errs, "dst")
    check_link_types(errs)
    errs.add_mask(
        pc.and_(pc.equal(src, dst), pc.greater(pc.utf8_length(src), 0)),
        "dst",
        "a link from an account to itself",
    )
    # Undirected: (a, b) and (b, a) are the same link, so canonicalise before the duplicate check.
    first_is_smaller = pc.less_equal(src, dst)
    lo = pc.if_else(first_is_smaller, src, dst)
    hi = pc.if_else(first_is_smaller, dst, src)
    check_unique(
        errs,
        pc.binary_join_element_wise(lo, hi, t.columns["type"], pa.scalar("\x1f")),
        "src,dst,type",
    )
    since = (
        parse_times(errs, "since", required=False)
        if "since" in t.columns
        else np.full(t.num_rows, np.nan)
    )
    batch = LinkColumns(
        src=lo.to_pylist(),
        dst=hi.to_pylist(),
        type=t.columns["type"].to_pylist(),
        since=optional_floats(since),
    )
    return Parsed(batch, references={"src": src, "dst": dst})


def _labels(t: Table, errs: ErrorCollector) -> Parsed:
    check_ids(errs, "account_id")
    check_unique(errs, t.columns["account_id"], "account_id")
    check_in(errs, "label", LABEL_VALUES)
    observed = (
        parse_times(errs, "observed_at", required=False)
        if "observed_at" in t.columns
        else np.full(t.num_rows, np.nan)
    )
    empty = pa.array([""] * t.num_rows, pa.string())
    batch = LabelColumns(
        account_id=t.columns["account_id"].to_pylist(),
        label=cast(list[LabelValue], t.columns["label"].to_pylist()),
        source=optional_strings(t.columns.get("source", empty)),
        observed_at=optional_floats(observed),
    )
    return Parsed(batch, references={"account_id": t.columns["account_id"]})


def _transfer_labels(t: Table, errs: ErrorCollector) -> Parsed:
    check_ids(errs, "transfer_id")
    check_unique(errs, t.columns["transfer_id"], "transfer_id")
    check_in(errs, "label", LABEL_VALUES)
    observed = (
        parse_times(errs, "observed_at", required=False)
        if "observed_at" in t.columns
        else np.full(t.num_rows, np.nan)
    )
    empty = pa.array([""] * t.num_rows, pa.string())
    batch = TransferLabelColumns(
        transfer_id=t.columns["transfer_id"].to_pylist(),
        label=cast(list[LabelValue], t.columns["label"].to_pylist()),
        source=optional_strings(t.columns.get("source", empty)),
        observed_at=optional_floats(observed),
    )
    return Parsed(batch, transfer_references={"transfer_id": t.columns["transfer_id"]})


def _obligations(t: Table, errs: ErrorCollector) -> Parsed:
    check_ids(errs, "obligation_id")
    check_ids(errs, "account_id")
    check_ids(errs, "kind")
    check_unique(errs, t.columns["obligation_id"], "obligation_id")
    check_in(errs, "status", OBLIGATION_STATUSES)
    amount = parse_numbers(errs, "amount", required=True, non_negative=True)
    opened = parse_times(errs, "opened_at", required=True)
    due = parse_times(errs, "due_at", required=True)
    closed = (
        parse_times(errs, "closed_at", required=False)
        if "closed_at" in t.columns
        else np.full(t.num_rows, np.nan)
    )
    status = t.columns["status"]
    needs_close = _np_bool(pc.is_in(status, value_set=pa.array(sorted(CLOSED_STATUSES))))
    has_close = ~np.isnan(closed)
    closed_text = t.columns.get("closed_at", pa.array([""] * t.num_rows, pa.string()))
    given = _np_bool(pc.greater(pc.utf8_length(closed_text), 0))
    errs.add_mask(needs_close & ~given, "closed_at", "required when status is repaid or late")
    known_status = _np_bool(pc.is_in(status, value_set=pa.array(list(OBLIGATION_STATUSES))))
    errs.add_mask(
        known_status & ~needs_close & given,
        "closed_at",
        "must be empty while an obligation is open or defaulted",
    )
    with np.errstate(invalid="ignore"):
        errs.add_mask(due < opened, "due_at", "before opened_at")
        errs.add_mask(has_close & (closed < opened), "closed_at", "before opened_at")
    batch = ObligationColumns(
        obligation_id=t.columns["obligation_id"].to_pylist(),
        account_id=t.columns["account_id"].to_pylist(),
        kind=t.columns["kind"].to_pylist(),
        amount=amount.tolist(),
        opened_at=opened.tolist(),
        due_at=due.tolist(),
        status=cast(list[ObligationStatus], status.to_pylist()),
        closed_at=optional_floats(closed),
    )
    return Parsed(batch, references={"account_id": t.columns["account_id"]})


_PARSERS = {
    "accounts": _accounts,
    "transfers": _transfers,
    "links": _links,
    "labels": _labels,
    "transfer_labels": _transfer_labels,
    "obligations": _obligations,
}


#: How to allow references to missing accounts, as the CLI says it.
CLI_MISSING_HINT = "import accounts first, or pass --create-missing-accounts"


def dangling_rows(
    table: Table,
    parsed: Parsed,
    missing: list[str],
    errs: ErrorCollector,
    hint: str = CLI_MISSING_HINT,
) -> None:
    """Report every row that references an account the store does not hold; ``hint`` says
    how to allow it in the caller's terms."""
    missing_set = pa.array(missing, pa.string())
    for column, col in parsed.references.items():
        mask = _np_bool(pc.is_in(col, value_set=missing_set))
        errs.add_rows(np.flatnonzero(mask), column, _dangling_reason(col, hint))


def unknown_transfer_rows(parsed: Parsed, missing: list[str], errs: ErrorCollector) -> None:
    """Report every row that labels a transfer the store does not hold."""
    missing_set = pa.array(missing, pa.string())
    for column, col in parsed.transfer_references.items():
        mask = _np_bool(pc.is_in(col, value_set=missing_set))
        errs.add_rows(np.flatnonzero(mask), column, _unknown_transfer_reason(col))


def _unknown_transfer_reason(col: pa.Array) -> Callable[[int], str]:
    def reason(row: int) -> str:
        return f"transfer {col[row].as_py()!r} does not exist (import it first)"

    return reason


def _dangling_reason(col: pa.Array, hint: str) -> Callable[[int], str]:
    def reason(row: int) -> str:
        return f"account {col[row].as_py()!r} does not exist ({hint})"

    return reason
