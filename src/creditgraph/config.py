"""Settings from the environment (prefix ``CREDITGRAPH_``); build one per entry point."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from creditgraph.errors import ConfigError
from creditgraph.resources import schema_dir

#: Refused outside ``env=development`` when the Neo4j store is used.
DEFAULT_NEO4J_PASSWORD = "creditgraph-dev"


def default_cache_dir() -> Path:
    """Where fetched third-party artefacts (the Neo4j jars) live: outside any clone."""
    return Path.home() / ".cache" / "creditgraph"


class RiskSettings(BaseModel):
    """Thresholds and weights of the transfer decision; read by ``services.risk.policy``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    review_threshold: float = Field(default=0.5, ge=0, le=1)
    block_threshold: float = Field(default=0.85, ge=0, le=1)
    #: Weight of the sender's fraud probability beside the receiver's (the receiver gets 1).
    sender_weight: float = Field(default=0.6, ge=0, le=1)
    #: Weight of the receiver's strongest ring score when it belongs to a detected ring.
    ring_weight: float = Field(default=0.5, ge=0, le=1)
    #: An amount above this multiple of the sender's mean earlier transfer is unusual.
    amount_multiple: float = Field(default=5.0, gt=1)
    amount_weight: float = Field(default=0.2, ge=0, le=1)
    #: Share of the risk taken off when the two accounts are already related (friends,
    #: earlier transfers, a common neighbour).
    related_discount: float = Field(default=0.15, ge=0, le=1)
    #: Weight of identity links between the two (SHARES_DEVICE, SHARES_ADDRESS, ...).
    identity_weight: float = Field(default=0.1, ge=0, le=1)
    #: Decision for an account the in-memory table lacks while the store is unreachable.
    unknown_policy: Literal["allow", "review", "block"] = "review"
    #: An account scored inductively on a request is reused for this long (0: never), so a
    #: new receiver asked about again and again costs one scoring; HTTP ingest touching it
    #: drops it at once. Ties written to the store behind the API's back count after this.
    inductive_cache_s: float = Field(default=30.0, ge=0)
    inductive_cache_size: int = Field(default=20_000, ge=1)  # ~1.5 KB of JSON each
    # -- hard limits (``services.risk.limits``): no score overrides them
    #: Largest amount any single transfer may move.
    max_amount: float = Field(default=50_000.0, gt=0)
    #: Largest amount a sender without earlier transfers may move (stricter than the above).
    new_sender_max_amount: float = Field(default=2_000.0, gt=0)
    #: Beyond this the amount is no payment at all (1e308...): blocked as absurd.
    absurd_amount: float = Field(default=1e12, gt=0)
    # -- the learned decision (``services.transfers.decide``): P(fraud) and expected loss
    transfer_review_p: float = Field(default=0.3, ge=0, le=1)
    transfer_block_p: float = Field(default=0.8, ge=0, le=1)
    #: Expected loss (P(fraud) x amount) above which a transfer is reviewed / blocked.
    review_loss: float = Field(default=200.0, ge=0)
    block_loss: float = Field(default=2_000.0, ge=0)
    #: Queue ``review`` answers for investigators (store-backed review queue).
    review_queue: bool = True
    #: How review/block answers' factors are attributed: ``path`` (Saabas path
    #: contributions from the leaves reached, ~0.05 ms; the top factor agrees with TreeSHAP
    #: on ~98 % of answers, the three-factor set on ~60 %) or ``treeshap`` (exact Shapley
    #: values, ~0.8 ms a row). Each factor line names its attribution.
    transfer_reasons: Literal["path", "treeshap"] = "path"
    #: Serve the trained transfer model's decisions where one is trained; false: the
    #: hand-weighted policy decides (a switch for the on-call, and to measure both).
    transfer_model: bool = True


SocialPolicy = Literal["inclusion_only", "symmetric", "informational", "off"]


class CreditSettings(BaseModel):
    """How credit profiles use relationships; read by ``services.credit`` (docs/credit.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Consent of an account that carries no ``social_scoring`` value.
    consent_default: Literal["granted", "withdrawn"] = "granted"
    #: ``inclusion_only``: relationships may raise a composite, never lower it below what the
    #: other four dimensions give; ``symmetric``: both ways; ``informational``: shown, not
    #: counted; ``off``: not computed.
    social_policy: SocialPolicy = "inclusion_only"
    #: Most points the social dimension may move a composite, as a share of the 350-950
    #: range (at most 10 %).
    social_cap: float = Field(default=0.10, ge=0, le=0.10)


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as ``CREDITGRAPH_<FIELD>``, the risk
    section's as ``CREDITGRAPH_RISK_<FIELD>``. Build one per entry point with ``load_settings``
    (a bad value is then a ``ConfigError``)."""

    model_config = SettingsConfigDict(
        env_prefix="CREDITGRAPH_",
        extra="ignore",
        # CREDITGRAPH_RISK_REVIEW_THRESHOLD -> risk.review_threshold (one level only).
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    env: Literal["development", "test", "production"] = "development"
    store: Literal["embedded", "neo4j"] = "embedded"
    data_dir: Path = Path("data")

    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr(DEFAULT_NEO4J_PASSWORD)
    neo4j_database: str = "neo4j"
    neo4j_home: Path = Field(default_factory=lambda: default_cache_dir() / "neo4j-home")
    neo4j_version: str = "5.26.30"
    neo4j_heap: str = "2g"
    neo4j_pagecache: str = "4g"
    neo4j_bolt_port: int = 7687
    neo4j_http_port: int = 7474
    neo4j_start_timeout_s: float = Field(default=120.0, gt=0)

    schema_dir: Path = Field(
        default_factory=schema_dir,
        description="Numbered Cypher files applied to Neo4j when a store is opened "
        "(default: the package's copy of graph_schema/)",
    )
    import_batch_size: int = Field(default=20_000, ge=1, le=1_000_000)

    #: The transfer decision's thresholds and weights (``services/risk/policy.py``), set as
    #: ``CREDITGRAPH_RISK_<FIELD>`` (e.g. ``CREDITGRAPH_RISK_REVIEW_THRESHOLD``).
    risk: RiskSettings = Field(default_factory=lambda: RiskSettings())
    #: Credit profiles: consent default and the social guard, as ``CREDITGRAPH_CREDIT_<FIELD>``
    #: (e.g. ``CREDITGRAPH_CREDIT_SOCIAL_POLICY=informational``).
    credit: CreditSettings = Field(default_factory=lambda: CreditSettings())
    #: Idempotency-Key answers kept in memory (per process), for this long and at most this many.
    idempotency_ttl_s: float = Field(default=24 * 3600, gt=0)
    idempotency_max_entries: int = Field(default=100_000, ge=1)
    #: How often the API probes an unreachable store (degraded mode) to recover by itself.
    store_probe_interval_s: float = Field(default=2.0, gt=0)
    #: FastAPI's native OpenTelemetry (spans, metrics, logs to the global OTel providers).
    #: Off by default: /metrics (Prometheus) and the JSON logs are the service's own, and the
    #: per-request "is OTel configured?" check cost ~5 % of a risk decision's CPU.
    otel_telemetry: bool = False
    #: Investigator views: an account with more relationships than this is a hub, drawn with
    #: its counts ("+N more") and not walked through by a neighbourhood or a path search
    #: unless the request asks (``through_hubs``).
    investigate_hub_degree: int = Field(default=1000, ge=1)
    #: A path search answers with what it found after expanding this long (``cut_short``).
    investigate_path_deadline_s: float = Field(default=1.0, gt=0, le=60)
    #: HTTP ingest: accounts rescored per batch (the rest at the next reload).
    rescore_limit: int = Field(default=2_000, ge=0)
    #: HTTP ingest: ``background`` answers once the batch is written and its ties are in the
    #: serving engine; a worker thread rescores the touched accounts soon after (coalesced,
    #: ``services/rescorer.py``; until then an account answers its previous table score with
    #: ``pending``). ``sync`` rescores them inside the request (~30 ms CPU each at 20k).
    rescore_mode: Literal["sync", "background"] = "background"
    #: The background rescorer: accounts per batch, and the share of wall time it may be busy
    #: (after a batch that took t seconds it pauses t * (1 - duty) / duty). Unset: 0.5 when
    #: batches run in a worker process, 0.2 in the API process, where they share one GIL with
    #: the payment path, which comes first (at 0.5 there the soak's server sat at one core and
    #: answered ~440-480 of 500 req/s, docs/benchmarks.md).
    rescore_batch: int = Field(default=32, ge=1, le=10_000)
    rescore_duty: float | None = Field(default=None, gt=0, le=1)
    #: 1: the batches are scored in a spawned worker process at this nice
    #: (``services/rescorepool.py``), so their CPU and GIL stay out of the API process;
    #: 0: in a thread of the API process.
    rescore_processes: int = Field(default=1, ge=0, le=1)
    rescore_process_nice: int = Field(default=10, ge=0, le=19)
    #: Request body limits in bytes (413 before the body is read; every body needs a valid
    #: key first): the risk check, the four ingest routes (batches of up to 10,000 items),
    #: and every other /v1/ route.
    max_body_risk_bytes: int = Field(default=16 * 1024, ge=256)
    max_body_ingest_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_body_bytes: int = Field(default=64 * 1024, ge=256)
    #: Deepest JSON nesting accepted in a request body (400 beyond; the API's own need 4).
    max_json_depth: int = Field(default=16, ge=4, le=200)
    #: ``/docs`` and ``/redoc`` (Swagger UI and ReDoc load their scripts from a CDN): on by
    #: default except in production. ``/openapi.json`` is always served.
    api_docs: bool | None = None
    #: Production refuses a Neo4j password shorter than ``MIN_NEO4J_PASSWORD`` and plain
    #: (unencrypted) Bolt to a host other than loopback unless these say so explicitly.
    neo4j_allow_weak_password: bool = False
    neo4j_allow_unencrypted: bool = False

    #: Bulkheads (``api/bulkheads.py``): investigator and ingest requests running at once per
    #: process; one more waits up to ``bulkhead_queue_s`` for a slot, then gets a 429. The
    #: payment path (risk, payment-key score look-ups) has no such cap and its own scoring slot.
    investigate_concurrency: int = Field(default=2, ge=1, le=64)
    ingest_concurrency: int = Field(default=2, ge=1, le=64)
    bulkhead_queue_s: float = Field(default=2.0, ge=0, le=60)
    #: Per-key rate limits (requests per second, token bucket holding ``rate_limit_burst_s``
    #: seconds' worth; 0 = none), answered 429 with ``Retry-After``. Payment is off by default:
    #: the payment service is one busy key, and a cap there would refuse transfers.
    rate_limit_payment_per_s: float = Field(default=0.0, ge=0)
    rate_limit_investigator_per_s: float = Field(default=50.0, ge=0)
    rate_limit_ingest_per_s: float = Field(default=50.0, ge=0)
    rate_limit_burst_s: float = Field(default=10.0, gt=0, le=600)
    #: An investigator neighbourhood still expanding after this long is stopped and answered
    #: 422 naming this cap (paths answer what they found: ``investigate_path_deadline_s``).
    investigate_deadline_s: float = Field(default=5.0, gt=0, le=120)
    #: Worker processes for the heavy investigator views (neighbourhoods of 2+ hops, paths;
    #: ``services/viewpool.py``), so their CPU and GIL stay out of the API process that
    #: answers risk checks; 0 computes them in the API process. Workers run at this nice.
    investigate_processes: int = Field(default=1, ge=0, le=32)
    investigate_process_nice: int = Field(default=5, ge=0, le=19)
    #: Audit and decision logs (``creditgraph.ledger``): a writer thread fsyncs what was
    #: written at most this long after (group commit); files rotate at this size and at the
    #: UTC day's end, and rotated files older than the retention period are removed.
    log_flush_ms: float = Field(default=20.0, ge=0, le=1000)
    log_rotate_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    log_retention_days: float = Field(default=183.0, gt=0)
    #: What an answered decision guarantees: ``written`` (its log line is written before the
    #: answer, fsync'd within log_flush_ms) or ``fsync`` (the answer waits for the fsync).
    decision_ack: Literal["written", "fsync"] = "written"
    #: The account id <-> pseudonym mapping of the logs (deleted rows = erased people); by
    #: default ``<data_dir>/subjects/pseudonyms.sqlite``. Keep it apart from the logs.
    pseudonyms_path: Path | None = None

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if (
            self.env != "development"
            and self.store == "neo4j"
            and self.neo4j_password.get_secret_value() == DEFAULT_NEO4J_PASSWORD
        ):
            raise ValueError(
                "CREDITGRAPH_NEO4J_PASSWORD is the development default; set a real secret "
                f"(env={self.env})"
            )
        if self.env == "production" and self.store == "neo4j":
            _refuse_insecure_neo4j(self)
        return self

    @property
    def docs_enabled(self) -> bool:
        """Whether the API serves ``/docs`` and ``/redoc``."""
        return self.env != "production" if self.api_docs is None else self.api_docs

    @property
    def api_keys_path(self) -> Path:
        """SQLite file of the API keys (hashes only)."""
        return self.data_dir / "api_keys.sqlite"

    @property
    def audit_log_path(self) -> Path:
        """Hash-chained JSON-lines audit log of decisions and look-ups (``creditgraph.ledger``)."""
        return self.data_dir / "audit" / "audit.jsonl"

    @property
    def decision_log_path(self) -> Path:
        """Hash-chained JSON-lines log of every risk decision and credit output."""
        return self.data_dir / "decisions" / "decisions.jsonl"

    @property
    def pseudonyms_file(self) -> Path:
        return self.pseudonyms_path or self.data_dir / "subjects" / "pseudonyms.sqlite"

    @property
    def models_dir(self) -> Path:
        """The model registry."""
        return self.data_dir / "models"

    @property
    def embedded_path(self) -> Path:
        """SQLite file of the embedded store."""
        return self.data_dir / "creditgraph.sqlite"


#: Shortest Neo4j password production accepts (without ``neo4j_allow_weak_password``).
MIN_NEO4J_PASSWORD = 12
#: Bolt URI schemes that encrypt the connection (``+s``: verified certificate, ``+ssc``:
#: self-signed).
_ENCRYPTED_SCHEMES = frozenset({"bolt+s", "bolt+ssc", "neo4j+s", "neo4j+ssc"})


def _refuse_insecure_neo4j(s: Settings) -> None:
    """Production's Neo4j rules: a real password, and encryption unless on loopback."""
    if (
        len(s.neo4j_password.get_secret_value()) < MIN_NEO4J_PASSWORD
        and not s.neo4j_allow_weak_password
    ):
        raise ValueError(
            f"CREDITGRAPH_NEO4J_PASSWORD is shorter than {MIN_NEO4J_PASSWORD} characters "
            "(env=production; CREDITGRAPH_NEO4J_ALLOW_WEAK_PASSWORD=true to accept it)"
        )
    uri = urlsplit(s.neo4j_uri)
    if (
        uri.scheme not in _ENCRYPTED_SCHEMES
        and not _is_loopback(uri.hostname or "")
        and not s.neo4j_allow_unencrypted
    ):
        raise ValueError(
            f"CREDITGRAPH_NEO4J_URI {uri.scheme}://{uri.hostname} is unencrypted Bolt to a "
            "remote host (env=production): use bolt+s:// or neo4j+s://, or set "
            "CREDITGRAPH_NEO4J_ALLOW_UNENCRYPTED=true"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment (and ``overrides``); a bad value raises
    ``ConfigError`` naming the variable, never a validation traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg']}"
            + (f" (got {err['input']!r})" if not isinstance(err["input"], dict) else "")
            for err in e.errors(include_url=False)
        )
        raise ConfigError(f"bad configuration: {problems}") from None


def _env_name(loc: tuple[int | str, ...]) -> str:
    return "CREDITGRAPH_" + "_".join(str(p) for p in loc).upper() if loc else "CREDITGRAPH_*"
