"""Ring detection quality on a tuning world and a held-out world, beside a naive baseline.

    .venv/bin/python bench/rings.py                       # tuning world s1 + held-out world s2
    .venv/bin/python bench/rings.py --worlds default:42 --accounts 100000

Each world (``NAME:SEED``; ``tuning`` and ``heldout`` are the look-alike worlds of
``creditgraph.synth.lookalike``, ``default`` the default generator) runs the path a user runs,
through the service functions the CLI calls: generate the CSVs, ``import`` them into a fresh
embedded store under ``--work``, ``train`` (training/demo.toml) and ``score`` every account,
``rings detect`` with the learned scorer (``--min-score 0`` so the whole ranking is stored),
then ``rings export`` (the stored rings), and scores the export against ground_truth.json. A
reused work dir skips the import and training (the store already holds the network and its
scores). Thresholds and model choices were made on ``tuning:1`` only; ``heldout:2`` is a
differently parameterised world (sizes, amounts, timings, label rates, look-alike mix) and a
different seed, never used for choosing.

Metrics (a detected ring matches a planted ring, or a look-alike group, when their member
Jaccard is >= 0.5; K = number of planted rings): ring precision@K (top-K detected rings that
match a planted ring), recall@2K (planted rings matched in the top 2K), per-kind recall@2K,
look-alike groups wrongly flagged in the top K and at the default threshold, planted rings
with no labelled member found in the top 2K, and precision / recall at the reporting
threshold the service uses by default. ``unsupervised`` is the fallback scorer on the same
snapshot with every label hidden (``rings.detect`` directly, with the stored scores).

The baseline, computed in the same run on the same store: connected components over shared
identifiers and high-risk transfers (a transfer pair whose both ends are among the 2% of
accounts with the highest stored fraud probability, or >= 0.5), of 3-60 accounts (larger
components split into Leiden modularity communities), ranked by a LightGBM model over simple
component features trained on the same weak labels (components containing labelled accounts).

Prints one JSON document; writes only under ``--work``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import igraph as ig
import lightgbm as lgb
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from creditgraph.ingest.csvfile import KINDS
from creditgraph.registry import ModelRegistry
from creditgraph.rings import DetectConfig, detect
from creditgraph.rings.detect import LEARNED_MIN_SCORE, UNSUPERVISED_MIN_SCORE
from creditgraph.rings.graph import RingGraph
from creditgraph.rings.scorer import weak_labels
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.services.rings import detect_rings
from creditgraph.services.scoring import score_all
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.synth.lookalike import generate_world
from creditgraph.training_config import load_training_config

MATCH = 0.5
MIN_MEMBERS, MAX_MEMBERS = 3, 60
DEMO_JOB = Path(__file__).resolve().parents[1] / "training" / "demo.toml"
Group = frozenset[str]


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"machine": _machine(), "argv": argv, "worlds": {}}
    if args.speed is not None:
        out["speed"] = speed(args.speed, args.truth)
        print(json.dumps(out, indent=1))
        return 0
    for spec in args.worlds.split(","):
        name, seed = spec.split(":")
        res = run_world(name, int(seed), args.accounts, work, args)
        out["worlds"][spec] = res
        _say(spec, res)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out, indent=1))
    return 0


def run_world(name: str, seed: int, accounts: int, work: Path, args: Any) -> dict[str, Any]:
    res: dict[str, Any] = {}
    data = work / f"data-{name}-{seed}-{accounts}"
    if not (data / "ground_truth.json").exists():
        t = time.perf_counter()
        if name == "default":
            generate(accounts, seed, data)
        else:
            generate_world(accounts, seed, data, name)
        res["synth_s"] = round(time.perf_counter() - t, 1)
    truth = json.loads((data / "ground_truth.json").read_text())
    planted = [(r["kind"], frozenset(r["members"])) for r in truth["rings"]]
    unlabelled = [not r.get("labelled", True) for r in truth["rings"]]
    lookalikes = [(g["kind"], frozenset(g["members"])) for g in truth.get("lookalikes", [])]
    home = work / f"store-{data.name}"
    store = EmbeddedStore(home / "creditgraph.sqlite")
    try:
        if store.counts().accounts != truth["accounts"]:
            t = time.perf_counter()
            for kind in KINDS:
                import_file(store, kind, data / f"{kind}.csv")
            res["import_s"] = round(time.perf_counter() - t, 1)
        if args.retrain or not store.get_scores():
            registry = ModelRegistry(home / "models")
            t = time.perf_counter()
            trained = retrain(store, registry, load_training_config(DEMO_JOB), force=True)
            res["train_s"] = round(time.perf_counter() - t, 1)
            res["train_outcome"] = trained.outcome
            t = time.perf_counter()
            score_all(store, registry)
            res["score_s"] = round(time.perf_counter() - t, 1)
        # A fresh ranking each run (the stored rings of an earlier run would be continued).
        store.delete_rings([r.ring_id for r in store.list_rings()])
        t = time.perf_counter()
        report = detect_rings(store, DetectConfig(min_score=0.0))
        res["detect_rings_s"] = round(time.perf_counter() - t, 2)
        res["timings"] = report.timings
        res["candidates"] = report.candidates
        res["scorer"] = report.scorer
        exported = sorted(store.list_rings(), key=lambda r: (-r.score, r.ring_id))
        ranked = [frozenset(r.members) for r in exported]
        # The threshold a user gets by default: 0.5 learned, 0.82 unsupervised.
        floor = (
            UNSUPERVISED_MIN_SCORE if report.scorer["mode"] == "unsupervised" else LEARNED_MIN_SCORE
        )
        default = [
            frozenset(r.members) for r in exported if r.score >= float(args.threshold or floor)
        ]
        res["detector"] = evaluate(ranked, planted, unlabelled, lookalikes)
        res["detector"]["at_threshold"] = {
            "threshold": float(args.threshold or floor),
            **_at(default, planted, lookalikes),
        }
        t = time.perf_counter()
        snap = store.snapshot()
        base = baseline(snap, store)
        res["baseline"] = evaluate(base, planted, unlabelled, lookalikes)
        res["baseline"]["detect_s"] = round(time.perf_counter() - t, 2)
        # The fallback: no labels and no verdicts, so nothing supervises the scorer.
        risk = _risk(snap, store)
        masked = dataclasses.replace(snap, labels=np.full(snap.num_accounts, -1, np.int8))
        unsup = detect(masked, risk, DetectConfig(min_score=0.0))
        res["unsupervised"] = evaluate(
            [frozenset(r.members) for r in unsup.rings], planted, unlabelled, lookalikes
        )
        res["unsupervised"]["mode"] = unsup.scorer["mode"]
    finally:
        store.close()
    res["planted"] = len(planted)
    res["lookalike_groups"] = len(lookalikes)
    res["planted_unlabelled"] = int(sum(unlabelled))
    return res


def speed(db: Path, truth_file: Path | None = None) -> dict[str, Any]:
    """Detection time on an existing store (``--speed PATH/creditgraph.sqlite``, a copy: the
    run writes its rings): snapshot apart, ``rings.detect`` (with the store's labels and
    scores), then ``detect_rings`` end to end; with ``--truth ground_truth.json`` the stored
    rings are scored against it."""
    res: dict[str, Any] = {}
    store = EmbeddedStore(db)
    try:
        t = time.perf_counter()
        snap = store.snapshot()
        res["snapshot_s"] = round(time.perf_counter() - t, 1)
        res["accounts"] = snap.num_accounts
        t = time.perf_counter()
        found = detect(snap)
        res["detect_s"] = round(time.perf_counter() - t, 1)
        res["detect_stages_s"] = {k: round(v, 2) for k, v in found.timings.items()}
        res["candidates"] = found.candidates
        res["rings"] = len(found.rings)
        res["scorer"] = {k: v for k, v in found.scorer.items() if k != "coefficients"}
        t = time.perf_counter()
        report = detect_rings(store)
        res["detect_rings_s"] = round(time.perf_counter() - t, 1)
        res["detect_rings_timings"] = report.timings
        if truth_file is not None:
            truth = json.loads(truth_file.read_text())
            planted = [(r["kind"], frozenset(r["members"])) for r in truth["rings"]]
            unl = [not r.get("labelled", True) for r in truth["rings"]]
            stored = sorted(store.list_rings(), key=lambda r: (-r.score, r.ring_id))
            ranked = [frozenset(r.members) for r in stored]
            res["quality"] = evaluate(ranked, planted, unl, [])
            res["quality"]["at_threshold"] = _at(ranked, planted, [])
    finally:
        store.close()
    return res


def _match(groups: Sequence[Group], targets: Sequence[tuple[str, Group]]) -> list[int]:
    """Per group, the target it matches best with Jaccard >= MATCH, else -1."""
    of: dict[str, list[int]] = defaultdict(list)
    for i, (_, m) in enumerate(targets):
        for a in m:
            of[a].append(i)
    out = []
    for g in groups:
        best, best_j = -1, MATCH
        for i in {i for a in g for i in of.get(a, [])}:
            j = len(g & targets[i][1]) / len(g | targets[i][1])
            if j >= best_j:
                best, best_j = i, j
        out.append(best)
    return out


def evaluate(
    ranked: Sequence[Group],
    planted: Sequence[tuple[str, Group]],
    unlabelled: Sequence[bool],
    lookalikes: Sequence[tuple[str, Group]],
) -> dict[str, Any]:
    k = len(planted)
    hit = _match(ranked[: 2 * k], planted)
    top_k = hit[:k]
    found = {i for i in hit if i >= 0}
    la = _match(ranked[:k], lookalikes) if lookalikes else []
    kinds = sorted({kd for kd, _ in planted})
    la_kinds: dict[str, int] = defaultdict(int)
    for i in la:
        if i >= 0:
            la_kinds[lookalikes[i][0]] += 1
    return {
        "ranked": len(ranked),
        "precision_at_k": round(sum(i >= 0 for i in top_k) / k, 3),
        "recall_at_2k": round(len(found) / k, 3),
        "recall_at_k": round(len({i for i in top_k if i >= 0}) / k, 3),
        "per_kind_at_2k": {
            kd: f"{sum(planted[i][0] == kd for i in found)}/{sum(p[0] == kd for p in planted)}"
            for kd in kinds
        },
        "unlabelled_found_at_2k": f"{sum(unlabelled[i] for i in found)}/{sum(unlabelled)}",
        "lookalikes_in_top_k": int(sum(i >= 0 for i in la)),
        "lookalikes_in_top_k_by_kind": dict(sorted(la_kinds.items())),
    }


def _at(
    groups: Sequence[Group],
    planted: Sequence[tuple[str, Group]],
    lookalikes: Sequence[tuple[str, Group]],
) -> dict[str, Any]:
    hit = _match(groups, planted)
    la = _match(groups, lookalikes) if lookalikes else []
    return {
        "reported": len(groups),
        "precision": round(sum(i >= 0 for i in hit) / len(groups), 3) if groups else None,
        "recall": round(len({i for i in hit if i >= 0}) / len(planted), 3),
        "lookalikes_flagged": int(sum(i >= 0 for i in la)),
    }


def _risk(snap: Any, store: EmbeddedStore) -> Any:
    risk = np.full(snap.num_accounts, np.nan)
    scores = store.get_scores()
    if scores:
        pos = np.searchsorted(snap.account_ids, [s.account_id for s in scores])
        risk[pos] = [s.fraud_probability for s in scores]
    return risk


def baseline(snap: Any, store: EmbeddedStore) -> list[Group]:
    """Components of shared identifiers + high-risk transfers, ranked by a LightGBM model."""
    n = snap.num_accounts
    risk = _risk(snap, store)
    g = RingGraph.build(snap, risk)
    r = np.nan_to_num(risk, nan=0.0)
    # High risk: both ends among the 2% riskiest accounts (about the fraud rate), or >= 0.5
    # (one risky end links every victim and shop of a fraudster into a giant component).
    cut = min(0.5, float(np.quantile(r, 0.98)))
    hot = np.flatnonzero(np.minimum(r[g.src], r[g.dst]) >= cut)
    a = np.concatenate([g.link_a, g.src[hot]])
    b = np.concatenate([g.link_b, g.dst[hot]])
    adj = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, lab = connected_components(adj, directed=False)
    sizes = np.bincount(lab, minlength=n)
    # Components too large for a ring are split into Leiden (modularity) communities, so the
    # baseline is not sunk by one giant component of risky neighbours.
    big = np.isin(lab[a], np.flatnonzero(sizes > MAX_MEMBERS))
    if big.any():
        nodes, inv = np.unique(np.concatenate([a[big], b[big]]), return_inverse=True)
        sub = ig.Graph(n=len(nodes), edges=inv.reshape(2, -1).T.tolist()).simplify()
        parts = np.asarray(sub.community_leiden(objective_function="modularity").membership)
        lab = lab.copy()
        lab[nodes] = lab.max() + 1 + parts
        sizes = np.bincount(lab, minlength=n)
    idx = np.flatnonzero((sizes[lab] >= MIN_MEMBERS) & (sizes[lab] <= MAX_MEMBERS))
    order = idx[np.argsort(lab[idx], kind="stable")]
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    groups = [np.sort(p) for p in np.split(order, cuts)] if len(order) else []
    if not groups:
        return []
    feats = []
    for m in groups:
        pairs = g.internal_pairs(m)
        links = g.internal_links(m)
        age = (snap.created_at[m].max() - snap.created_at[m]) / 86_400
        feats.append(
            [
                len(m),
                float(np.nanmean(risk[m])) if not np.isnan(risk[m]).all() else np.nan,
                float(np.nanmax(risk[m])) if not np.isnan(risk[m]).all() else np.nan,
                len(pairs),
                float(g.amount[pairs].sum()),
                len(links),
                float(np.median(age)),
            ]
        )
    x = np.array(feats, dtype=np.float64)
    weak = weak_labels(groups, g.labels, risk=g.risk)
    known = weak.y >= 0
    if known.sum() >= 10 and len(np.unique(weak.y[known])) == 2:
        model = lgb.LGBMClassifier(
            n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=5, verbose=-1
        )
        model.fit(x[known], weak.y[known])
        score = np.asarray(model.predict_proba(x))[:, 1]
    else:
        score = np.nan_to_num(x[:, 1])
    ids = snap.account_ids
    ranked = np.argsort(-score, kind="stable")
    return [frozenset(ids[i] for i in groups[j].tolist()) for j in ranked.tolist()]


def _say(name: str, r: dict[str, Any]) -> None:
    for who in ("detector", "baseline", "unsupervised"):
        e = r[who]
        print(
            f"{name} {who}: P@K {e['precision_at_k']} R@2K {e['recall_at_2k']} "
            f"kinds {e['per_kind_at_2k']} unlabelled {e['unlabelled_found_at_2k']} "
            f"look-alikes@K {e['lookalikes_in_top_k']}",
            file=sys.stderr,
        )


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--worlds", default="tuning:1,heldout:2", help="NAME:SEED, comma separated.")
    p.add_argument("--accounts", type=int, default=40_000)
    p.add_argument("--work", type=Path, default=Path("out/bench-rings"))
    p.add_argument("--retrain", action="store_true", help="Train and score again.")
    p.add_argument("--threshold", type=float, default=None, help="Reporting threshold.")
    p.add_argument("--speed", type=Path, help="Only time detection on this store file.")
    p.add_argument("--truth", type=Path, help="With --speed: score the rings against this.")
    return p


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
