"""The retraining job: snapshot → features → split → candidate families → gate → registry.

One call trains every configured model family (``ml.candidates``: GNNs, trees, a stacked
model) on a consistent snapshot of the store and ONE split, selects the champion candidate
on validation AUPRC and the social-credit candidate among the relationship-only ones,
measures every candidate and the current champion on the SAME held-out test labels, and
registers the result as a new version (artifact, every candidate side by side in the model
card, data summary and plots). The version becomes champion only when the gate passes, or
when ``force`` is given, in which case the promotion reason says it was forced. A refused
challenger stays registered for inspection (and for a deliberate ``promote_version``) but
never becomes champion here.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from creditgraph.domain import Snapshot
from creditgraph.errors import InvalidInput, ModelNotReady
from creditgraph.ml.artifact import load_artifact, save_artifact
from creditgraph.ml.candidates import CandidateRun, CandidatesConfig, measure, train_candidates
from creditgraph.ml.features import FeatureSet, build_features
from creditgraph.ml.plots import save_plots
from creditgraph.ml.train import (
    FloatArray,
    Scores,
    Split,
    TrainConfig,
    social_credit,
    stratified_split,
)
from creditgraph.ml.trees import TreeConfig
from creditgraph.registry import GateDecision, ModelRecord, ModelRegistry, gate
from creditgraph.services.champion import load_champion
from creditgraph.services.laps import Laps
from creditgraph.services.snapshots import load_or_export
from creditgraph.store.base import GraphStore
from creditgraph.training_config import TrainingConfig

EVALUATION = "evaluation.json"
MODEL_CARD = "model_card.md"
CANDIDATE_SCORES = "candidate_scores.npz"
TREE_FAMILIES = ("trees", "labels", "stacked")


@dataclass(frozen=True)
class ChampionEvaluation:
    """The champion before this job, re-scored on the challenger's test split."""

    version: str
    metrics: dict[str, float]
    #: Its fraud logit and calibrated probability for every account, for the plots.
    logit: FloatArray = field(repr=False)
    probability: FloatArray = field(repr=False)


@dataclass(frozen=True)
class RetrainReport:
    """What a retraining job did; ``outcome`` is one line for a person to read."""

    version: str
    path: Path
    promoted: bool
    #: True when the version became champion only because ``force`` overrode the gate.
    forced: bool
    gate: GateDecision
    champion_before: ChampionEvaluation | None
    #: Test-split metrics, all on the same accounts: ``champion`` (the selected fraud
    #: candidate), ``social`` (the selected relationship-only candidate), ``baseline`` (the
    #: ``trees`` family, when trained) and every candidate under its own name.
    metrics: dict[str, dict[str, float]]
    #: The selected fraud and social candidates' names.
    selected: dict[str, str]
    data_summary: dict[str, Any]
    #: Best epoch of the relational GNN (None when the job trained none).
    best_epoch: int | None
    timings: dict[str, float]
    outcome: str


def retrain(
    store: GraphStore,
    registry: ModelRegistry,
    config: TrainingConfig,
    *,
    force: bool = False,
    snapshot: Snapshot | None = None,
    snapshot_cache: Path | None = None,
) -> RetrainReport:
    """Train the candidates, gate the selected one against the champion, register it,
    promote if allowed.

    ``force`` promotes even when the gate refuses, or when the champion's artifact cannot be
    loaded to compare with (without ``force`` that raises ``ModelNotReady``). A job that
    scores right after training passes the ``snapshot`` it exports once to both;
    ``snapshot_cache`` reuses (or leaves) a saved snapshot for a separate ``score`` run
    (``services.snapshots``). Raises
    ``InvalidInput`` when the store has too few labels of either class to split.
    """
    laps = Laps()
    lap, timings = laps.lap, laps.timings
    if snapshot is None:
        snapshot = load_or_export(store, snapshot_cache)
    lap("snapshot_s")
    features = build_features(snapshot, config.sensitive)
    split = stratified_split(
        snapshot.labels, val=config.split.val, test=config.split.test, seed=config.seed
    )
    lap("features_s")
    run = train_candidates(features, snapshot.labels, split, candidates_config(config))
    lap("train_s")
    timings.update({f"candidate_{k}": v for k, v in run.timings.items()})
    metrics = _metrics(run)
    champion, decision = _champion_and_gate(
        registry, snapshot, split, metrics["champion"], config, force=force
    )
    lap("champion_s")

    forced = force and not decision.promote
    promoted = decision.promote or force
    version, folder = registry.new_version()
    outcome = _outcome(version, decision, promoted=promoted, forced=forced)
    summary = _data_summary(snapshot, features, split, config.sensitive)
    candidates = [
        {
            "name": c.name,
            "social": c.social,
            "train_s": c.train_s,
            "validation": c.val,
            "test": c.test,
        }
        for c in run.candidates
    ]
    selected = {"fraud": run.champion, "social": run.social}
    save_artifact(
        folder, run.served, config.sensitive, extra={"selected": selected, "candidates": candidates}
    )
    # Every candidate's ranking score per account, so a reviewer (or bench/quality.py) can
    # measure each on labels the job never saw.
    arrays: dict[str, Any] = {c.name: c.logit.astype(np.float32) for c in run.candidates}
    np.savez_compressed(
        folder / CANDIDATE_SCORES, account_id=np.asarray(snapshot.account_ids), **arrays
    )
    # The selected candidates' own scores (training accounts out of fold where a family has
    # such columns): no second pass over the graph.
    fraud_c, social_c = run.by_name(run.champion), run.by_name(run.social)
    challenger_scores = Scores(
        fraud_logit=fraud_c.logit,
        social_logit=social_c.logit,
        fraud_probability=fraud_c.probability,
        social_credit=social_credit(social_c.probability),
    )
    curves = _curves(run, challenger_scores, champion)
    plots = save_plots(
        folder,
        snapshot.labels[split.test],
        {name: logit[split.test] for name, (logit, _) in curves.items()},
        {name: prob[split.test] for name, (_, prob) in curves.items()},
    )
    fairness = _sensitive_groups(snapshot, challenger_scores, config.sensitive)
    lap("artifacts_s")
    laps.total("total_s")
    gnn = run.served.gnns.get("gnn")
    best_epoch = None if gnn is None else gnn.best_epoch
    evaluation = {
        "metrics": metrics,
        "selected": selected,
        "candidates": candidates,
        "champion": None
        if champion is None
        else {"version": champion.version, "metrics": champion.metrics},
        "gate": asdict(decision),
        "promoted": promoted,
        "forced": forced,
        "best_epoch": best_epoch,
        "fairness": fairness,
        "timings": timings,
        # Every tree model trained: its seed bag and each member's best round.
        "trees": {
            family: {"bag": model.bag, "member_rounds": model.member_rounds}
            for family, model in run.full.trees.items()
        },
    }
    (folder / EVALUATION).write_text(json.dumps(evaluation, indent=2), encoding="utf-8")
    (folder / MODEL_CARD).write_text(
        _model_card(version, config, summary, evaluation, [p.name for p in plots.values()]),
        encoding="utf-8",
    )
    registry.register(
        ModelRecord(
            version=version,
            created_at=time.time(),
            metrics=_flat_metrics(metrics),
            config=config.model_dump(mode="json"),
            data_summary=summary,
            notes=[
                f"champion candidate: {run.champion}; social credit: {run.social}",
                f"gate: {decision.reason}",
                outcome,
            ],
        )
    )
    if promoted:
        reason = f"forced: gate refused ({decision.reason})" if forced else decision.reason
        registry.promote(version, reason)
    return RetrainReport(
        version=version,
        path=folder,
        promoted=promoted,
        forced=forced,
        gate=decision,
        champion_before=champion,
        metrics=metrics,
        selected=selected,
        data_summary=summary,
        best_epoch=best_epoch,
        timings=timings,
        outcome=outcome,
    )


def promote_version(
    registry: ModelRegistry, version: str, *, reason: str = "manual promotion"
) -> ModelRecord:
    """Make a registered version champion by hand (``models promote``), gate or not.

    The artifact is loaded first, so a version that could not score never becomes champion.
    """
    load_artifact(registry.path(version))
    return registry.promote(version, reason)


def candidates_config(config: TrainingConfig) -> CandidatesConfig:
    """The job file's sections as the candidates' configuration."""
    families = list(config.candidates.families)
    if not config.baseline.enabled:
        families = [f for f in families if f not in TREE_FAMILIES]
        if not families:
            raise InvalidInput("[baseline] enabled = false leaves no candidate family to train")
    gnn = _gnn_config(config)
    return CandidatesConfig(
        families=tuple(families),
        social_trees=config.candidates.social_trees and config.baseline.enabled,
        stack_folds=config.candidates.stack_folds,
        gnn=gnn,
        wavelet=TrainConfig(
            **{
                **asdict(gnn),
                "architecture": "wavelet",
                "hidden": config.candidates.wavelet_hidden,
                "layers": config.candidates.wavelet_order,
            }
        ),
        trees=TreeConfig(
            learning_rate=config.baseline.learning_rate,
            num_leaves=config.baseline.num_leaves,
            max_rounds=config.baseline.max_rounds,
            early_stopping_rounds=config.baseline.early_stopping_rounds,
            bag=config.baseline.bag,
            folds=config.candidates.label_folds,
            calibration=config.optim.calibration,
            seed=config.seed,
        ),
        calibration=config.optim.calibration,
        recall_k_fraction=config.evaluation.recall_k_fraction,
    )


def _gnn_config(config: TrainingConfig) -> TrainConfig:
    return TrainConfig(
        hidden=config.model.hidden,
        layers=config.model.layers,
        dropout=config.model.dropout,
        lr=config.optim.lr,
        weight_decay=config.optim.weight_decay,
        max_epochs=config.optim.max_epochs,
        patience=config.optim.patience,
        validate_every=config.optim.validate_every,
        social_weight=config.model.social_weight,
        calibration=config.optim.calibration,
        recall_k_fraction=config.evaluation.recall_k_fraction,
        seed=config.seed,
    )


def _metrics(run: CandidateRun) -> dict[str, dict[str, float]]:
    out = {
        "champion": run.by_name(run.champion).test,
        "social": run.by_name(run.social).test,
    }
    if any(c.name == "trees" for c in run.candidates):
        out["baseline"] = run.by_name("trees").test
    out.update({c.name: c.test for c in run.candidates})
    return out


def _champion_and_gate(
    registry: ModelRegistry,
    snapshot: Snapshot,
    split: Split,
    challenger: dict[str, float],
    config: TrainingConfig,
    *,
    force: bool,
) -> tuple[ChampionEvaluation | None, GateDecision]:
    """The champion on this split and the gate's verdict on the challenger."""
    try:
        champion = _evaluate_champion(
            registry, snapshot, split, config.evaluation.recall_k_fraction
        )
    except ModelNotReady as e:
        if not force:
            raise ModelNotReady(f"cannot compare with the champion ({e}); use force") from e
        # The gate cannot vouch for the challenger; only ``force`` lets it through.
        value = challenger[config.gate.metric]
        reason = f"the champion could not be evaluated: {e}"
        refused = GateDecision(
            False, config.gate.metric, value, None, config.gate.tolerance, reason
        )
        return None, refused
    decision = gate(
        challenger,
        None if champion is None else champion.metrics,
        metric=config.gate.metric,
        tolerance=config.gate.tolerance,
    )
    return champion, decision


def _evaluate_champion(
    registry: ModelRegistry, snapshot: Snapshot, split: Split, k_fraction: float
) -> ChampionEvaluation | None:
    """The champion's metrics on this job's test labels, from its saved artifact.

    The champion may have trained on some of these accounts (its split came from an older
    snapshot); that can only flatter the champion, so the gate errs towards keeping it.
    """
    if registry.champion_version() is None:
        return None
    champion = load_champion(registry)
    artifact, version = champion.artifact, champion.version
    scores = artifact.score(artifact.features(snapshot))
    metrics = measure(
        snapshot.labels[split.test],
        scores.fraud_logit[split.test],
        artifact.served.fraud_calibrator,
        k_fraction,
    )
    return ChampionEvaluation(version, metrics, scores.fraud_logit, scores.fraud_probability)


def _curves(
    run: CandidateRun, challenger: Scores, champion: ChampionEvaluation | None
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """Per compared model, (ranking score, calibrated probability) of every account."""
    out = {f"challenger ({run.champion})": (challenger.fraud_logit, challenger.fraud_probability)}
    for name in ("trees", "gnn"):
        if name != run.champion and any(c.name == name for c in run.candidates):
            c = run.by_name(name)
            out[name] = (c.logit, c.probability)
    if champion is not None:
        out[f"champion {champion.version}"] = (champion.logit, champion.probability)
    return out


def _data_summary(
    snapshot: Snapshot, features: FeatureSet, split: Split, sensitive: list[str]
) -> dict[str, Any]:
    labels = snapshot.labels
    # Identifies the exact accounts and labels trained on, to tell "same data" apart from
    # "same counts" when comparing versions.
    digest = hashlib.sha256()
    digest.update("\n".join(snapshot.account_ids).encode())
    digest.update(labels.tobytes())

    def part(idx: np.ndarray[Any, np.dtype[np.int64]]) -> dict[str, int]:
        return {"accounts": len(idx), "fraud": int((labels[idx] == 1).sum())}

    return {
        "accounts": snapshot.num_accounts,
        "labelled": int((labels >= 0).sum()),
        "fraud_labels": int((labels == 1).sum()),
        "legit_labels": int((labels == 0).sum()),
        "edges": {rel: len(es) for rel, es in sorted(snapshot.edges.items())},
        "features": features.names,
        "relations": features.relations,
        "sensitive_excluded": sorted(set(sensitive) & set(snapshot.feature_names)),
        "split": {"train": part(split.train), "val": part(split.val), "test": part(split.test)},
        "fingerprint": digest.hexdigest()[:16],
    }


def _sensitive_groups(
    snapshot: Snapshot, scores: Scores, sensitive: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Per sensitive column, accounts by quartile: mean scores of all accounts and the
    labelled fraud rate. The models never read these columns; proxies still can, and this
    table is where a reviewer sees it."""
    labels = snapshot.labels
    out: dict[str, list[dict[str, Any]]] = {}
    for name in sensitive:
        if name not in snapshot.feature_names:
            continue
        values = snapshot.features[:, snapshot.feature_names.index(name)]
        known = np.isfinite(values)
        cuts: FloatArray = (
            np.unique(np.quantile(values[known], [0.25, 0.5, 0.75])) if known.any() else np.empty(0)
        )
        # Group g holds [cuts[g - 1], cuts[g]); -1 holds the accounts without a value.
        group = np.where(known, np.searchsorted(cuts, np.nan_to_num(values), side="right"), -1)
        rows = []
        for g in np.unique(group).tolist():
            members = group == g
            labelled = members & (labels >= 0)
            lo = "min" if g <= 0 else f"{cuts[g - 1]:g}"
            hi = "max" if g < 0 or g >= len(cuts) else f"{cuts[g]:g}"
            rows.append(
                {
                    "group": "missing" if g < 0 else f"[{lo}, {hi})",
                    "accounts": int(members.sum()),
                    "mean_fraud_probability": float(scores.fraud_probability[members].mean()),
                    "mean_social_credit": float(scores.social_credit[members].mean()),
                    "labelled": int(labelled.sum()),
                    "labelled_fraud_rate": float(labels[labelled].mean())
                    if labelled.any()
                    else None,
                }
            )
        out[name] = rows
    return out


def _flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """The registry's flat view: the selected candidate's metrics under their own names
    (what the gate reads), the others prefixed with the candidate's name."""
    flat = dict(metrics["champion"])
    for name, values in metrics.items():
        if name != "champion":
            prefix = name.replace(":", "_")
            flat.update({f"{prefix}_{k}": v for k, v in values.items()})
    return flat


def _outcome(version: str, decision: GateDecision, *, promoted: bool, forced: bool) -> str:
    if forced:
        return f"{version} promoted by force although the gate refused it: {decision.reason}"
    if promoted:
        return f"{version} promoted to champion: {decision.reason}"
    return f"{version} registered but NOT promoted, the champion stays: {decision.reason}"


def _model_card(
    version: str,
    config: TrainingConfig,
    summary: dict[str, Any],
    evaluation: dict[str, Any],
    plots: list[str],
) -> str:
    selected = evaluation["selected"]
    rows = []
    for c in evaluation["candidates"]:
        mark = " **(champion)**" if c["name"] == selected["fraud"] else ""
        if c["name"] == selected["social"]:
            mark = " **(social credit)**"
        v, t = c["validation"], c["test"]
        kind = "relationship-only" if c["social"] else "fraud"
        rows.append(
            f"| {c['name']}{mark} | {kind} | {v['auprc']:.4f} | {v['auroc']:.4f} | "
            f"{t['auroc']:.4f} | {t['auprc']:.4f} | {t['recall_at_1pct']:.4f} | "
            f"{t['recall_at_5pct']:.4f} | {t['ece']:.4f} | {c['train_s']:.1f} |"
        )
    champion = evaluation["champion"]
    if champion is not None:
        m = champion["metrics"]
        rows.append(
            f"| previous champion {champion['version']} | fraud | n/a | n/a | "
            f"{m['auroc']:.4f} | {m['auprc']:.4f} | {m.get('recall_at_1pct', float('nan')):.4f} | "
            f"{m.get('recall_at_5pct', float('nan')):.4f} | {m['ece']:.4f} | n/a |"
        )
    table = [
        "| candidate | scores | val AUPRC | val AUROC | test AUROC | test AUPRC | "
        "recall@1% | recall@5% | ECE | train s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    test = summary["split"]["test"]
    gate_info = evaluation["gate"]
    bags = [
        f"`{'stacked_trees' if family == 'stacked' else family}` {t['bag']}"
        + (f" (best rounds {', '.join(map(str, t['member_rounds']))})" if t["bag"] > 1 else "")
        for family, t in evaluation.get("trees", {}).items()
    ]
    bagging = (
        [
            "Tree candidates are seed bags: K LightGBM boosters differing only in seed, each "
            "early-stopped on validation, merged into one booster that serves their mean raw "
            "margin (`[baseline] bag`). Bag size K per tree model: " + "; ".join(bags) + ".",
            "",
        ]
        if bags
        else []
    )
    fairness = []
    for column, rows in evaluation["fairness"].items():
        fairness += [
            f"`{column}` (never a model input), all accounts by quartile:",
            "",
            "| group | accounts | mean fraud probability | mean social credit | labelled |"
            " labelled fraud rate |",
            "|---|---|---|---|---|---|",
            *(
                f"| {r['group']} | {r['accounts']} | {r['mean_fraud_probability']:.4f} | "
                f"{r['mean_social_credit']:.2f} | {r['labelled']} | "
                + ("n/a" if r["labelled_fraud_rate"] is None else f"{r['labelled_fraud_rate']:.4f}")
                + " |"
                for r in rows
            ),
            "",
        ]
    lines = [
        f"# Model card: creditgraph {version}",
        "",
        config.description or "Fraud risk and social credit from the relationship graph.",
        "",
        "## Outcome",
        "",
        f"- Gate ({gate_info['metric']}, tolerance {gate_info['tolerance']}): "
        f"{gate_info['reason']}",
        "- Promoted: "
        + ("yes, forced" if evaluation["forced"] else "yes" if evaluation["promoted"] else "no"),
        f"- Fraud score served by `{selected['fraud']}`, social credit by "
        f"`{selected['social']}` (best validation AUPRC among the fraud, respectively the "
        "relationship-only candidates; ties: AUROC, then training time).",
        f"- Training all candidates took {evaluation['timings']['train_s']} s, the whole job "
        f"{evaluation['timings']['total_s']} s.",
        "",
        "## Data",
        "",
        f"- {summary['accounts']} accounts, {summary['labelled']} labelled "
        f"({summary['fraud_labels']} fraud, {summary['legit_labels']} legit); snapshot "
        f"fingerprint `{summary['fingerprint']}`.",
        "- Edges: " + ", ".join(f"{rel} {n}" for rel, n in summary["edges"].items()) + ".",
        f"- Split (seed {config.seed}): "
        + ", ".join(
            f"{k} {v['accounts']} ({v['fraud']} fraud)" for k, v in summary["split"].items()
        )
        + ".",
        f"- Model inputs: {', '.join(summary['features'])}; relations: "
        f"{', '.join(summary['relations'])}.",
        "- Excluded as sensitive: "
        + (", ".join(summary["sensitive_excluded"]) or "none present")
        + ".",
        "",
        f"## Metrics (test split: {test['accounts']} accounts, {test['fraud']} fraud)",
        "",
        "Every candidate is measured on the same held-out test accounts; validation chose, "
        "test only reports. Relationship-only candidates rank fraud from relationships alone "
        "(social credit). ECE is the calibrated probability's expected calibration error; "
        "recall@k% is the share of test fraud in the top k% of test accounts.",
        "",
        *table,
        "",
        *bagging,
        *(f"![{p.removesuffix('.png')}]({p})" for p in plots),
        "",
        "## Intended use",
        "",
        "- Rank accounts for fraud review and pre-screen transfers in the payment flow, with "
        "reason codes an investigator can check.",
        "- Social credit (0-100, higher = more trust) summarises the fraud risk implied by an "
        "account's relationships alone; see docs/social_credit.md for its definition.",
        "",
        "## Limitations",
        "",
        "- Not a sole basis for an adverse decision about a person: scores are evidence for "
        "a human review, and social credit judges people by whom they are connected to.",
        "- Labels come from closed investigations: accounts that were never investigated are "
        "under-represented, and the calibrated probabilities reflect the labelled base rate, "
        "not necessarily the population's.",
        "- With few test positives the metrics above are noisy; compare versions on the "
        "gate's metric with its tolerance in mind.",
        "- Transductive: scores come from the graph snapshot; accounts created later need the "
        "inductive path or the next batch run.",
        "- Sensitive columns are excluded from the inputs, but proxies (communities, regions, "
        "devices) can still carry them; the table below is the check.",
        "",
        "## Fairness check",
        "",
        *(fairness or ["No sensitive column is present in the data.", ""]),
        "## Configuration",
        "",
        "```json",
        json.dumps(config.model_dump(mode="json"), indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)
