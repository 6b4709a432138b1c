"""Plain data types shared by every layer. No I/O here.

Bulk data moves as *columns* (``TransferColumns`` and friends) rather than one object per row:
imports of ten million transfers spend their time in the store, not in building objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

import numpy as np
import numpy.typing as npt

T = TypeVar("T")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FRIEND = "FRIEND"
#: Relation name of money transfers in snapshots (directed, aggregated per ordered pair).
TRANSFER = "TRANSFER"
#: Link types are UPPER_SNAKE; these names are taken by the store itself.
RESERVED_LINK_TYPES = frozenset({TRANSFER, "TRANSFERRED", "HAS_MEMBER", "LINK"})
LINK_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")
#: Names of extra account columns (features / properties) must be plain identifiers.
COLUMN_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

LabelValue = Literal["fraud", "legit"]
LABEL_VALUES: tuple[LabelValue, ...] = ("fraud", "legit")
RingKind = Literal["cycle", "mule_fan_in", "mule_fan_out", "shared_identity", "collusion"]
RingStatus = Literal["new", "investigating", "confirmed", "dismissed"]
RING_STATUSES: tuple[RingStatus, ...] = ("new", "investigating", "confirmed", "dismissed")


class ReasonCode(StrEnum):
    """Every reason code an API client can receive; stable, details go in ``evidence``.

    ``api.schemas`` publishes this enum in OpenAPI, so a new code is a documented change.
    """

    # -- a model's attribution of a score (``ml.explain``, ``ml.attribution``, ``ml.scorer``)
    FEATURE_RAISES_RISK = "FEATURE_RAISES_RISK"
    FEATURE_LOWERS_RISK = "FEATURE_LOWERS_RISK"
    RELATION_RAISES_RISK = "RELATION_RAISES_RISK"
    RELATION_LOWERS_RISK = "RELATION_LOWERS_RISK"
    NEIGHBOUR_RAISES_RISK = "NEIGHBOUR_RAISES_RISK"
    NEIGHBOUR_LOWERS_RISK = "NEIGHBOUR_LOWERS_RISK"
    NO_RELATIONSHIPS = "NO_RELATIONSHIPS"
    # -- how a request-time score was obtained (``ml.scorer``)
    #: The account's own features were computed from the store's current edges.
    FEATURES_FROM_STORE = "FEATURES_FROM_STORE"
    #: A fan-out cap bound: neighbour means come from a deterministic uniform sample.
    NEIGHBOURHOOD_SAMPLED = "NEIGHBOURHOOD_SAMPLED"
    #: Some neighbours are not in the snapshot: they count in degrees but send no message.
    NEIGHBOURS_NOT_IN_SNAPSHOT = "NEIGHBOURS_NOT_IN_SNAPSHOT"
    #: The store does not know the account: scored from priors (every feature missing).
    ACCOUNT_NOT_IN_STORE = "ACCOUNT_NOT_IN_STORE"
    # -- a transfer decision (``services.risk.policy``)
    RECEIVER_RISK = "RECEIVER_RISK"
    SENDER_RISK = "SENDER_RISK"
    RECEIVER_IN_RING = "RECEIVER_IN_RING"
    AMOUNT_UNUSUAL = "AMOUNT_UNUSUAL"
    AMOUNT_USUAL = "AMOUNT_USUAL"
    SENDER_NO_HISTORY = "SENDER_NO_HISTORY"
    ACCOUNTS_RELATED = "ACCOUNTS_RELATED"
    ACCOUNTS_UNRELATED = "ACCOUNTS_UNRELATED"
    SHARED_IDENTITY = "SHARED_IDENTITY"
    SAME_ACCOUNT = "SAME_ACCOUNT"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    UNKNOWN_ACCOUNT_POLICY = "UNKNOWN_ACCOUNT_POLICY"
    # -- the learned transfer decision (``services.transfers``, ``services.risk.limits``)
    #: The transfer model's calibrated P(fraud) and expected loss against the thresholds.
    TRANSFER_MODEL = "TRANSFER_MODEL"
    #: A named group of TreeSHAP contributions (amount, velocity, relationship...).
    FACTOR_RAISES_RISK = "FACTOR_RAISES_RISK"
    FACTOR_LOWERS_RISK = "FACTOR_LOWERS_RISK"
    #: A hard limit no score overrides: the amount ceiling, the new-sender ceiling.
    HARD_LIMIT = "HARD_LIMIT"
    #: The amount is not a plausible payment (non-finite or beyond any ceiling).
    AMOUNT_ABSURD = "AMOUNT_ABSURD"


class Reason(TypedDict):
    """Why: a stable code, a sentence, the figures behind it, and (for a model's
    attribution) the signed contribution to the logit. A plain dict at run time, so it goes
    to JSON, the store and the API as it is."""

    code: ReasonCode
    message: str
    evidence: dict[str, Any]
    weight: NotRequired[float]


def reason(
    code: ReasonCode, message: str, evidence: dict[str, Any], weight: float | None = None
) -> Reason:
    """A ``Reason``; ``weight`` only where a model gave one (0.0 for informational notes)."""
    out = Reason(code=code, message=message, evidence=evidence)
    if weight is not None:
        out["weight"] = weight
    return out


def canonical_pair(a: str, b: str) -> tuple[str, str]:
    """Undirected links are stored once, smaller id first."""
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True, slots=True)
class AccountColumns:
    """A batch of accounts; ``features`` / ``properties`` hold one dict per account."""

    account_id: list[str]
    created_at: list[float | None]
    features: list[dict[str, float]]
    properties: list[dict[str, str]]

    def __len__(self) -> int:
        return len(self.account_id)

    def slice(self, start: int, stop: int) -> AccountColumns:
        return AccountColumns(
            self.account_id[start:stop],
            self.created_at[start:stop],
            self.features[start:stop],
            self.properties[start:stop],
        )


@dataclass(frozen=True, slots=True)
class TransferColumns:
    """A batch of transfers; timestamps are UNIX seconds (UTC)."""

    transfer_id: list[str]
    src: list[str]
    dst: list[str]
    amount: list[float]
    timestamp: list[float]
    currency: list[str | None]
    channel: list[str | None]
    #: Extra columns per transfer (text), None when the batch had none.
    properties: list[dict[str, str]] | None = None

    def __len__(self) -> int:
        return len(self.transfer_id)

    def rows(self) -> Iterator[tuple[str, str, str, float, float, str | None, str | None]]:
        """One tuple per transfer, in column order."""
        return zip(
            self.transfer_id,
            self.src,
            self.dst,
            self.amount,
            self.timestamp,
            self.currency,
            self.channel,
            strict=True,
        )

    def slice(self, start: int, stop: int) -> TransferColumns:
        return TransferColumns(
            self.transfer_id[start:stop],
            self.src[start:stop],
            self.dst[start:stop],
            self.amount[start:stop],
            self.timestamp[start:stop],
            self.currency[start:stop],
            self.channel[start:stop],
            None if self.properties is None else self.properties[start:stop],
        )


@dataclass(frozen=True, slots=True)
class LinkColumns:
    """A batch of undirected links, already in canonical order (``src <= dst``)."""

    src: list[str]
    dst: list[str]
    type: list[str]
    since: list[float | None]

    def __len__(self) -> int:
        return len(self.src)

    def slice(self, start: int, stop: int) -> LinkColumns:
        return LinkColumns(
            self.src[start:stop],
            self.dst[start:stop],
            self.type[start:stop],
            self.since[start:stop],
        )


@dataclass(frozen=True, slots=True)
class LabelColumns:
    """A batch of confirmed outcomes."""

    account_id: list[str]
    label: list[LabelValue]
    source: list[str | None]
    observed_at: list[float | None]

    def __len__(self) -> int:
        return len(self.account_id)

    def slice(self, start: int, stop: int) -> LabelColumns:
        return LabelColumns(
            self.account_id[start:stop],
            self.label[start:stop],
            self.source[start:stop],
            self.observed_at[start:stop],
        )


@dataclass(frozen=True, slots=True)
class Account:
    """One account as the store returns it, with its latest label and score if any."""

    account_id: str
    created_at: float | None
    features: dict[str, float]
    properties: dict[str, str]
    label: LabelValue | None = None
    score: Score | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """Per-account model output written back by batch scoring."""

    account_id: str
    fraud_probability: float
    social_credit: float
    model_version: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    scored_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Ring:
    """A group of accounts acting together, with the evidence that justifies it."""

    ring_id: str
    kind: RingKind
    score: float
    members: list[str]
    evidence: dict[str, Any]
    status: RingStatus = "new"
    note: str = ""
    detected_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Transfer:
    """One stored money transfer; ``timestamp`` is UNIX seconds (UTC)."""

    transfer_id: str
    src: str
    dst: str
    amount: float
    timestamp: float
    currency: str | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a longer list: ``total`` counts every match, not just ``items``."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Counts:
    """Sizes of the stored graph."""

    accounts: int
    transfers: int
    links: int
    labels: int
    scores: int
    rings: int
    links_by_type: dict[str, int]


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """One edge of a neighbourhood or path: transfers between a pair are aggregated."""

    src: str
    dst: str
    relation: str
    directed: bool
    count: int = 1
    total_amount: float = 0.0


@dataclass(frozen=True, slots=True)
class Ties:
    """One account as the store expands it, without reading more than it returns.

    ``degree``: relationships per relation within the filter (a transfer counts once at each
    end, so a transfer to oneself counts twice; zero omitted). ``ties``: the strongest ties,
    ``(other account, relationships joining the pair)``, heaviest first then by id, oneself
    left out; ``None`` when the store did not read them (a hub over the threshold).
    """

    degree: dict[str, int]
    ties: list[tuple[str, int]] | None

    @property
    def total(self) -> int:
        return sum(self.degree.values())


@dataclass(frozen=True, slots=True)
class Subgraph:
    """A capped, hub-aware neighbourhood.

    ``capped`` names the accounts whose neighbours are not all drawn, with their total number
    of relationships (within the relation filter): the view shows only their strongest
    ``limit`` ties, or none of a hub it did not walk through. ``hubs`` are the accounts over
    the hub threshold; ``summarised`` those among them a further hop did not walk through.
    ``degrees`` gives each capped account and each hub its relationships per relation.
    ``truncated`` is true when something was left out.
    """

    center: str
    nodes: list[str]
    edges: list[GraphEdge]
    truncated: bool
    capped: dict[str, int] = field(default_factory=dict)
    hubs: list[str] = field(default_factory=list)
    summarised: list[str] = field(default_factory=list)
    degrees: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Path:
    """A shortest path as its account sequence and, per hop, the relations joining the pair."""

    accounts: list[str]
    hops: list[list[GraphEdge]]


@dataclass(frozen=True, slots=True)
class PathSearch:
    """The shortest paths found, and why the search may have missed some.

    ``cut_short`` lists what stopped it early, each a reason an investigator can act on:
    ``deadline`` (out of time), ``frontier`` (too many accounts reached), ``hubs`` (hubs in
    ``hubs_skipped`` were not walked through), ``fanout`` (some account had more ties than
    the search follows per account), ``paths`` (more shortest paths than were enumerated).
    Empty ``cut_short``: ``paths`` are all the shortest paths (up to the limit asked).
    """

    paths: list[Path]
    cut_short: list[str] = field(default_factory=list)
    hubs_skipped: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.cut_short


@dataclass(frozen=True)
class EdgeSet:
    """Edges of one relation as index arrays into ``Snapshot.account_ids``.

    Links are undirected and appear once per pair (``src`` < ``dst`` by id). Transfers are
    directed and aggregated per ordered pair, with ``count``, ``total_amount``, ``first_ts``
    and ``last_ts``; those arrays are ``None`` for links.
    """

    relation: str
    directed: bool
    src: IntArray
    dst: IntArray
    count: IntArray | None = None
    total_amount: FloatArray | None = None
    first_ts: FloatArray | None = None
    last_ts: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.src.shape[0])


@dataclass(frozen=True)
class Snapshot:
    """A consistent export of the graph for ML: the hand-off between ``store`` and ``ml``.

    Accounts are sorted by id; ``features`` is ``[n_accounts, n_features]`` with NaN for a
    missing value; ``labels`` is -1 (unknown), 0 (legit) or 1 (fraud).
    """

    account_ids: list[str]
    feature_names: list[str]
    features: FloatArray
    created_at: FloatArray
    labels: npt.NDArray[np.int8]
    edges: dict[str, EdgeSet]
    #: The store's ``graph_revision`` read in the export's own transaction (None: unknown).
    revision: str | None = None

    @property
    def num_accounts(self) -> int:
        return len(self.account_ids)


def index_of(account_ids: Sequence[str]) -> dict[str, int]:
    """Position of each id, for turning id columns into index arrays."""
    return {a: i for i, a in enumerate(account_ids)}


# -- credit: obligations and consent ----------------------------------------------------------

ObligationStatus = Literal["open", "repaid", "late", "defaulted"]
OBLIGATION_STATUSES: tuple[ObligationStatus, ...] = ("open", "repaid", "late", "defaulted")
#: Statuses that carry ``closed_at`` (paid, on time or late); ``open`` and ``defaulted`` do not.
CLOSED_STATUSES: frozenset[str] = frozenset({"repaid", "late"})
#: The account property holding consent to use relationships in credit outputs.
CONSENT_PROPERTY = "social_scoring"
ConsentValue = Literal["granted", "withdrawn"]
CONSENT_VALUES: tuple[ConsentValue, ...] = ("granted", "withdrawn")


def status_time(status: str, opened_at: float, due_at: float, closed_at: float | None) -> float:
    """When a status took effect in the world: opening, payment, or (a default) the due date.

    Recorded beside each status change, so credit features read only what was known then."""
    if status == "open":
        return opened_at
    if status in CLOSED_STATUSES and closed_at is not None:
        return closed_at
    return due_at


@dataclass(frozen=True, slots=True)
class ObligationColumns:
    """A batch of obligations (loans, pay-later plans, rents); times are UNIX seconds."""

    obligation_id: list[str]
    account_id: list[str]
    kind: list[str]
    amount: list[float]
    opened_at: list[float]
    due_at: list[float]
    status: list[ObligationStatus]
    closed_at: list[float | None]

    def __len__(self) -> int:
        return len(self.obligation_id)

    def slice(self, start: int, stop: int) -> ObligationColumns:
        return ObligationColumns(
            self.obligation_id[start:stop],
            self.account_id[start:stop],
            self.kind[start:stop],
            self.amount[start:stop],
            self.opened_at[start:stop],
            self.due_at[start:stop],
            self.status[start:stop],
            self.closed_at[start:stop],
        )

    def take(self, rows: Sequence[int]) -> ObligationColumns:
        return ObligationColumns(
            [self.obligation_id[i] for i in rows],
            [self.account_id[i] for i in rows],
            [self.kind[i] for i in rows],
            [self.amount[i] for i in rows],
            [self.opened_at[i] for i in rows],
            [self.due_at[i] for i in rows],
            [self.status[i] for i in rows],
            [self.closed_at[i] for i in rows],
        )


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One status an obligation took: when it took effect (``at``) and when the store
    learned it (``recorded_at``)."""

    status: ObligationStatus
    at: float
    recorded_at: float


@dataclass(frozen=True, slots=True)
class Obligation:
    """One stored obligation with every status it has had, oldest first."""

    obligation_id: str
    account_id: str
    kind: str
    amount: float
    opened_at: float
    due_at: float
    status: ObligationStatus
    closed_at: float | None
    history: tuple[StatusChange, ...] = ()


@dataclass(frozen=True, slots=True)
class TransferEvents:
    """Single transfers (not aggregated per pair), as credit behaviour features read them."""

    src: list[str]
    dst: list[str]
    amount: list[float]
    ts: list[float]

    def __len__(self) -> int:
        return len(self.src)
