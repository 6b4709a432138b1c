"""Credit profiles: train the credit model, score every account, explain one account.

A separate product from the fraud score: its own model versions (``<models_dir>/credit``),
its own route and audit actions. Business rules (docs/credit.md):
- consent first: an account whose ``social_scoring`` is withdrawn (or defaults to it) has no
  social dimension, and no edge touching it is read for anyone's credit features;
- features are read as of the model's ``as_of`` (the end of the data it was trained on), in
  batch and per request alike, so both give the same profile;
- sensitive columns of the job file never enter (``TrainingConfig`` refuses them as
  identity features; the other dimensions read no account column).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from creditgraph.config import CreditSettings
from creditgraph.domain import CONSENT_PROPERTY, FRIEND, Obligation, Snapshot, TransferEvents
from creditgraph.errors import ModelNotReady
from creditgraph.ledger.decisions import DecisionLog
from creditgraph.ml import credit_artifact
from creditgraph.ml.credit_explain import profile
from creditgraph.ml.credit_features import DIMENSIONS, STATUS_CODE, CreditData
from creditgraph.ml.credit_model import (
    CreditModel,
    TrainSettings,
    band_of,
    score_data,
    train_credit,
)
from creditgraph.services.consent import consent_value
from creditgraph.store.base import GraphStore
from creditgraph.training_config import TrainingConfig


def credit_root(models_dir: Path) -> Path:
    return models_dir / "credit"


def _build(
    account_ids: list[str],
    created_at: Sequence[float],
    identity: np.ndarray,
    identity_names: list[str],
    consent_text: dict[str, str],
    default: str,
    obligations: dict[str, Obligation],
    transfers: TransferEvents,
    friends: Sequence[tuple[str, str]],
) -> CreditData:
    ix = {a: i for i, a in enumerate(account_ids)}
    consent = np.array(
        [
            consent_value(consent_text.get(a), "granted" if default == "granted" else "withdrawn")
            == "granted"
            for a in account_ids
        ],
        dtype=bool,
    )
    obs = [o for o in obligations.values() if o.account_id in ix]
    final_at = [
        next((c.at for c in o.history if c.status == o.status), o.due_at)
        if o.status != "open"
        else np.nan
        for o in obs
    ]
    keep = [
        i
        for i, (s, d) in enumerate(zip(transfers.src, transfers.dst, strict=True))
        if s in ix and d in ix
    ]
    fr = [(ix[a], ix[b]) for a, b in friends if a in ix and b in ix]
    return CreditData(
        account_ids=account_ids,
        created_at=np.asarray(created_at, dtype=np.float64),
        identity=identity,
        identity_names=identity_names,
        consent=consent,
        ob_account=np.array([ix[o.account_id] for o in obs], dtype=np.int64),
        ob_amount=np.array([o.amount for o in obs], dtype=np.float64),
        ob_opened=np.array([o.opened_at for o in obs], dtype=np.float64),
        ob_due=np.array([o.due_at for o in obs], dtype=np.float64),
        ob_status=np.array([STATUS_CODE[o.status] for o in obs], dtype=np.int8),
        ob_final_at=np.array(final_at, dtype=np.float64),
        tx_src=np.array([ix[transfers.src[i]] for i in keep], dtype=np.int64),
        tx_dst=np.array([ix[transfers.dst[i]] for i in keep], dtype=np.int64),
        tx_amount=np.array([transfers.amount[i] for i in keep], dtype=np.float64),
        tx_ts=np.array([transfers.ts[i] for i in keep], dtype=np.float64),
        friend_a=np.array([a for a, _ in fr], dtype=np.int64),
        friend_b=np.array([b for _, b in fr], dtype=np.int64),
    )


def credit_data(
    store: GraphStore,
    identity_features: Sequence[str],
    consent_default: str,
    snapshot: Snapshot | None = None,
) -> CreditData:
    """Every account's credit inputs from the store."""
    snap = snapshot if snapshot is not None else store.snapshot()
    cols = [
        snap.feature_names.index(f) if f in snap.feature_names else -1 for f in identity_features
    ]
    identity = (
        np.column_stack(
            [snap.features[:, c] if c >= 0 else np.full(snap.num_accounts, np.nan) for c in cols]
        )
        if cols
        else np.zeros((snap.num_accounts, 0))
    )
    friends: list[tuple[str, str]] = []
    if FRIEND in snap.edges:
        e = snap.edges[FRIEND]
        ids = snap.account_ids
        friends = [(ids[a], ids[b]) for a, b in zip(e.src.tolist(), e.dst.tolist(), strict=True)]
    return _build(
        snap.account_ids,
        snap.created_at.tolist(),
        identity,
        list(identity_features),
        store.property_values(CONSENT_PROPERTY),
        consent_default,
        store.get_obligations(),
        store.transfer_events(),
        friends,
    )


def credit_data_around(
    store: GraphStore,
    account_id: str,
    identity_features: Sequence[str],
    consent_default: str,
    hops: int = 1,
) -> tuple[CreditData, int]:
    """One account's credit inputs: its own records, and (for the social dimension) its
    friends and counterparties with their repayment records. With ``hops=2`` (the graph
    network) also every transfer and friendship of those neighbours and the records of
    their contacts, so the account's output is the one the batch gives. ``NotFound`` if
    absent."""
    account = store.get_account(account_id)
    transfers = store.transfer_events([account_id])
    friend_edges = store.adjacent([account_id], frozenset({FRIEND}))

    def ends() -> set[str]:
        return (
            {e.src for e in friend_edges}
            | {e.dst for e in friend_edges}
            | set(transfers.src)
            | set(transfers.dst)
        )

    if hops >= 2:
        first = sorted(ends() | {account_id})
        transfers = store.transfer_events(first)
        friend_edges = store.adjacent(first, frozenset({FRIEND}))
    friends = [(e.src, e.dst) for e in friend_edges]
    neighbours = sorted(ends() - {account_id})
    ids = sorted({account_id, *neighbours})
    created = [float("nan")] * len(ids)
    row = ids.index(account_id)
    created[row] = account.created_at if account.created_at is not None else float("nan")
    identity = np.full((len(ids), len(identity_features)), np.nan)
    for j, f in enumerate(identity_features):
        if f in account.features:
            identity[row, j] = account.features[f]
    data = _build(
        ids,
        created,
        identity,
        list(identity_features),
        store.property_values(CONSENT_PROPERTY, ids),
        consent_default,
        store.get_obligations(account_ids=ids),
        transfers,
        friends,
    )
    return data, row


def data_end(data: CreditData) -> float:
    """The latest event in the data (transfer, opening, final status), plus one second."""
    parts = [data.tx_ts, data.ob_opened, data.ob_final_at[np.isfinite(data.ob_final_at)]]
    latest = max((float(p.max()) for p in parts if len(p)), default=time.time())
    return latest + 1.0


@dataclass(frozen=True)
class CreditTrainReport:
    version: str
    as_of: str
    metrics: dict[str, Any]
    path: Path


def train_credit_model(
    store: GraphStore,
    models_dir: Path,
    job: TrainingConfig,
    settings: CreditSettings,
    snapshot: Snapshot | None = None,
) -> CreditTrainReport:
    """Train a credit model version from the store and make it the one served.
    ``ModelNotReady`` when the store holds no obligations with known outcomes."""
    c = job.credit
    data = credit_data(store, c.identity_features, settings.consent_default, snapshot)
    if len(data.ob_account) == 0:
        raise ModelNotReady("no obligations in the store: import obligations first")
    as_of = data_end(data)
    root = credit_root(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    version = credit_artifact.next_version(root)
    train = TrainSettings(
        weights=c.weights,
        identity_features=c.identity_features,
        cuts_days=c.cuts_days,
        horizon_days=c.horizon_days,
        seed=job.seed,
        social_model=c.social_model,
    )
    try:
        model = train_credit(
            data,
            as_of,
            train,
            version=version,
            policy=settings.social_policy,
            cap=settings.social_cap,
        )
    except ValueError as e:
        raise ModelNotReady(f"cannot train a credit model: {e}") from None
    path = credit_artifact.save(model, root, model_card(model, job))
    return CreditTrainReport(version, _iso(as_of), model.metrics, path)


def load_credit_model(models_dir: Path) -> CreditModel:
    """The served credit model; ``ModelNotReady`` before the first credit training."""
    root = credit_root(models_dir)
    version = credit_artifact.champion_version(root)
    if version is None:
        raise ModelNotReady("no credit model yet: train with obligations in the store")
    return credit_artifact.load(root, version)


def credit_model_exists(models_dir: Path) -> bool:
    return credit_artifact.champion_version(credit_root(models_dir)) is not None


@dataclass(frozen=True)
class CreditTable:
    """Batch credit outputs, one row per account."""

    account_ids: list[str]
    p_default: np.ndarray
    credit_score: np.ndarray
    dims: dict[str, np.ndarray]
    used: dict[str, np.ndarray]
    model_version: str


def score_all_credit(
    store: GraphStore,
    model: CreditModel,
    settings: CreditSettings,
    snapshot: Snapshot | None = None,
) -> CreditTable:
    data = credit_data(store, model.identity_features, settings.consent_default, snapshot)
    rows = np.arange(data.num_accounts, dtype=np.int64)
    scored, _ = score_data(model, data, rows, settings.social_policy, settings.social_cap)
    return CreditTable(
        account_ids=data.account_ids,
        p_default=scored.p_default,
        credit_score=np.round(scored.composite),
        dims={d: scored.scores[d] for d in DIMENSIONS},
        used={d: scored.used[d] for d in DIMENSIONS},
        model_version=model.version,
    )


def log_credit_table(decisions: DecisionLog, table: CreditTable, settings: CreditSettings) -> int:
    """Write one decision-log line per account of a batch (kind ``credit.profile``, inputs
    marked ``source: batch``), the same record ``GET /v1/accounts/{id}/credit`` writes for
    the one it answers: a credit output leaves only once it is logged. Returns the count.

    The batch gives no principal reasons (the CSV carries none), so none are logged."""
    thresholds = {
        "policy": settings.social_policy,
        "social_cap": settings.social_cap,
        "consent_default": settings.consent_default,
    }
    inputs = {
        "as_of_model": table.model_version,
        "policy": settings.social_policy,
        "source": "batch",
    }
    for i, account in enumerate(table.account_ids):
        score = float(table.credit_score[i])
        dims = {
            d: (round(float(table.dims[d][i]), 1) if table.used[d][i] or d != "social" else None)
            for d in DIMENSIONS
        }
        decisions.credit_sync(
            account_id=account,
            inputs=inputs,
            model_version=table.model_version,
            output={
                "credit_score": int(score),
                "band": band_of(score),
                "p_default": round(float(table.p_default[i]), 4),
                "dimensions": dims,
                "social_used": bool(table.used["social"][i]),
            },
            thresholds=thresholds,
            reasons=[],
            kind="credit.profile",
        )
    return len(table.account_ids)


def credit_profile(
    store: GraphStore, model: CreditModel, account_id: str, settings: CreditSettings
) -> dict[str, Any]:
    """``GET /v1/accounts/{id}/credit``: the profile of one account, read live from the
    store as of the model's ``as_of``. ``NotFound`` for an unknown account."""
    hops = 2 if model.dims["social"].gnn is not None else 1
    data, row = credit_data_around(
        store, account_id, model.identity_features, settings.consent_default, hops
    )
    rows = np.array([row], dtype=np.int64)
    scored, blocks = score_data(model, data, rows, settings.social_policy, settings.social_cap)
    out = profile(
        model,
        account_id,
        scored,
        blocks,
        0,
        bool(data.consent[row]),
        settings.social_policy,
        settings.social_cap,
    )
    return out


def add_credit_columns(path: Path, table: CreditTable) -> None:
    """Add ``p_default, credit_score`` and one ``dim_*`` column per dimension to a scores
    CSV (``dim_social`` empty where the social dimension was not used)."""
    scores = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    ix = {a: i for i, a in enumerate(table.account_ids)}
    order = np.array([ix.get(a, -1) for a in scores.column("account_id").to_pylist()])
    found = order >= 0

    def col(values: np.ndarray, present: np.ndarray, digits: int) -> pa.Array:
        v = np.where(found, values[np.maximum(order, 0)], np.nan)
        ok = found & present[np.maximum(order, 0)] & np.isfinite(v)
        return pa.array(
            [round(float(x), digits) if k else None for x, k in zip(v, ok, strict=True)]
        )

    always = np.ones(len(table.account_ids), dtype=bool)
    scores = scores.append_column("p_default", col(table.p_default, always, 4))
    scores = scores.append_column("credit_score", col(table.credit_score, always, 0))
    for d in DIMENSIONS:
        present = table.used[d] if d == "social" else always
        scores = scores.append_column(f"dim_{d}", col(table.dims[d], present, 1))
    pacsv.write_csv(scores, path)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_card(model: CreditModel, job: TrainingConfig) -> str:
    m = model.metrics
    lines = [
        f"# Credit model {model.version}",
        "",
        "A separate model from the fraud score (docs/credit.md): five dimensions trained on "
        "repayment outcomes, a 350-950 scorecard composite.",
        "",
        f"- data as of: {_iso(model.as_of)}; feature cuts {m['cuts_days']} days before, labels "
        f"from obligations opened within {m['horizon_days']} days after each cut",
        f"- training rows: {m['training_rows']} (validation {m['validation_rows']}), default "
        f"rate {m['training_default_rate']:.3f}",
        f"- sensitive columns never used: {', '.join(job.sensitive) or 'none'}",
        f"- identity features: {', '.join(model.identity_features) or 'none'} and account age",
        f"- calibrated under policy {model.calibrated_policy}, social cap "
        f"{model.calibrated_cap:.0%} of the range",
        "",
        "| dimension | weight | validation AUROC |",
        "|---|---|---|",
        *(f"| {d} | {model.weights[d]} | {m['validation_auroc'][d]:.3f} |" for d in DIMENSIONS),
        f"| composite | | {m['validation_auroc_composite']:.3f} |",
        "",
        "Held-out evaluation (open obligations of a world never used for choosing, beside "
        "XGBoost baselines, fairness by group): `bench/credit_eval.py`, figures in "
        "docs/credit.md.",
    ]
    return "\n".join(lines) + "\n"


class CreditService:
    """The served credit model, reloaded when another version becomes the champion."""

    def __init__(self, models_dir: Path) -> None:
        self.root = credit_root(models_dir)
        self._model: CreditModel | None = None
        self._lock = threading.Lock()

    def model(self) -> CreditModel:
        """The champion; ``ModelNotReady`` before the first credit training."""
        version = credit_artifact.champion_version(self.root)
        if version is None:
            raise ModelNotReady("no credit model yet: train with obligations in the store")
        with self._lock:
            if self._model is None or self._model.version != version:
                self._model = credit_artifact.load(self.root, version)
            return self._model


def demo_profiles(
    store: GraphStore, model: CreditModel, settings: CreditSettings, k: int = 3
) -> list[str]:
    """A few credit profiles as lines for a person (``creditgraph demo``): the best, the
    middle and the worst scored account, and a thin-file one."""
    table = score_all_credit(store, model, settings)
    order = np.argsort(table.credit_score, kind="stable")
    picks = [int(order[-1]), int(order[len(order) // 2]), int(order[0])][:k]
    lines = [f"credit profiles (model {model.version}, policy {settings.social_policy}):"]
    for i in picks:
        p = credit_profile(store, model, table.account_ids[i], settings)
        dims = ", ".join(
            f"{d}={v['score']:.0f}" if v["score"] is not None else f"{d}=-"
            for d, v in p["dimensions"].items()
        )
        top = "; ".join(r["message"] for r in p["reasons"][:2]) or "nothing lost"
        lines.append(
            f"  {p['account_id']}: {p['credit_score']} ({p['band']}), p_default "
            f"{p['p_default']:.3f}; {dims}; principal reasons: {top}; next band: "
            f"{p['counterfactual'].get('message', '')}"
        )
    return lines
