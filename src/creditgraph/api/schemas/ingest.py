"""Live ingest batches (``XBatchCreate``, items as the CSV contract's rows) and the answer."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    field_validator,
)

from creditgraph.api.schemas.common import ID

MAX_ITEMS = 10_000
#: Per account: at most this many features and as many properties, each text at most so long
#: (a CSV file has its header; a request could otherwise carry a million columns).
MAX_PROPERTIES = 100
MAX_VALUE_LENGTH = 1_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
ISO = Field(
    default=None,
    max_length=40,
    examples=["2026-11-24T12:00:00Z"],
    description="ISO-8601 date or date-time; no zone means UTC",
)


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransferCreate(_Item):
    transfer_id: str = Field(min_length=1, max_length=128, examples=["t_981"])
    src: str = ID
    dst: str = ID
    # NaN / Infinity (which Python's JSON reader accepts) are a 422 naming the field.
    amount: FiniteFloat = Field(examples=[120.0], description="finite, non-negative")
    timestamp: str = Field(
        max_length=40, examples=["2026-11-24T12:00:00Z"], description="ISO-8601; no zone means UTC"
    )
    currency: str | None = Field(default=None, max_length=8, examples=["EUR"])
    channel: str | None = Field(default=None, max_length=32, examples=["app"])
    attributes: dict[str, Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH)]] = Field(
        default_factory=dict,
        max_length=MAX_PROPERTIES,
        examples=[{"device": "d_17", "merchant_category": "electronics"}],
        description="extra columns of transfers.csv (kept as properties; text ones are "
        "categorical inputs of the transfer model)",
    )

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, v: dict[str, str]) -> dict[str, str]:
        return check_attribute_names(v)


def check_attribute_names(v: dict[str, str]) -> dict[str, str]:
    """Attribute names are column names that are not a transfer's own fields."""
    for k in v:
        if not _NAME.match(k) or k in TRANSFER_OWN_FIELDS:
            raise ValueError(f"{k!r} is not a valid attribute name (letters, digits, _)")
    return v


TRANSFER_OWN_FIELDS = frozenset(
    {"transfer_id", "src", "dst", "amount", "timestamp", "currency", "channel"}
)


class TransferLabelCreate(_Item):
    transfer_id: str = Field(min_length=1, max_length=128, examples=["t_981"])
    label: str = Field(examples=["fraud"], description="fraud | legit")
    source: str | None = Field(default=None, max_length=64, examples=["chargeback"])
    observed_at: str | None = ISO


class LinkCreate(_Item):
    src: str = ID
    dst: str = ID
    type: str = Field(
        max_length=63, examples=["FRIEND"], description="FRIEND or another UPPER_SNAKE relation"
    )
    since: str | None = ISO


class AccountCreate(_Item):
    account_id: str = ID
    created_at: str | None = ISO
    features: dict[str, FiniteFloat] = Field(
        default_factory=dict, max_length=MAX_PROPERTIES, examples=[{"age_years": 31}]
    )
    properties: dict[str, Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH)]] = Field(
        default_factory=dict, max_length=MAX_PROPERTIES, examples=[{"country": "DE"}]
    )

    @field_validator("features", "properties")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for k in v:
            if not _NAME.match(k) or k in ("account_id", "created_at"):
                raise ValueError(f"{k!r} is not a valid column name (letters, digits, _)")
        return v


class LabelCreate(_Item):
    account_id: str = ID
    label: str = Field(examples=["fraud"], description="fraud | legit")
    source: str | None = Field(default=None, max_length=64, examples=["investigation"])
    observed_at: str | None = ISO


def _examples(item: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": [item]}]})


class TransferBatchCreate(BaseModel):
    model_config = _examples(
        {
            "transfer_id": "t_981",
            "src": "acc_000001",
            "dst": "acc_000042",
            "amount": 120.0,
            "timestamp": "2026-11-24T12:00:00Z",
            "currency": "EUR",
        }
    )
    items: list[TransferCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class LinkBatchCreate(BaseModel):
    model_config = _examples({"src": "acc_000001", "dst": "acc_000042", "type": "FRIEND"})
    items: list[LinkCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class AccountBatchCreate(BaseModel):
    model_config = _examples(
        {"account_id": "acc_900001", "created_at": "2026-11-24", "features": {"age_years": 31}}
    )
    items: list[AccountCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class LabelBatchCreate(BaseModel):
    model_config = _examples(
        {"account_id": "acc_000042", "label": "fraud", "source": "investigation"}
    )
    items: list[LabelCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class TransferLabelBatchCreate(BaseModel):
    model_config = _examples({"transfer_id": "t_981", "label": "fraud", "source": "chargeback"})
    items: list[TransferLabelCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class IngestPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "transfers",
                    "received": 1,
                    "changed": 1,
                    "created_accounts": 0,
                    "rescored": 0,
                    "model_version": "v0001",
                    "queued": 2,
                }
            ]
        }
    )

    kind: str
    received: int
    changed: int = Field(
        description="rows inserted or changed (0 when the batch was already stored)"
    )
    created_accounts: int
    rescored: int = Field(
        description="accounts rescored from their neighbourhood before this answer "
        "(the server's rescore_mode=sync)"
    )
    model_version: str | None
    queued: int = Field(
        default=0,
        description="accounts queued for the background rescorer (rescore_mode=background, "
        "the default): their new ties count in risk checks at once (relations, shared "
        "identity), their scores follow once rescored; until then a score look-up answers "
        "the previous score with pending: true",
    )
