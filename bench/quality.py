"""Model quality as a user gets it: the product's own CLI against an XGBoost baseline.

For every graph: a fresh embedded store, ``creditgraph import`` of its CSV files,
``creditgraph train`` (the default job unless ``--config``), ``creditgraph score --out``,
then test metrics on labels the product never saw:
- ``real:NAME``: ``../shared/data/real/NAME`` (accounts, links, labels imported; the held-out
  ``test_labels.csv`` is read here only, after scoring);
- ``synth:SEED``: ``creditgraph synth --accounts N --seed SEED``; labels.csv is imported, and
  the test set is every account nobody labelled, against the planted ground truth.

In the same run, on the same store and the SAME split as the product's job (its
``stratified_split`` with the job's shares and seed: train on its training labels, stop
early on its validation labels), an XGBoost baseline on the raw account columns and each
account's own transfer statistics by direction (counterparties, transfers, total / mean /
largest amount, active span, recency), plus per relation view (transfers by direction) 1- and
2-hop neighbour aggregates of those columns (1-hop mean / max / std, 2-hop mean / max, and
the neighbour count), written here with numpy/scipy and independent of the product's feature
code, averaged over ``--baseline-seeds`` seeds; and the same on the raw columns alone.
Every candidate of the job (``candidate_scores.npz`` in its version folder) is measured on
the same test accounts.

    .venv/bin/python bench/quality.py --work /tmp/cg-quality
    .venv/bin/python bench/quality.py --graphs real:tolokers --config training/large.toml

Prints one table per graph and writes ``--work/quality.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

from creditgraph.config import Settings
from creditgraph.ml.train import stratified_split
from creditgraph.store.factory import open_store
from creditgraph.training_config import TrainingConfig, load_training_config

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
#: The console script a user runs (installed next to this interpreter by ``pip install``).
CLI = [str(Path(sys.executable).with_name("creditgraph"))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--graphs",
        default="real:tolokers,real:amazon_upu,synth:1,synth:2",
        help="comma-separated real:NAME / synth:SEED",
    )
    p.add_argument("--synth-accounts", type=int, default=20_000)
    p.add_argument("--config", type=Path, default=None, help="job file (default: default job)")
    p.add_argument("--work", type=Path, default=Path("/tmp/cg-quality"))
    p.add_argument("--baseline-seeds", type=int, default=3)
    p.add_argument("--real-dir", type=Path, default=REAL)
    args = p.parse_args()
    job = load_training_config(args.config) if args.config else TrainingConfig()
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for graph in args.graphs.split(","):
        results.append(run_graph(graph.strip(), args, job))
        (args.work / "quality.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print("\n## Summary (test AUROC / AUPRC)\n")
    print("| graph | champion | served | XGBoost raw+neighbours | XGBoost raw | at or above? |")
    print("|---|---|---|---|---|---|")
    for r in results:
        s, b, raw = r["served"], r["baseline"]["raw_neighbours"], r["baseline"]["raw"]
        ok = s["auroc"] >= b["auroc"] and s["auprc"] >= b["auprc"]
        print(
            f"| {r['graph']} | {r['champion']} | {s['auroc']:.4f} / {s['auprc']:.4f} | "
            f"{b['auroc']:.4f} / {b['auprc']:.4f} | {raw['auroc']:.4f} / {raw['auprc']:.4f} | "
            f"{'yes' if ok else 'NO'} |"
        )


def run_graph(graph: str, args: argparse.Namespace, job: TrainingConfig) -> dict[str, Any]:
    kind, _, name = graph.partition(":")
    work = args.work / graph.replace(":", "-")
    shutil.rmtree(work, ignore_errors=True)
    files = work / "files"
    files.mkdir(parents=True)
    env = {**os.environ, "CREDITGRAPH_DATA_DIR": str(work / "data")}
    if kind == "real":
        src = args.real_dir / name
        kinds = ["accounts", "links", "labels"]
        for k in kinds:
            shutil.copy(src / f"{k}.csv", files / f"{k}.csv")
        test = _read_labels(src / "test_labels.csv")
    elif kind == "synth":
        _cli(
            ["synth", "--accounts", str(args.synth_accounts), "--seed", name, "--out", str(files)],
            env,
        )
        kinds = ["accounts", "transfers", "links", "labels"]
        truth = json.loads((files / "ground_truth.json").read_text(encoding="utf-8"))
        fraud = set(truth["fraud_accounts"])
        labelled = set(_read_labels(files / "labels.csv"))
        with (files / "accounts.csv").open(encoding="utf-8") as f:
            ids = [row["account_id"] for row in csv.DictReader(f)]
        test = {a: int(a in fraud) for a in ids if a not in labelled}
    else:
        raise SystemExit(f"unknown graph {graph!r}: use real:NAME or synth:SEED")
    print(
        f"\n# {graph}  (load {os.getloadavg()[0]:.2f}, {time.strftime('%H:%M:%S')} UTC)", flush=True
    )
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    for k in kinds:
        _cli(["import", k, str(files / f"{k}.csv")], env)
    timings["import_s"] = round(time.perf_counter() - clock, 1)
    clock = time.perf_counter()
    train_cmd = ["train", *(["--config", str(args.config)] if args.config else [])]
    trained = json.loads(_cli(train_cmd, env).strip().splitlines()[-1])
    timings["train_s"] = round(time.perf_counter() - clock, 1)
    clock = time.perf_counter()
    _cli(["score", "--out", str(work / "scores.csv")], env)
    timings["score_s"] = round(time.perf_counter() - clock, 1)

    served = _served_scores(work / "scores.csv")
    ids = list(test)
    y = np.array([test[a] for a in ids])
    out: dict[str, Any] = {
        "graph": graph,
        "test_accounts": len(ids),
        "test_positives": int(y.sum()),
        "timings": timings,
        "version": trained["version"],
    }
    out["served"] = _metrics(y, np.array([served[a] for a in ids]))
    version_dir = work / "data" / "models" / trained["version"]
    evaluation = json.loads((version_dir / "evaluation.json").read_text(encoding="utf-8"))
    out["champion"] = evaluation["selected"]["fraud"]
    out["social"] = evaluation["selected"]["social"]
    scores = np.load(version_dir / "candidate_scores.npz")
    index = {a: i for i, a in enumerate(scores["account_id"].tolist())}
    rows = np.array([index[a] for a in ids])
    out["candidates"] = {}
    for c in evaluation["candidates"]:
        m = _metrics(y, scores[c["name"]][rows])
        m.update(val_auprc=c["validation"]["auprc"], val_auroc=c["validation"]["auroc"])
        m["train_s"] = c["train_s"]
        out["candidates"][c["name"]] = m
    clock = time.perf_counter()
    out["baseline"] = _baseline(env, job, ids, y, args.baseline_seeds)
    timings["baseline_s"] = round(time.perf_counter() - clock, 1)
    _print(out)
    return out


def _baseline(
    env: dict[str, str], job: TrainingConfig, ids: list[str], y: np.ndarray, seeds: int
) -> dict[str, dict[str, float]]:
    os.environ["CREDITGRAPH_DATA_DIR"] = env["CREDITGRAPH_DATA_DIR"]
    store = open_store(Settings())
    try:
        snap = store.snapshot()
    finally:
        store.close()
    split = stratified_split(snap.labels, val=job.split.val, test=job.split.test, seed=job.seed)
    keep = [j for j, n in enumerate(snap.feature_names) if n not in job.sensitive]
    raw = snap.features[:, keep].astype(np.float32)
    n = snap.num_accounts
    # (account, neighbour) adjacency per relation view: payees and payers separately.
    views: list[sp.csr_matrix] = []
    own = [raw]
    as_of = max(
        (
            float(np.max(es.last_ts))
            for es in snap.edges.values()
            if es.last_ts is not None and len(es)
        ),
        default=0.0,
    )
    for _rel, es in sorted(snap.edges.items()):
        if len(es) == 0:
            continue
        if es.directed:
            for rows, cols in ((es.src, es.dst), (es.dst, es.src)):
                views.append(_adjacency(rows, cols, n))
                own.append(_transfer_stats(es, rows, n, as_of))
        else:
            views.append(_adjacency(np.r_[es.src, es.dst], np.r_[es.dst, es.src], n))
    # Own block: raw columns + each account's own transfer statistics by direction; then
    # per relation view 1- and 2-hop aggregates of that block and the degree.
    base = np.hstack(own).astype(np.float32)
    blocks = [base]
    for adj in views:
        blocks += _aggregates(adj, base)
    full = np.hstack(blocks).astype(np.float32)
    index = {a: i for i, a in enumerate(snap.account_ids)}
    rows = np.array([index[a] for a in ids])
    out = {}
    for name, x in (("raw_neighbours", full), ("raw", raw)):
        runs = [_xgb(x, snap.labels, split, rows, y, seed) for seed in range(seeds)]
        out[name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        out[name]["columns"] = float(x.shape[1])
    return out


def _adjacency(rows: np.ndarray, cols: np.ndarray, n: int) -> sp.csr_matrix:
    adj = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # duplicate pairs count once
    return adj


def _transfer_stats(es: Any, rows: np.ndarray, n: int, as_of: float) -> np.ndarray:
    """Per account, over its transfer pairs in one direction (``rows`` is the account side):
    counterparties, transfers, total and mean amount, largest pair total, active span and
    days since the last transfer (NaN without transfers)."""
    day = 86_400.0
    pairs = np.bincount(rows, minlength=n).astype(np.float64)
    count = np.bincount(rows, weights=es.count, minlength=n)
    amount = np.bincount(rows, weights=es.total_amount, minlength=n)
    largest = np.zeros(n)
    np.maximum.at(largest, rows, es.total_amount)
    first = np.full(n, np.inf)
    np.minimum.at(first, rows, es.first_ts)
    last = np.full(n, -np.inf)
    np.maximum.at(last, rows, es.last_ts)
    has = pairs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = [
            np.log1p(pairs),
            np.log1p(count),
            np.log1p(amount),
            np.where(has, amount / np.maximum(count, 1.0), np.nan),
            np.where(has, np.log1p(largest), np.nan),
            np.where(has, (last - first) / day, np.nan),
            np.where(has, (as_of - last) / day, np.nan),
        ]
    return np.stack(cols, axis=1)


def _aggregates(adj: sp.csr_matrix, x: np.ndarray) -> list[np.ndarray]:
    """1-hop mean / max / std, 2-hop mean / max of ``x`` over ``adj`` rows (missing values
    as 0), and the degree."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    safe = np.where(np.isfinite(x), x, 0.0)
    inv = sp.diags(1.0 / np.maximum(deg, 1.0))
    mean1 = inv @ (adj @ safe)
    std1 = np.sqrt(np.maximum(inv @ (adj @ (safe * safe)) - mean1 * mean1, 0.0))
    mean2 = inv @ (adj @ mean1)
    max1 = _neighbour_max(adj, safe)
    max2 = _neighbour_max(adj, max1)
    return [mean1, max1, std1, mean2, max2, np.log1p(deg)[:, None]]


def _neighbour_max(adj: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
    # CSR keeps each row's neighbours contiguous: one reduceat over rows that have any.
    out = np.zeros_like(x)
    has = np.diff(adj.indptr) > 0
    out[has] = np.maximum.reduceat(x[adj.indices], adj.indptr[:-1][has], axis=0)
    return out


def _xgb(
    x: np.ndarray, labels: np.ndarray, split: Any, rows: np.ndarray, y: np.ndarray, seed: int
) -> dict[str, float]:
    y_train = labels[split.train]
    pos = max(1, int(y_train.sum()))
    model = xgb.XGBClassifier(
        n_estimators=1000,
        learning_rate=0.05,
        max_depth=6,
        subsample=0.8,
        colsample_bytree=0.8,
        scale_pos_weight=(len(y_train) - pos) / pos,
        eval_metric="aucpr",
        early_stopping_rounds=50,
        tree_method="hist",
        n_jobs=2,
        random_state=seed,
    )
    model.fit(x[split.train], y_train, eval_set=[(x[split.val], labels[split.val])], verbose=False)
    return _metrics(y, model.predict_proba(x[rows])[:, 1])


def _metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    n = len(y)
    order = np.argsort(-s, kind="stable")

    def recall(frac: float) -> float:
        return float(y[order[: max(1, round(frac * n))]].sum() / max(1, y.sum()))

    return {
        "auroc": float(roc_auc_score(y, s)),
        "auprc": float(average_precision_score(y, s)),
        "recall_at_1pct": recall(0.01),
        "recall_at_5pct": recall(0.05),
    }


def _print(r: dict[str, Any]) -> None:
    t = r["timings"]
    print(
        f"test: {r['test_accounts']} accounts, {r['test_positives']} fraud; "
        f"import {t['import_s']} s, train {t['train_s']} s, score {t['score_s']} s, "
        f"baseline {t.get('baseline_s')} s"
    )
    print("| model | val AUPRC | test AUROC | test AUPRC | recall@1% | recall@5% | train s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, m in r["candidates"].items():
        mark = (
            " (champion)" if name == r["champion"] else " (social)" if name == r["social"] else ""
        )
        print(
            f"| {name}{mark} | {m['val_auprc']:.4f} | {m['auroc']:.4f} | {m['auprc']:.4f} | "
            f"{m['recall_at_1pct']:.4f} | {m['recall_at_5pct']:.4f} | {m['train_s']:.1f} |"
        )
    s = r["served"]
    print(
        f"| **served fraud_probability** | | {s['auroc']:.4f} | {s['auprc']:.4f} | "
        f"{s['recall_at_1pct']:.4f} | {s['recall_at_5pct']:.4f} | |"
    )
    for name, m in r["baseline"].items():
        print(
            f"| XGBoost {name} ({int(m['columns'])} columns) | | {m['auroc']:.4f} | "
            f"{m['auprc']:.4f} | {m['recall_at_1pct']:.4f} | {m['recall_at_5pct']:.4f} | |"
        )
    sys.stdout.flush()


def _read_labels(path: Path) -> dict[str, int]:
    with path.open(encoding="utf-8") as f:
        return {row["account_id"]: int(row["label"] == "fraud") for row in csv.DictReader(f)}


def _served_scores(path: Path) -> dict[str, float]:
    with path.open(encoding="utf-8") as f:
        return {row["account_id"]: float(row["fraud_probability"]) for row in csv.DictReader(f)}


def _cli(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*CLI, *argv], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"creditgraph {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


if __name__ == "__main__":
    main()
