"""Plain types for transfer-level outcomes: labels of single transfers, the time-ordered
transfer log the transfer model learns from, and the review queue's items. No I/O."""

from __future__ import annotations

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
