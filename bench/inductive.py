"""Request-time (inductive) scoring latency of the store's champion, whatever its family.

    .venv/bin/python bench/inductive.py --data /tmp/b1m/data

Loads the champion of ``--data/models`` over a fresh snapshot of the embedded store in
``--data`` (timed), then, with ONE torch thread, times ``InductiveScorer.score`` for
``--accounts`` random snapshot accounts and ``score_new`` (store reads and feature
recomputation included) for ``--new`` random accounts re-read from the store. Reasons are
part of every call. Prints one JSON line; the risk API's budget is p99 <= 5 ms.

``--compare-previous`` (a tree champion): also times the earlier request path for tree
families (every family on the whole sampled subgraph, ``Booster.predict``:
``ServedCenter(center_only=False)``), interleaved account by account with the current one in
the same process, and reports the largest difference between their logits. It also times
``score_new`` on the earlier path (own row by ``build_features`` on a one-account snapshot,
one GNN forward per occluded relation) interleaved with the current one (``compare_new``),
and for a champion with GNN members ``score`` with and without batched occlusions
(``compare_occlusion``).

``--warm-pages``: ``store.warm_request_pages()`` after the snapshot, as the risk API does
when it loads a model (``warm_pages_s``: its time); without it the first requests meet cold
store pages.

Every timing is reported as wall time and as the thread's CPU time (``cpu_p50_ms``...): on a
shared machine under ``nice`` the wall tail is mostly time spent waiting for a core.
``score_new_warm`` times the same accounts a second time: the difference to ``score_new`` is
the cost of cold store pages (a just-written account's pages are warm).
``--version`` times a registered version other than the champion. ``--hubs N`` times
``score_new`` (pages warm) for the N accounts with the most edges: its own edges are read and
looped over in full, so this is the cost that grows with degree.

``--against DATA``: a copy of the same store in another layout (e.g. made before a schema
migration: its transfer indexes are left as they are, not migrated on open), read the
earlier way (the account by ``get_account``, with its label and score rows); ``score_new``
of other fresh accounts (and of the hubs) is timed on both stores, interleaved account by
account, so cold pages meet both alike (``against``; logits must agree exactly).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from creditgraph.config import Settings
from creditgraph.ml.artifact import load_artifact
from creditgraph.ml.center import ServedCenter
from creditgraph.registry import ModelRegistry
from creditgraph.services.inductive import InductiveScore, InductiveScorer
from creditgraph.store import embedded
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.factory import open_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--new", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare-previous", action="store_true")
    ap.add_argument("--version", help="a registered version (default: the champion)")
    ap.add_argument(
        "--hubs", type=int, default=0, help="also time score_new for the N highest-degree accounts"
    )
    ap.add_argument(
        "--warm-pages",
        action="store_true",
        help="store.warm_request_pages() first (on --against's copy too), as the risk API does",
    )
    ap.add_argument(
        "--against", type=Path, help="a copy of --data in another layout: score_new on both"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ["CREDITGRAPH_DATA_DIR"] = str(args.data)
    registry = ModelRegistry(args.data / "models")
    version = args.version or registry.champion_version()
    assert version is not None, "no champion in --data"
    store = open_store(Settings())
    try:
        start = time.perf_counter()
        artifact = load_artifact(registry.path(version))
        snapshot = store.snapshot()
        scorer = InductiveScorer.build(artifact, version, snapshot)
        build_s = time.perf_counter() - start
        warm_s = store.warm_request_pages() if args.warm_pages else None
        rng = np.random.default_rng(args.seed)
        # ``--against`` gets its own ``--new`` accounts: the plain timings warm their pages.
        extra = args.new if args.against else 0
        picks = rng.choice(snapshot.num_accounts, args.accounts + args.new + extra, replace=False)
        ids = [snapshot.account_ids[i] for i in picks]
        for a in ids[:20]:  # warm-up (code paths; these accounts' pages are not timed cold)
            scorer.score(a)
            scorer.score_new(a, store)
        compared: dict[str, object] = {}
        center = scorer.model.served_center
        if args.compare_previous and center is not None:
            compared = _compare(scorer, center, ids[: args.accounts])
        if args.against:  # first: no earlier request has warmed --data's pages
            against_ids = ids[args.accounts + args.new :]
            compared["against"] = _against(
                scorer,
                store,
                args.against,
                against_ids,
                warm_pages=args.warm_pages,
                warmup=ids[:20],
            )
        known = _time(lambda a: scorer.score(a), ids[: args.accounts])
        new_ids = ids[args.accounts : args.accounts + args.new]
        fresh = _time(lambda a: scorer.score_new(a, store), new_ids)
        # The same accounts again: their store pages are now in memory, so the difference
        # to ``score_new`` is what reading cold pages cost (a just-written account is warm).
        warm = _time(lambda a: scorer.score_new(a, store), new_ids)
        hubs: dict[str, object] = {}
        hub_ids: list[str] = []
        if args.hubs:
            degree = np.zeros(snapshot.num_accounts)
            for es in snapshot.edges.values():
                degree += np.bincount(es.src, minlength=snapshot.num_accounts)
                degree += np.bincount(es.dst, minlength=snapshot.num_accounts)
            top = np.argsort(-degree, kind="stable")[: args.hubs]
            hub_ids = [snapshot.account_ids[i] for i in top]
            for a in hub_ids:  # pages warm: what is left is the work itself
                scorer.score_new(a, store)
            hubs = {
                "hubs": {
                    "edges_p50": float(np.median(degree[top])),
                    "edges_max": float(degree[top].max()),
                    **_time(lambda a: scorer.score_new(a, store), hub_ids),
                }
            }
            if args.against:  # pages warm on both (a first pass), as ``hubs``
                compared["against_hubs"] = _against(scorer, store, args.against, hub_ids, warm=True)
        # After the plain timings, so neither meets the other's warmed store pages first.
        if args.compare_previous:
            model = scorer.model

            def earlier_new(on: bool) -> None:
                model.generic_own_row = on
                if center is not None:
                    center.batch_occlusion = not on

            compared["compare_new"] = _interleaved(
                lambda a: scorer.score_new(a, store), new_ids, earlier_new
            )
            if center is not None and center.served.gnns:

                def occlusion(on: bool) -> None:
                    assert center is not None
                    center.batch_occlusion = not on

                compared["compare_occlusion"] = _interleaved(
                    scorer.score, ids[: args.accounts], occlusion
                )
    finally:
        store.close()
    print(
        json.dumps(
            {
                "version": version,
                "fraud_model": artifact.served.fraud,
                "social_model": artifact.served.social,
                "accounts": snapshot.num_accounts,
                "build_s": round(build_s, 1),
                "warm_pages_s": warm_s,
                "score": known,
                "score_new": fresh,
                "score_new_warm": warm,
                **hubs,
                **compared,
                "load": os.getloadavg()[0],
            }
        )
    )


def _compare(scorer: InductiveScorer, center: ServedCenter, ids: list[str]) -> dict[str, object]:
    """Both request paths on the same accounts, interleaved (so load hits both alike)."""
    ms: dict[bool, list[float]] = {True: [], False: []}
    worst = 0.0
    for a in ids:
        logits = []
        for flag in (False, True):
            center.center_only = flag
            t = time.perf_counter()
            s = scorer.score(a)
            ms[flag].append((time.perf_counter() - t) * 1e3)
            logits.append((s.fraud_logit, s.social_logit))
        worst = max(worst, *(abs(x - y) for x, y in zip(*logits, strict=True)))
    center.center_only = True

    def summary(values: list[float]) -> dict[str, float]:
        q = np.percentile(values, [50, 99])
        return {"p50_ms": round(q[0], 2), "p99_ms": round(q[1], 2)}

    return {
        "compare": {
            "previous": summary(ms[False]),
            "center_only": summary(ms[True]),
            "max_abs_logit_diff": worst,
        }
    }


def _against(
    scorer: InductiveScorer,
    store: GraphStore,
    other: Path,
    ids: list[str],
    warm: bool = False,
    warm_pages: bool = False,
    warmup: list[str] | None = None,
) -> dict[str, object]:
    """``score_new`` of ``ids`` on ``store`` and on the copy in ``other`` (opened without
    index migration), interleaved; which store goes first alternates per account."""
    keep = embedded._stale_indexes
    embedded._stale_indexes = lambda db, stmts: []  # leave the copy's indexes as they are
    try:
        copy = EmbeddedStore(Settings(data_dir=other).embedded_path)
    finally:
        embedded._stale_indexes = keep
    # The earlier account read too: ``get_account`` (label and score rows) on the copy.
    copy.account_attributes = copy.get_account  # type: ignore[method-assign]
    try:
        layout = {
            name: [r[2] for r in copy._db.execute(f"PRAGMA index_info({name})")]
            for name in embedded.TRANSFER_INDEX_NAMES[:2]
        }
        stores: dict[bool, GraphStore] = {True: copy, False: store}
        if not warm:
            # The copy's pages as --data's are at this point: read once by a snapshot (the
            # scorer's was taken from --data), the accounts' own reads still cold on both.
            copy.snapshot()
            if warm_pages:
                copy.warm_request_pages()
            for a in warmup or []:  # as --data's warm-up
                scorer.score_new(a, copy)
        for a in ids if warm else ():
            scorer.score_new(a, copy)
            scorer.score_new(a, store)
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        worst = 0.0
        for n, a in enumerate(ids):
            logits = []
            for old in (True, False) if n % 2 else (False, True):
                c, t = time.thread_time(), time.perf_counter()
                s = scorer.score_new(a, stores[old])
                wall[old].append((time.perf_counter() - t) * 1e3)
                cpu[old].append((time.thread_time() - c) * 1e3)
                logits.append((s.fraud_logit, s.social_logit))
            worst = max(worst, *(abs(x - y) for x, y in zip(*logits, strict=True)))
    finally:
        copy.close()
    return {
        "copy_indexes": layout,
        "copy": _summary(wall[True], cpu[True]),
        "data": _summary(wall[False], cpu[False]),
        "max_abs_logit_diff": worst,
    }


def _interleaved(
    fn: Callable[[str], InductiveScore], ids: list[str], previous: Callable[[bool], None]
) -> dict[str, object]:
    """``fn`` on the earlier path (``previous(True)``) and the current one, account by
    account; wall and CPU percentiles of each and the largest logit difference."""
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    worst = 0.0
    try:
        for a in ids:
            logits = []
            for old in (True, False):
                previous(old)
                c, t = time.thread_time(), time.perf_counter()
                s = fn(a)
                wall[old].append((time.perf_counter() - t) * 1e3)
                cpu[old].append((time.thread_time() - c) * 1e3)
                logits.append((s.fraud_logit, s.social_logit))
            worst = max(worst, *(abs(x - y) for x, y in zip(*logits, strict=True)))
    finally:
        previous(False)
    return {
        "previous": _summary(wall[True], cpu[True]),
        "current": _summary(wall[False], cpu[False]),
        "max_abs_logit_diff": worst,
    }


def _time(fn: Callable[[str], object], ids: list[str]) -> dict[str, float]:
    ms, cpu = [], []
    for a in ids:
        c, t = time.thread_time(), time.perf_counter()
        fn(a)
        ms.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.thread_time() - c) * 1e3)
    return {"n": len(ms), **_summary(ms, cpu)}


def _summary(wall: list[float], cpu: list[float]) -> dict[str, float]:
    q, c = np.percentile(wall, [50, 99]), np.percentile(cpu, [50, 99])
    return {
        "p50_ms": round(q[0], 2),
        "p99_ms": round(q[1], 2),
        "max_ms": round(max(wall), 2),
        "cpu_p50_ms": round(c[0], 2),
        "cpu_p99_ms": round(c[1], 2),
        "cpu_max_ms": round(max(cpu), 2),
    }


if __name__ == "__main__":
    main()
