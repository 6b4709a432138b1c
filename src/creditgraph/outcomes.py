"""Plain types for transfer-level outcomes: labels of single transfers, the time-ordered
transfer log the transfer model learns from, and the review queue's items. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from creditgraph.domain import LabelValue

ReviewStatus = Literal["open", "approved", "rejected"]
REVIEW_STATUSES: tuple[ReviewStatus, ...] = ("open", "approved", "rejected")
#: What a reviewer's verdict means as a transfer label.
VERDICT_LABEL: dict[ReviewStatus, LabelValue] = {"approved": "legit", "rejected": "fraud"}


@dataclass(frozen=True, slots=True)
class TransferLabelColumns:
    """A batch of transfer outcomes (chargebacks, victims' reports, confirmed reviews)."""

    transfer_id: list[str]
    label: list[LabelValue]
    source: list[str | None]
    observed_at: list[float | None]

    def __len__(self) -> int:
        return len(self.transfer_id)

    def slice(self, start: int, stop: int) -> TransferLabelColumns:
        return TransferLabelColumns(
            self.transfer_id[start:stop],
            self.label[start:stop],
            self.source[start:stop],
            self.observed_at[start:stop],
        )


@dataclass(frozen=True)
class TransferLog:
    """Every stored transfer in time order (ties by id), with its extra properties."""

    transfer_id: list[str]
    src: list[str]
    dst: list[str]
    amount: np.ndarray[Any, np.dtype[np.float64]]
    ts: np.ndarray[Any, np.dtype[np.float64]]
    channel: list[str | None]
    properties: list[dict[str, str]]

    def __len__(self) -> int:
        return len(self.transfer_id)


@dataclass(frozen=True)
class TransferArrays:
    """Every stored transfer as columns, in log order ((timestamp, transfer id), as
    ``TransferLog``), accounts as codes: ``account_ids[src[k]]`` sent ``amount[k]`` at
    ``ts[k]``. What the serving state is built from: no ids, channels or properties, so ten
    million transfers are four arrays rather than seventy million Python objects."""

    account_ids: list[str]
    src: np.ndarray[Any, np.dtype[np.int64]]
    dst: np.ndarray[Any, np.dtype[np.int64]]
    amount: np.ndarray[Any, np.dtype[np.float64]]
    ts: np.ndarray[Any, np.dtype[np.float64]]

    def __len__(self) -> int:
        return int(self.src.shape[0])


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A transfer answered ``review``, waiting for (or closed by) an investigator."""

    review_id: str
    transfer_id: str
    src: str
    dst: str
    amount: float
    timestamp: float
    created_at: float
    risk: float
    model_version: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    status: ReviewStatus = "open"
    reviewer: str | None = None
    note: str | None = None
    resolved_at: float | None = None
    channel: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


class AccountCoder:
    """Codes of account ids: their position in a list, ids it lacks appended as they come."""

    def __init__(self, account_ids: Sequence[str]) -> None:
        self.ids = list(account_ids)
        self.index = {a: i for i, a in enumerate(self.ids)}

    def codes(self, ids: Sequence[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
        index = self.index
        try:  # the common case, every id known: one C-level map
            return np.fromiter(map(index.__getitem__, ids), np.int64, len(ids))
        except KeyError:
            pass
        out = np.empty(len(ids), np.int64)
        for k, a in enumerate(ids):
            c = index.get(a)
            if c is None:
                c = index[a] = len(self.ids)
                self.ids.append(a)
            out[k] = c
        return out


def transfer_arrays_of(
    src: Sequence[str],
    dst: Sequence[str],
    amount: np.ndarray[Any, np.dtype[np.float64]],
    ts: np.ndarray[Any, np.dtype[np.float64]],
    account_ids: Sequence[str],
) -> TransferArrays:
    """``TransferArrays`` of columns already in log order."""
    coder = AccountCoder(account_ids)
    s, d = coder.codes(src), coder.codes(dst)
    return TransferArrays(
        coder.ids, s, d, np.asarray(amount, np.float64), np.asarray(ts, np.float64)
    )
