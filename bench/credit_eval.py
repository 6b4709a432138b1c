"""The credit profile's evaluation: held-out open obligations of a world never used for
choosing, beside XGBoost baselines trained on the same rows, and a fairness table.

Two synthetic worlds (``creditgraph synth``: obligations with a latent capacity, community
shocks only repayment records reveal, a fifth thin-file):
- the DEVELOPMENT world (``--dev-seed``) is the one choices are made on: ``--choose`` picks
  the social dimension's learner (trees on one-hop aggregates or the graph network of
  ``ml/credit_gnn.py``: the one whose served ``p_default`` ranks the dev world's open
  obligations best), then fits a non-negative logistic regression of its held-out defaults on
  the dimensions' log-odds and prints the weights it suggests (the job file's published
  weights came from it);
- the TEST world (``--test-seed``) is only reported: the product's own path (a fresh embedded
  store, ``import`` of the five files, ``train_credit_model`` with the job file, scoring as of
  the data's end), then AUROC / AUPRC on the accounts' open obligations, whose outcomes only
  ``credit_truth.csv`` knows. Both social learners are trained and reported there; the one
  chosen on the dev world (or the job's, without ``--choose``) gets the fairness table.

In the same run and on the same training rows (the job's cuts, its validation accounts for
early stopping), XGBoost on (a) own account columns + own history (the four own blocks) and
(b) those + friend/counterparty aggregates (the social block and the neighbours' mean own
columns), averaged over ``--baseline-seeds`` seeds.

    .venv/bin/python bench/credit_eval.py --accounts 20000 --work /tmp/cg-credit

Prints markdown tables and writes ``--work/credit_eval.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from fairlearn.metrics import (  # type: ignore[import-untyped]
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    selection_rate,
)
from scipy.optimize import minimize
from sklearn.metrics import average_precision_score, roc_auc_score

from creditgraph.config import CreditSettings
from creditgraph.ingest.csvfile import Kind
from creditgraph.ml.credit_features import (
    DIMENSIONS,
    OWN_DIMENSIONS,
    CreditData,
    features_at,
    relation_pairs,
    targets_after,
)
from creditgraph.ml.credit_model import (
    REVIEW_CUTOFF,
    CreditModel,
    _split,
    score_data,
    training_rows,
)
from creditgraph.ml.credit_model import TrainSettings as ModelTrainSettings
from creditgraph.services.credit import credit_data, load_credit_model, train_credit_model
from creditgraph.services.ingest import import_file
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import TrainingConfig, load_training_config

REPO = Path(__file__).resolve().parents[1]
KINDS: tuple[Kind, ...] = ("accounts", "transfers", "links", "labels", "obligations")
OWN_COLUMNS = ("kyc_level", "num_devices", "avg_session_minutes", "failed_logins_30d")


SOCIAL_MODELS = ("trees", "gnn")
#: AUROC the network must gain over the trees on the dev world to be chosen.
GNN_MARGIN = 0.005


@dataclass
class World:
    seed: int
    store: EmbeddedStore
    models: Path
    net: Path
    data: CreditData
    model: CreditModel
    #: Per social learner: the version trained with it (same job otherwise).
    variants: dict[str, CreditModel]
    train_s: dict[str, float]
    own: np.ndarray  # raw own account columns (OWN_COLUMNS), all accounts
    age_years: np.ndarray
    region: list[str]


def build(seed: int, n: int, work: Path, job: TrainingConfig) -> World:
    root = work / f"seed{seed}"
    shutil.rmtree(root, ignore_errors=True)
    net = root / "net"
    t0 = time.perf_counter()
    generate(n, seed, net)
    store = EmbeddedStore(root / "store.db")
    for file_kind in KINDS:
        import_file(store, file_kind, net / f"{file_kind}.csv")
    t1 = time.perf_counter()
    variants: dict[str, CreditModel] = {}
    train_s: dict[str, float] = {}
    for kind in SOCIAL_MODELS:
        t2 = time.perf_counter()
        credit = job.credit.model_copy(update={"social_model": kind})
        train_credit_model(
            store, root / "models", job.model_copy(update={"credit": credit}), CreditSettings()
        )
        variants[kind] = load_credit_model(root / "models")
        train_s[kind] = round(time.perf_counter() - t2, 1)
        gnn = variants[kind].dims["social"].gnn
        extra = f" (network: {gnn.metrics})" if gnn is not None else ""
        print(f"world {seed}: credit training, social={kind}: {train_s[kind]:.0f}s{extra}")
    model = variants[job.credit.social_model]
    print(f"world {seed}: built+imported {t1 - t0:.0f}s")
    snap = store.snapshot()
    data = credit_data(store, model.identity_features, "granted", snap)
    own = np.column_stack([snap.features[:, snap.feature_names.index(c)] for c in OWN_COLUMNS])
    age = snap.features[:, snap.feature_names.index("age_years")]
    regions = store.property_values("region")
    region = [regions.get(a, "") for a in snap.account_ids]
    return World(
        seed, store, root / "models", net, data, model, variants, train_s, own, age, region
    )


def held_out(w: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accounts with open obligations at the data's end, whether any of them defaulted (the
    truth only the generator knows), and whether the account is thin-file."""
    ix = {a: i for i, a in enumerate(w.data.account_ids)}
    default: dict[int, int] = {}
    with (w.net / "credit_truth.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            i = ix[r["account_id"]]
            default[i] = max(default.get(i, 0), int(r["defaulted"]))
    thin: dict[int, int] = {}
    with (w.net / "credit_accounts_truth.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            thin[ix[r["account_id"]]] = int(r["thin_file"])
    rows = np.array(sorted(default), dtype=np.int64)
    return rows, np.array([default[i] for i in rows]), np.array([thin.get(i, 0) for i in rows])


def neighbour_mean(data: CreditData, t: float, own: np.ndarray) -> np.ndarray:
    """Mean own columns of each account's friends and counterparties (consenting), as of t."""
    n = data.num_accounts
    pairs = relation_pairs(data, t)
    a = np.concatenate([p[0] for p in pairs.values()])
    b = np.concatenate([p[1] for p in pairs.values()])
    cnt = np.bincount(a, minlength=n).astype(np.float64)
    filled = np.nan_to_num(own, nan=np.nanmean(own, axis=0))
    out = np.column_stack(
        [np.bincount(a, weights=filled[b, j], minlength=n) for j in range(own.shape[1])]
    )
    return out / np.maximum(cnt, 1.0)[:, None]


def baseline_matrices(
    w: World, settings: ModelTrainSettings, rows_eval: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per baseline: (X_train_rows, y, val mask, X_eval): on the product's training rows."""
    data = w.data
    blocks, accounts, y, _, _ = training_rows(data, w.model.as_of, settings)
    val = _split(accounts, settings.val_share, settings.seed)
    # Neighbour means per cut, matched to the rows of that cut.
    cut_rows: list[np.ndarray] = []
    for days in settings.cuts_days:
        t = w.model.as_of - days * 86_400.0
        _, rows, _ = targets_after(data, t, settings.horizon_days, w.model.as_of)
        if len(rows):
            cut_rows.append(neighbour_mean(data, t, w.own)[rows])
    nb_train = np.vstack(cut_rows)
    own_train = w.own[accounts]
    own_x = np.hstack([own_train, *(blocks[d].x for d in OWN_DIMENSIONS)])
    agg_x = np.hstack([own_x, blocks["social"].x, nb_train])
    owed = np.zeros(len(data.ob_account), dtype=bool)
    ev = features_at(
        data, w.model.as_of, rows_eval, owed, w.model.prior_default, w.model.prior_late
    )
    own_e = np.hstack([w.own[rows_eval], *(ev[d].x for d in OWN_DIMENSIONS)])
    agg_e = np.hstack(
        [own_e, ev["social"].x, neighbour_mean(data, w.model.as_of, w.own)[rows_eval]]
    )
    return {
        "xgb_own": (own_x, y, val, own_e, accounts),
        "xgb_own_plus_aggregates": (agg_x, y, val, agg_e, accounts),
    }


def xgb_scores(
    x: np.ndarray, y: np.ndarray, val: np.ndarray, xe: np.ndarray, seeds: int
) -> np.ndarray:
    out = np.zeros(len(xe))
    for s in range(seeds):
        clf = xgb.XGBClassifier(
            n_estimators=800,
            learning_rate=0.05,
            max_depth=4,
            subsample=0.8,
            colsample_bytree=0.8,
            min_child_weight=5,
            eval_metric="auc",
            early_stopping_rounds=50,
            random_state=s,
            n_jobs=2,
        )
        clf.fit(x[~val], y[~val], eval_set=[(x[val], y[val])], verbose=False)
        out += clf.predict_proba(xe)[:, 1]
    return out / seeds


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    if len(np.unique(y)) < 2:
        return {"auroc": math.nan, "auprc": math.nan, "n": len(y)}
    return {
        "auroc": float(roc_auc_score(y, p)),
        "auprc": float(average_precision_score(y, p)),
        "n": len(y),
        "positives": int(y.sum()),
    }


def groups(w: World, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Sensitive columns and network positions of the evaluated accounts."""
    age = w.age_years[rows]
    age_group = np.where(
        age < 30, "18-29", np.where(age < 45, "30-44", np.where(age < 60, "45-59", "60+"))
    )
    pairs = relation_pairs(w.data, w.model.as_of)
    n = w.data.num_accounts
    a = np.concatenate([p[0] for p in pairs.values()])
    b = np.concatenate([p[1] for p in pairs.values()])
    key = np.unique(a * n + b)
    degree = np.bincount(key // n, minlength=n)[rows]
    ranks = np.argsort(np.argsort(degree, kind="stable"), kind="stable")
    decile = np.minimum(ranks * 10 // max(len(rows), 1), 9)
    account_age = (w.model.as_of - w.data.created_at[rows]) / 86_400.0
    return {
        "age_years": age_group,
        "region": np.array([w.region[i] for i in rows]),
        "isolated": np.where(degree == 0, "isolated", "connected"),
        "degree_decile": np.array([f"d{int(d) + 1:02d}" for d in decile]),
        "new_account": np.where(account_age < 180, "new (<180 d)", "established"),
    }


def fairness(
    y_default: np.ndarray,
    score: np.ndarray,
    p_default: np.ndarray,
    group: np.ndarray,
    boot: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Selection at the review band (score >= REVIEW_CUTOFF: reaches at least a review),
    demographic parity and equal opportunity (among those who repay) with bootstrap 95%
    intervals, and calibration (mean p_default beside the observed default rate) by group."""
    good = 1 - y_default
    selected = (score >= REVIEW_CUTOFF).astype(int)
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate},
        y_true=good,
        y_pred=selected,
        sensitive_features=group,
    )
    dpd = float(demographic_parity_difference(good, selected, sensitive_features=group))
    eod = float(equal_opportunity_difference(good, selected, sensitive_features=group))
    boots_d, boots_e = [], []
    for _ in range(boot):
        i = rng.integers(0, len(good), len(good))
        if len(np.unique(group[i])) < 2:
            continue
        boots_d.append(
            demographic_parity_difference(good[i], selected[i], sensitive_features=group[i])
        )
        boots_e.append(
            equal_opportunity_difference(good[i], selected[i], sensitive_features=group[i])
        )
    per: dict[str, Any] = {}
    for g in sorted(np.unique(group)):
        m = group == g
        per[str(g)] = {
            "n": int(m.sum()),
            "selection_rate": float(frame.by_group["selection_rate"][g]),
            "mean_p_default": float(p_default[m].mean()),
            "observed_default_rate": float(y_default[m].mean()),
        }
    return {
        "demographic_parity_difference": dpd,
        "dpd_95": [float(np.nanpercentile(boots_d, 2.5)), float(np.nanpercentile(boots_d, 97.5))],
        "equal_opportunity_difference": eod,
        "eod_95": [float(np.nanpercentile(boots_e, 2.5)), float(np.nanpercentile(boots_e, 97.5))],
        "groups": per,
    }


def choose_social_model(w: World, rows: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """On the DEVELOPMENT world only: the social learner whose served ``p_default``
    (inclusion_only) ranks the held-out open obligations best; its dimension alone beside."""
    out: dict[str, Any] = {}
    _, _, thin = held_out(w)
    t = thin.astype(bool)
    for kind, model in w.variants.items():
        scored, _ = score_data(model, w.data, rows, "inclusion_only", 0.1)
        social = -np.nan_to_num(scored.log_odds["social"])
        out[kind] = {
            "p_default_auroc": metrics(y, scored.p_default)["auroc"],
            "social_auroc": metrics(y, social)["auroc"],
            "thin_p_default_auroc": metrics(y[t], scored.p_default[t])["auroc"],
            "thin_social_auroc": metrics(y[t], social[t])["auroc"],
            "train_s": w.train_s[kind],
        }
    # The trees are simpler and cheaper: the network must win by more than noise.
    gain = out["gnn"]["p_default_auroc"] - out["trees"]["p_default_auroc"]
    out["chosen"] = "gnn" if gain > GNN_MARGIN else "trees"
    return out


def choose_weights(w: World, rows: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """On the DEVELOPMENT world only: non-negative weights of the dimensions' log-odds."""
    scored, _ = score_data(w.model, w.data, rows, "symmetric", 0.1)
    x = np.column_stack([np.nan_to_num(scored.log_odds[d] - w.model.lo_prior) for d in DIMENSIONS])
    good = 1 - y

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta[:-1] + theta[-1]
        p = 1 / (1 + np.exp(-z))
        eps = 1e-12
        value = -np.mean(good * np.log(p + eps) + (1 - good) * np.log(1 - p + eps))
        g = p - good
        return float(value), np.r_[x.T @ g, g.sum()] / len(good)

    k = len(DIMENSIONS)
    fit = minimize(loss, np.r_[np.ones(k), 0.0], jac=True, bounds=[(0, None)] * k + [(None, None)])
    return {d: round(float(c), 2) for d, c in zip(DIMENSIONS, fit.x[:-1], strict=True)}


def evaluate(
    w: World, settings: ModelTrainSettings, boot: int, seeds: int, served: str
) -> dict[str, Any]:
    """``served``: the social learner chosen on the development world (its version gets
    the fairness table and the guard's counts); both are reported."""
    w.model = w.variants[served]
    rows, y, thin = held_out(w)
    thin_m = thin.astype(bool)
    out: dict[str, Any] = {
        "seed": w.seed,
        "accounts_evaluated": len(rows),
        "default_rate": float(y.mean()),
        "thin_file_share": float(thin_m.mean()),
        "model_version": w.model.version,
        "served_social_model": served,
        "versions": {k: m.version for k, m in w.variants.items()},
        "train_s": w.train_s,
        "weights": w.model.weights,
    }
    table: dict[str, Any] = {}
    for kind, model in w.variants.items():
        for policy in ("inclusion_only", "symmetric", "off"):
            scored, _ = score_data(model, w.data, rows, policy, 0.1)
            p = scored.p_default
            table[f"{kind}: p_default[{policy}]"] = {
                "all": metrics(y, p),
                "thin": metrics(y[thin_m], p[thin_m]),
            }
            if policy == "inclusion_only" and kind == served:
                guarded = scored
            if policy == "inclusion_only":
                s = -np.nan_to_num(scored.log_odds["social"])
                table[f"{kind}: dimension:social"] = {
                    "all": metrics(y, s),
                    "thin": metrics(y[thin_m], s[thin_m]),
                }
    table["composite_without_social"] = {
        "all": metrics(y, -guarded.composite_without_social),
        "thin": metrics(y[thin_m], -guarded.composite_without_social[thin_m]),
    }
    for d in OWN_DIMENSIONS:
        s = -np.nan_to_num(guarded.log_odds[d])
        table[f"dimension:{d}"] = {"all": metrics(y, s), "thin": metrics(y[thin_m], s[thin_m])}
    t0 = time.perf_counter()
    for name, (x, yt, val, xe, _) in baseline_matrices(w, settings, rows).items():
        p = xgb_scores(x, yt, val, xe, seeds)
        table[name] = {"all": metrics(y, p), "thin": metrics(y[thin_m], p[thin_m])}
    out["baseline_s"] = round(time.perf_counter() - t0, 1)
    out["metrics"] = table
    rng = np.random.default_rng(0)
    out["fairness"] = {
        name: fairness(y, guarded.composite, guarded.p_default, g, boot, rng)
        for name, g in groups(w, rows).items()
    }
    out["social_guard"] = {
        "raised": int((guarded.points["social"] > 0).sum()),
        "would_have_lowered": int((guarded.social_raw_points < 0).sum()),
        "mean_points_added": float(guarded.points["social"].mean()),
    }
    return out


def report_text(r: dict[str, Any]) -> str:
    lines: list[str] = []
    say = lines.append
    say(
        f"\n## test world seed {r['seed']}: {r['accounts_evaluated']} accounts with open "
        f"obligations, default rate {r['default_rate']:.3f}, thin-file {r['thin_file_share']:.1%}; "
        f"served social model {r['served_social_model']} (chosen on the development world); "
        f"credit training {r['train_s']} s\n"
    )
    say("| scorer | AUROC | AUPRC | thin-file AUROC | thin-file AUPRC |")
    say("|---|---|---|---|---|")
    for name, m in r["metrics"].items():
        a, t = m["all"], m["thin"]
        cells = [a["auroc"], a["auprc"], t["auroc"], t["auprc"]]
        say(f"| {name} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    for col, f in r["fairness"].items():
        say(f"\n### fairness by {col} (selected = score >= {REVIEW_CUTOFF:.0f})\n")
        say(
            f"demographic parity difference {f['demographic_parity_difference']:.3f} "
            f"[{f['dpd_95'][0]:.3f}, {f['dpd_95'][1]:.3f}]; equal opportunity difference "
            f"{f['equal_opportunity_difference']:.3f} "
            f"[{f['eod_95'][0]:.3f}, {f['eod_95'][1]:.3f}]\n"
        )
        say("| group | n | selection rate | mean p_default | observed default rate |")
        say("|---|---|---|---|---|")
        for g, v in f["groups"].items():
            say(
                f"| {g} | {v['n']} | {v['selection_rate']:.3f} | {v['mean_p_default']:.3f} | "
                f"{v['observed_default_rate']:.3f} |"
            )
    say(f"\nsocial guard: {r['social_guard']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--accounts", type=int, default=20_000)
    ap.add_argument("--dev-seed", type=int, default=101)
    ap.add_argument("--test-seed", type=int, default=202)
    ap.add_argument("--config", type=Path, default=REPO / "training" / "default.toml")
    ap.add_argument("--work", type=Path, default=Path("/tmp/cg-credit"))
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--baseline-seeds", type=int, default=3)
    ap.add_argument(
        "--choose", action="store_true", help="also build the dev world and print weights"
    )
    ap.add_argument(
        "--dev-only", action="store_true", help="with --choose: stop after the dev world"
    )
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    job = load_training_config(args.config)
    c = job.credit
    settings = ModelTrainSettings(
        weights=c.weights,
        identity_features=c.identity_features,
        cuts_days=c.cuts_days,
        horizon_days=c.horizon_days,
        seed=job.seed,
    )
    report: dict[str, Any] = {"accounts": args.accounts, "config": str(args.config)}
    served = c.social_model
    if args.choose:
        dev = build(args.dev_seed, args.accounts, args.work, job)
        rows, y, _ = held_out(dev)
        report["dev_social_model"] = choose_social_model(dev, rows, y)
        served = report["dev_social_model"]["chosen"]
        print(f"dev world {args.dev_seed}: social model {report['dev_social_model']}")
        dev.model = dev.variants[served]
        report["dev_suggested_weights"] = choose_weights(dev, rows, y)
        print(f"dev world {args.dev_seed}: suggested weights {report['dev_suggested_weights']}")
        dev.store.close()
        if args.dev_only:
            args.work.mkdir(parents=True, exist_ok=True)
            (args.work / "credit_eval.json").write_text(json.dumps(report, indent=1, default=float))
            return
    test = build(args.test_seed, args.accounts, args.work, job)
    report["test"] = evaluate(test, settings, args.bootstrap, args.baseline_seeds, served)
    test.store.close()
    text = report_text(report["test"])
    print(text)
    # The evaluation belongs in the model card of the version it measured.
    card = test.models / "credit" / test.model.version / "card.md"
    card.write_text(card.read_text() + "\n## Held-out evaluation (bench/credit_eval.py)\n" + text)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "credit_eval.json").write_text(json.dumps(report, indent=1, default=float))
    print(f"\nwrote {args.work / 'credit_eval.json'}")


if __name__ == "__main__":
    main()
