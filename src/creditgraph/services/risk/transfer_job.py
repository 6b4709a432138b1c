"""Train and evaluate the transfer model: the retraining job's second half.

Business rules:

- targets are transfer outcomes (``transfer_labels``) when at least ``MIN_PER_CLASS`` of each
  class exist; otherwise (the fallback, said so in the model card) the transfers touching
  labelled accounts, fraud when either end is labelled fraud;
- the labelled transfers are split by time, cut where 60 % and 80 % of their fraud has
  happened: the earliest part trains the booster, the next calibrates it (and stops boosting
  early), the latest is the hold-out every figure of the card comes from; features are
  causal (``features.batch_features``);
- beside it on the same hold-out transfers runs the hand-weighted policy (``risk.policy``,
  the named baseline and the fallback when no transfer model is trained), fed the same
  causal history, so the comparison is like for like;
- "at equal friction": the learned ranking (by expected loss, P(fraud) x amount) stopping
  the same share of legit hold-out transfers as the baseline stops at its review threshold.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sklearn.metrics import average_precision_score, roc_auc_score

from creditgraph.config import RiskSettings
from creditgraph.errors import ModelNotReady
from creditgraph.ml.transfer_model import TransferModelParams, train_transfer_model
from creditgraph.outcomes import TransferLog
from creditgraph.services.risk.policy import AccountRisk, Facts, TransferCheck, band, decide
from creditgraph.services.risk.tables import RingInfo
from creditgraph.services.transfers.artifact import load_current, make_current, new_version
from creditgraph.services.transfers.bands import band_learned
from creditgraph.services.transfers.card import write_card
from creditgraph.services.transfers.features import (
    NUMERIC,
    FeatureRows,
    PairContext,
    batch_features,
)
from creditgraph.store.base import GraphStore

MIN_PER_CLASS = 20
#: Inputs that come from the latest batch (account scores, detected rings), not from the
#: transfer's past: in a time-split evaluation they know the future, so the card also shows
#: a model trained without them.
BATCH_DERIVED = ("s_fraud_p", "r_fraud_p", "same_ring", "r_ring_score")
SPLIT = (0.6, 0.2)
I64 = np.ndarray[Any, np.dtype[np.int64]]
F64 = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class Targets:
    rows: I64  # log rows, time-ordered
    y: np.ndarray[Any, np.dtype[np.int8]]
    source: str  # "transfer_labels" | "account_labels"


def targets(
    log: TransferLog,
    transfer_labels: Mapping[str, str],
    account_labels: Mapping[str, int],
) -> Targets:
    """The labelled transfers the model learns from (see the module docstring)."""
    row_of = {t: i for i, t in enumerate(log.transfer_id)}
    pairs = sorted((row_of[t], lab == "fraud") for t, lab in transfer_labels.items() if t in row_of)
    fraud = sum(f for _, f in pairs)
    if fraud >= MIN_PER_CLASS and len(pairs) - fraud >= MIN_PER_CLASS:
        rows = np.array([r for r, _ in pairs], np.int64)
        return Targets(rows, np.array([f for _, f in pairs], np.int8), "transfer_labels")
    rows_l: list[int] = []
    y_l: list[int] = []
    for i, (s, d) in enumerate(zip(log.src, log.dst, strict=True)):
        ls, ld = account_labels.get(s), account_labels.get(d)
        if ls is None and ld is None:
            continue
        rows_l.append(i)
        y_l.append(int(ls == 1 or ld == 1))
    return Targets(np.array(rows_l, np.int64), np.array(y_l, np.int8), "account_labels")


def split(y: np.ndarray[Any, Any]) -> tuple[slice, slice, slice]:
    """Time-ordered train / calibration / hold-out slices, cut where 60 % and 80 % of the
    fraud has happened: fraud comes in bursts (a ring's weeks), and a cut by row count can
    leave a slice without any."""
    pos = np.flatnonzero(y == 1)
    n = len(y)
    if len(pos) < 3:
        a, b = int(n * SPLIT[0]), int(n * (SPLIT[0] + SPLIT[1]))
    else:
        a = int(pos[int(len(pos) * SPLIT[0])])
        b = int(pos[int(len(pos) * (SPLIT[0] + SPLIT[1]))])
    return slice(0, a), slice(a, b), slice(b, n)


def _take(f: FeatureRows, s: slice) -> FeatureRows:
    return FeatureRows(f.numeric[s], {c: v[s] for c, v in f.categorical.items()})


def baseline_risk(
    log: TransferLog, rows: I64, f: FeatureRows, ctx: PairContext, policy: RiskSettings
) -> F64:
    """The hand-weighted policy's risk for each transfer, from the same causal history."""
    col = NUMERIC.index
    out = np.empty(len(rows))
    x = f.numeric
    for k, i in enumerate(rows.tolist()):
        src, dst, amount = log.src[i], log.dst[i], float(log.amount[i])
        count = int(x[k, col("s_out_count")])
        ratio = x[k, col("s_amount_over_mean")]
        mean = amount / ratio if count and ratio == ratio and ratio > 0 else 0.0
        relation = []
        if x[k, col("friends")] == 1:
            relation.append("friends")
        if x[k, col("pair_earlier")] + x[k, col("pair_reverse")] > 0:
            relation.append("earlier transfers")
        if not relation and x[k, col("common_friends")] > 0:
            relation.append("common neighbour")
        rings = [RingInfo(r, "ring", sc, "new") for r, sc in ctx.rings.get(dst, [])]
        facts = Facts(
            check=TransferCheck(src, dst, amount),
            sender=_party(src, x[k, col("s_fraud_p")]),
            receiver=_party(dst, x[k, col("r_fraud_p")]),
            receiver_rings=rings,
            sender_count=count,
            sender_mean=mean,
            shared_identity=["IDENTITY"] if x[k, col("identity_links")] > 0 else [],
            relation=[] if src == dst else relation,
            degraded=False,
            model_version="baseline",
        )
        out[k] = decide(facts, policy).risk
    return out


def _party(account: str, p: float) -> AccountRisk:
    return AccountRisk(account, None if math.isnan(p) else float(p), None, "table")


# -- evaluation ------------------------------------------------------------------------------


def _stopped(mask: np.ndarray[Any, Any], y: np.ndarray[Any, Any], amount: F64) -> dict[str, float]:
    fraud, legit = y == 1, y == 0
    n_stop = int(mask.sum())
    return {
        "stopped": n_stop,
        "precision": float((mask & fraud).sum() / n_stop) if n_stop else math.nan,
        "fraud_stopped": float((mask & fraud).sum() / max(fraud.sum(), 1)),
        "legit_stopped": float((mask & legit).sum() / max(legit.sum(), 1)),
        "fraud_amount_stopped": float(amount[mask & fraud].sum() / max(amount[fraud].sum(), 1e-9)),
    }


def _bands(decisions: Sequence[str], y: np.ndarray[Any, Any], amount: F64) -> dict[str, Any]:
    d = np.asarray(decisions)
    return {
        "review": _stopped(d == "review", y, amount),
        "block": _stopped(d == "block", y, amount),
        "review_or_block": _stopped(d != "allow", y, amount),
    }


def _at_friction(
    score: F64, y: np.ndarray[Any, Any], amount: F64, friction: float
) -> dict[str, float]:
    """Stop the highest-``score`` transfers until ``friction`` of the legit ones are stopped."""
    legit_scores = np.sort(score[y == 0])[::-1]
    k = math.floor(friction * len(legit_scores))
    if k <= 0:
        cut = np.inf
        mask = score > cut
    else:
        cut = legit_scores[k - 1]
        mask = score >= cut
    out = _stopped(mask, y, amount)
    out["threshold"] = float(cut)
    return out


def curve(
    score: F64, y: np.ndarray[Any, Any], amount: F64, points: int = 101
) -> dict[str, list[float]]:
    """Fraud stopped / fraud amount stopped against legit stopped, over score cut-offs."""
    xs, fs, fa = [], [], []
    for q in np.linspace(0, 1, points):
        r = _at_friction(score, y, amount, float(q))
        xs.append(r["legit_stopped"])
        fs.append(r["fraud_stopped"])
        fa.append(r["fraud_amount_stopped"])
    return {"legit_stopped": xs, "fraud_stopped": fs, "fraud_amount_stopped": fa}


def evaluate_scores(
    y: np.ndarray[Any, Any],
    amount: F64,
    learned_log_p: F64,
    baseline: F64,
    policy: RiskSettings,
) -> dict[str, Any]:
    """Every figure of the comparison on one hold-out; the learned model enters as log
    P(fraud), so rankings stay exact where P underflows."""
    learned_p = np.exp(learned_log_p)
    base_dec = [band(float(r), policy) for r in baseline]
    learn_dec = [
        band_learned(float(p), float(a), policy) for p, a in zip(learned_p, amount, strict=True)
    ]
    base_bands = _bands(base_dec, y, amount)
    friction = base_bands["review_or_block"]["legit_stopped"]
    # log expected loss: the same order as P x amount, without underflow.
    loss = learned_log_p + np.log(np.maximum(amount, 1e-300))
    return {
        "n": len(y),
        "fraud": int((y == 1).sum()),
        "fraud_amount": float(amount[y == 1].sum()),
        "learned": {
            "auroc": float(roc_auc_score(y, learned_log_p)),
            "auprc": float(average_precision_score(y, learned_log_p)),
            "bands": _bands(learn_dec, y, amount),
            "at_baseline_friction_by_loss": _at_friction(loss, y, amount, friction),
            "at_baseline_friction_by_p": _at_friction(learned_log_p, y, amount, friction),
        },
        "baseline": {
            "auroc": float(roc_auc_score(y, baseline)),
            "auprc": float(average_precision_score(y, baseline)),
            "bands": base_bands,
            "at_baseline_friction": _at_friction(baseline, y, amount, friction),
        },
        "baseline_friction": friction,
        "curves": {
            "learned_loss": curve(loss, y, amount),
            "learned_p": curve(learned_log_p, y, amount),
            "baseline": curve(baseline, y, amount),
        },
    }


def _history_only(
    ftr: FeatureRows,
    fva: FeatureRows,
    fte: FeatureRows,
    ytr: np.ndarray[Any, Any],
    yva: np.ndarray[Any, Any],
    yte: np.ndarray[Any, Any],
    amount: F64,
    friction: float,
    params: TransferModelParams | None,
) -> dict[str, Any]:
    """The same model without the batch-derived inputs, on the same split (see
    ``BATCH_DERIVED``): what the transfer's own history carries."""
    keep = [j for j, n in enumerate(NUMERIC) if n not in BATCH_DERIVED]
    names = [NUMERIC[j] for j in keep]
    m = train_transfer_model(
        names,
        ftr.numeric[:, keep],
        ftr.categorical,
        ytr,
        fva.numeric[:, keep],
        fva.categorical,
        yva,
        params,
    )
    lp = m.log_probability(m.matrix(fte.numeric[:, keep], fte.categorical))
    loss = lp + np.log(np.maximum(amount, 1e-300))
    return {
        "dropped": list(BATCH_DERIVED),
        "auroc": float(roc_auc_score(yte, lp)),
        "auprc": float(average_precision_score(yte, lp)),
        "at_baseline_friction_by_loss": _at_friction(loss, yte, amount, friction),
    }


# -- the job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferTrainReport:
    version: str
    folder: Path
    source: str
    n_labelled: int
    evaluation: dict[str, Any]
    seconds: float


def context_of(store: GraphStore) -> tuple[PairContext, dict[str, int], str]:
    """The pair context from a fresh snapshot, stored rings and stored account scores; the
    account labels; and where the scores came from."""
    snapshot = store.snapshot()
    scores = store.get_scores()
    fraud_p = {s.account_id: float(s.fraud_probability) for s in scores}
    ctx = PairContext.build(snapshot, store.list_rings(), fraud_p)
    labels = {
        a: int(v)
        for a, v in zip(snapshot.account_ids, snapshot.labels.tolist(), strict=True)
        if v >= 0
    }
    version = scores[0].model_version if scores else "none"
    return ctx, labels, version


def train_transfers(
    store: GraphStore,
    root: Path,
    policy: RiskSettings,
    params: TransferModelParams | None = None,
) -> TransferTrainReport:
    """Train, evaluate on the time hold-out beside the baseline, write ``root/tNNNN/`` and
    point ``root/current.json`` at it. ``ModelNotReady`` without enough labelled transfers."""
    t0 = time.perf_counter()
    log = store.transfer_log()
    ctx, account_labels, score_version = context_of(store)
    tl = store.transfer_labels()
    tg = targets(log, dict(zip(tl.transfer_id, tl.label, strict=True)), account_labels)
    n = len(tg.rows)
    if n < 5 * MIN_PER_CLASS:
        raise ModelNotReady(f"only {n} labelled transfers: need at least {5 * MIN_PER_CLASS}")
    feats = batch_features(log, tg.rows, ctx)
    tr, va, te = split(tg.y)
    ftr, fva, fte = _take(feats, tr), _take(feats, va), _take(feats, te)
    try:
        model = train_transfer_model(
            list(NUMERIC),
            ftr.numeric,
            ftr.categorical,
            tg.y[tr],
            fva.numeric,
            fva.categorical,
            tg.y[va],
            params,
        )
    except ValueError as e:
        raise ModelNotReady(f"cannot train the transfer model: {e}") from e
    x_te = model.matrix(fte.numeric, fte.categorical)
    learned = model.log_probability(x_te)
    rows_te = tg.rows[te]
    base = baseline_risk(log, rows_te, fte, ctx, policy)
    amount = log.amount[rows_te]
    evaluation = evaluate_scores(tg.y[te], amount, learned, base, policy)
    evaluation["learned_history_only"] = _history_only(
        ftr, fva, fte, tg.y[tr], tg.y[va], tg.y[te], amount, evaluation["baseline_friction"], params
    )
    evaluation["split"] = {
        "train": int(tr.stop),
        "valid": int(va.stop - va.start),
        "holdout": int(te.stop - te.start),
        "holdout_from": float(log.ts[rows_te[0]]) if len(rows_te) else None,
    }
    version, folder = new_version(root)
    model.meta.update(
        {
            "version": version,
            "label_source": tg.source,
            "account_scores": score_version,
            "trained_at": time.time(),
        }
    )
    folder.mkdir(parents=True)
    (folder / "model.json").write_bytes(orjson.dumps(model.to_json()))
    (folder / "evaluation.json").write_bytes(
        orjson.dumps(evaluation, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    write_card(folder, model, evaluation, store)
    make_current(root, version)
    return TransferTrainReport(version, folder, tg.source, n, evaluation, time.perf_counter() - t0)


def evaluate_current(store: GraphStore, root: Path, policy: RiskSettings) -> dict[str, Any]:
    """Re-run the hold-out comparison for the current model on the store's data now (the
    same split rule as training), for ``creditgraph evaluate transfers``."""
    version, model = load_current(root)
    log = store.transfer_log()
    ctx, account_labels, _ = context_of(store)
    tl = store.transfer_labels()
    tg = targets(log, dict(zip(tl.transfer_id, tl.label, strict=True)), account_labels)
    _, _, te = split(tg.y)
    rows_te = tg.rows[te]
    f = batch_features(log, rows_te, ctx)
    learned = model.log_probability(model.matrix(f.numeric, f.categorical))
    base = baseline_risk(log, rows_te, f, ctx, policy)
    out = evaluate_scores(tg.y[te], log.amount[rows_te], learned, base, policy)
    out["model_version"] = version
    out["label_source"] = tg.source
    return out
