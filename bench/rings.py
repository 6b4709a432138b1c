"""Ring detection quality and speed on the synthetic network with planted rings.

    .venv/bin/python bench/rings.py --accounts 100000 --seed 42

Generates the network (or reuses ``--data DIR``), imports it into a fresh embedded store under
``--work`` (reused when it already holds the network), then:

* times ``store.snapshot()`` (reported apart from detection);
* runs the detector twice: with the store's labels (the synthetic labels.csv: about 55% of
  fraud accounts and 30% of the others carry a confirmed outcome) and with every label
  masked; no model scores are used in either (none are stored);
* runs two plain baselines: connected components of SHARES_DEVICE links, and Leiden
  (modularity) communities of the whole graph (transfers and every link type, undirected);
* scores each against ground_truth.json: a detected ring matches a planted ring when their
  member Jaccard is >= 0.5. Ring precision = detected rings that match / detected rings;
  ring recall = planted rings matched / planted rings; member precision / recall compare the
  union of detected members with the union of planted ring members; per planted kind, the
  recall and (detector only) how often the matched ring got the planted kind;
* times ``services.rings.detect_rings`` end to end (snapshot, detect, match, write back).

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
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from creditgraph.domain import TRANSFER, IntArray, Snapshot
from creditgraph.ingest.csvfile import KINDS
from creditgraph.rings import DetectConfig, detect
from creditgraph.services.ingest import import_file
from creditgraph.services.rings import detect_rings
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate

MATCH = 0.5
MIN_MEMBERS, MAX_MEMBERS = 3, 60


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"machine": _machine(), "argv": argv}
    data = args.data or work / f"synth-{args.accounts}-{args.seed}"
    if not (data / "ground_truth.json").exists():
        t = time.perf_counter()
        generate(args.accounts, args.seed, data)
        out["synth_s"] = round(time.perf_counter() - t, 1)
    truth = json.loads((data / "ground_truth.json").read_text())
    planted = [(r["kind"], frozenset(r["members"])) for r in truth["rings"]]

    store = EmbeddedStore(work / f"store-{data.name}" / "creditgraph.sqlite")
    try:
        if store.counts().accounts != truth["accounts"]:
            t = time.perf_counter()
            for kind in KINDS:
                import_file(store, kind, data / f"{kind}.csv")
            out["import_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        snap = store.snapshot()
        out["snapshot_s"] = round(time.perf_counter() - t, 2)
        out["graph"] = {
            "accounts": snap.num_accounts,
            "transfer_pairs": len(snap.edges[TRANSFER]),
            "links": {r: len(e) for r, e in snap.edges.items() if r != TRANSFER},
            "planted_rings": len(planted),
        }
        cfg = DetectConfig(min_score=args.min_score)
        masked = dataclasses.replace(snap, labels=np.full(snap.num_accounts, -1, np.int8))
        for name, s in (("detector_with_labels", snap), ("detector_labels_masked", masked)):
            t = time.perf_counter()
            found = detect(s, config=cfg)
            took = time.perf_counter() - t
            rings = [(r.kind, frozenset(r.members)) for r in found.rings]
            out[name] = {
                "detect_s": round(took, 2),
                "stages_s": {k: round(v, 2) for k, v in found.timings.items()},
                "candidates": found.candidates,
                **evaluate(rings, planted),
            }
            out[name]["by_threshold"] = _by_threshold(found.rings, planted, cfg.min_score)
            _say(name, out[name])
        baselines = (
            ()
            if args.no_baselines
            else (
                ("baseline_device_components", _device_components),
                ("baseline_leiden_whole_graph", _leiden_whole),
            )
        )
        for name, fn in baselines:
            t = time.perf_counter()
            groups = fn(snap)
            took = time.perf_counter() - t
            out[name] = {
                "detect_s": round(took, 2),
                **evaluate([(None, g) for g in groups], planted),
            }
            _say(name, out[name])
        if not args.skip_service:
            t = time.perf_counter()
            report = detect_rings(store, cfg)
            out["service_detect_rings"] = {
                "total_s": round(time.perf_counter() - t, 2),
                "detected": report.detected,
                "timings": report.timings,
            }
    finally:
        store.close()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out, indent=1))
    return 0


def evaluate(
    detected: Sequence[tuple[str | None, frozenset[str]]],
    planted: Sequence[tuple[str, frozenset[str]]],
) -> dict[str, Any]:
    """Ring- and member-level precision / recall (Jaccard >= MATCH), per planted kind."""
    ring_of: dict[str, list[int]] = defaultdict(list)
    for i, (_, members) in enumerate(planted):
        for m in members:
            ring_of[m].append(i)
    matched_planted: dict[int, str | None] = {}
    good = 0
    for kind, members in detected:
        best, best_j = -1, 0.0
        for i in {i for m in members for i in ring_of.get(m, [])}:
            j = len(members & planted[i][1]) / len(members | planted[i][1])
            if j > best_j:
                best, best_j = i, j
        if best_j >= MATCH:
            good += 1
            # A planted ring found twice keeps the kind of its first (highest-scored) match.
            matched_planted.setdefault(best, kind)
    det_members = frozenset().union(*(m for _, m in detected)) if detected else frozenset()
    ring_members = frozenset().union(*(m for _, m in planted))
    has_kinds = any(kind is not None for kind, _ in detected)
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({k for k, _ in planted}):
        idx = [i for i, (k, _) in enumerate(planted) if k == kind]
        hit = [i for i in idx if i in matched_planted]
        typed = [i for i in hit if matched_planted[i] == kind]
        per_kind[kind] = {
            "planted": len(idx),
            "recall": round(len(hit) / len(idx), 3),
            "typed_right": len(typed) if has_kinds else None,
        }
    return {
        "detected_rings": len(detected),
        "ring_precision": round(good / len(detected), 3) if detected else None,
        "ring_recall": round(len(matched_planted) / len(planted), 3),
        "member_precision": round(len(det_members & ring_members) / len(det_members), 3)
        if det_members
        else None,
        "member_recall": round(len(det_members & ring_members) / len(ring_members), 3),
        "per_kind": per_kind,
    }


def _by_threshold(
    rings: Sequence[Any], planted: Sequence[tuple[str, frozenset[str]]], floor: float
) -> Any:
    """Ring precision / recall if the reporting threshold were higher (the trade-off)."""
    out = {}
    for thr in (t for t in (0.7, 0.75, 0.8, 0.85, 0.9) if t >= floor):
        sel = [(r.kind, frozenset(r.members)) for r in rings if r.score >= thr]
        e = evaluate(sel, planted)
        out[str(thr)] = {k: e[k] for k in ("detected_rings", "ring_precision", "ring_recall")}
    return out


def _groups(labels: IntArray, ids: list[str]) -> list[frozenset[str]]:
    sizes = np.bincount(labels)
    keep = (sizes >= MIN_MEMBERS) & (sizes <= MAX_MEMBERS)
    idx = np.flatnonzero(keep[labels])
    order = idx[np.argsort(labels[idx], kind="stable")]
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    return [frozenset(ids[i] for i in part) for part in np.split(order, cuts) if len(part)]


def _device_components(snap: Snapshot) -> list[frozenset[str]]:
    """Baseline 1: every connected component of SHARES_DEVICE links is a ring."""
    e = snap.edges["SHARES_DEVICE"]
    n = snap.num_accounts
    adj = sp.coo_matrix((np.ones(len(e)), (e.src, e.dst)), shape=(n, n))
    _, labels = connected_components(adj, directed=False)
    return _groups(labels, snap.account_ids)


def _leiden_whole(snap: Snapshot) -> list[frozenset[str]]:
    """Baseline 2: Leiden (modularity) over the whole graph; every community of ring size
    is a ring."""
    src = np.concatenate([e.src for e in snap.edges.values()])
    dst = np.concatenate([e.dst for e in snap.edges.values()])
    g = ig.Graph(n=snap.num_accounts, edges=np.stack([src, dst], axis=1), directed=False)
    g = g.simplify()
    parts = g.community_leiden(objective_function="modularity", n_iterations=2)
    return _groups(np.asarray(parts.membership, dtype=np.int64), snap.account_ids)


def _say(name: str, r: dict[str, Any]) -> None:
    print(
        f"{name}: {r['detected_rings']} rings in {r['detect_s']} s, ring P/R "
        f"{r['ring_precision']}/{r['ring_recall']}, member P/R "
        f"{r['member_precision']}/{r['member_recall']}",
        file=sys.stderr,
    )


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count()}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", type=Path, help="Reuse this synthetic network directory.")
    p.add_argument("--work", type=Path, default=Path("out/bench-rings"))
    p.add_argument("--min-score", type=float, default=DetectConfig().min_score)
    p.add_argument("--skip-service", action="store_true", help="Skip the end-to-end run.")
    p.add_argument("--no-baselines", action="store_true", help="Skip the two baselines.")
    return p


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
