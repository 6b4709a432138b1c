"""End-to-end retraining at scale, then single-account inductive scoring latency.

    .venv/bin/python bench/train.py --accounts 1000000 --seed 42

Stages, each timed with its own peak RSS:
(0) the synthetic network (``synth.generate``, or reuse ``--data DIR``),
(1) ``import_file`` of the four files into a fresh embedded store, in a child process
    (reported, not part of the retrain figure or its memory),
(2) one ``store.snapshot()``, shared by (3) and (4) as a retraining job would export it once,
(3) ``services.retrain.retrain`` (features, GNN, baseline, gate, artifacts) with ``--config``
    (default ``training/default.toml``),
(4) ``services.scoring.score_all`` (score, reasons, write-back of every score);
    "retrain end to end" is (2) + (3) + (4),
(5) ``InductiveScorer`` built from the champion and a fresh snapshot, then the latency of
    ``score`` for ``--known`` random snapshot accounts and of ``score_new`` for ``--new``
    accounts added to the store afterwards (each a copy of a random account's attributes and
    ties: one transfer per counterparty pair, the same links), with the agreement of the
    known accounts' inductive scores with the batch scores just written. Latency is taken
    with ``--score-threads`` torch threads (default 1, as a server would run one request per
    core), after 500 known accounts with the retrain's thread count, for comparison.
With ``/usr/lib/x86_64-linux-gnu/libjemalloc.so.2`` present the script re-executes itself
under jemalloc (``LD_PRELOAD``, see PERFORMANCE-NOTES.md) unless ``--allocator glibc``.
Prints progress and a closing JSON line; writes only under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from scipy.stats import spearmanr

from creditgraph.config import Settings
from creditgraph.domain import TRANSFER, AccountColumns, LinkColumns, TransferColumns
from creditgraph.ingest.csvfile import KINDS
from creditgraph.registry import ModelRegistry
from creditgraph.services.inductive import load_inductive_scorer
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.services.scoring import score_all
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import load_training_config

JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
# Huge pages and no memory returned to the OS: the setting PERFORMANCE-NOTES.md measured.
JEMALLOC_CONF = "thp:always,metadata_thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1"
REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.allocator == "jemalloc" and JEMALLOC.exists() and "jemalloc" not in _preload():
        env = {**os.environ, "LD_PRELOAD": str(JEMALLOC), "MALLOC_CONF": JEMALLOC_CONF}
        os.execve(sys.executable, [sys.executable, __file__, *argv], env)
    allocator = "jemalloc" if "jemalloc" in _preload() else "glibc"
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "argv": argv,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "allocator": allocator,
            "malloc_conf": os.environ.get("MALLOC_CONF") if allocator == "jemalloc" else None,
        },
        "stages": {},
    }
    say(f"allocator: {allocator}; torch threads: {torch.get_num_threads()}")
    stages: dict[str, dict[str, Any]] = results["stages"]

    def save() -> None:
        (work / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")

    data = args.data
    if data is None:
        data = work / "data"
        with stage(stages, "synth"):
            summary = generate(args.accounts, args.seed, data, progress=say)
            stages["synth"]["rows"] = {
                "accounts": summary.accounts,
                "transfers": summary.transfers,
                "links": summary.links,
            }
    results["data"] = str(data)
    save()

    # The product's file name, so ``--work`` is a data dir ``creditgraph train`` can use.
    db = Settings(data_dir=work).embedded_path
    shutil.rmtree(work / "models", ignore_errors=True)
    if args.reuse_store and db.exists():
        # Scores and clones of an earlier run stay; retraining reads accounts, edges, labels.
        say(f"reusing {db} (import not run)")
    else:
        for stale in work.glob(f"{db.name}*"):
            stale.unlink()
        # In a child process: the import's memory (Arrow tables of every file) must not count
        # in the retraining job's peak, as the two never share a process in production.
        with (
            stage(stages, "import"),
            ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool,
        ):
            stages["import"].update(pool.submit(_import, data, db).result())
    if args.import_only:
        save()
        return 0
    store = EmbeddedStore(db)
    counts = store.counts()
    results["counts"] = {
        "accounts": counts.accounts,
        "transfers": counts.transfers,
        "links": counts.links,
        "labels": counts.labels,
    }
    save()

    config = load_training_config(args.config)
    if args.max_epochs is not None:
        config = config.model_copy(
            update={"optim": config.optim.model_copy(update={"max_epochs": args.max_epochs})}
        )
    results["config"] = {"file": str(args.config), **config.model_dump(mode="json")}
    registry = ModelRegistry(work / "models")
    with stage(stages, "snapshot"):
        snapshot = store.snapshot()
    with stage(stages, "retrain"):
        trained = retrain(store, registry, config, snapshot=snapshot)
        evaluation = json.loads((trained.path / "evaluation.json").read_text(encoding="utf-8"))
        stages["retrain"].update(
            timings=trained.timings,
            epochs_run=evaluation["epochs_run"],
            best_epoch=trained.best_epoch,
            metrics=trained.metrics,
            outcome=trained.outcome,
        )
    save()
    with stage(stages, "score_all"):
        scored = score_all(store, registry, snapshot=snapshot)
        stages["score_all"].update(timings=scored.timings, written=scored.written)
    results["retrain_end_to_end_s"] = round(
        sum(stages[s]["seconds"] for s in ("snapshot", "retrain", "score_all")), 1
    )
    say(
        f"retrain end to end (snapshot + retrain + score + write-back): "
        f"{results['retrain_end_to_end_s']} s"
    )
    del snapshot
    save()

    with stage(stages, "inductive_build"):
        scorer = load_inductive_scorer(store, registry, fanouts=tuple(args.fanouts))
    rng = np.random.default_rng(args.seed)
    known = [scorer.account_ids[i] for i in rng.choice(scorer.num_accounts, args.known, False)]
    # Intra-op threads on cores that are busy anyway stall tiny graphs (an OpenMP team
    # waits for a descheduled member): measured once with the default, then served as one
    # thread per request, the setting a server would use.
    default_threads = torch.get_num_threads()
    contended_s, _ = _timed(known[: min(500, len(known))], scorer.score)
    results["inductive_known_default_threads"] = {
        "threads": default_threads,
        **_latency(contended_s),
    }
    torch.set_num_threads(args.score_threads)
    for account_id in known[: min(50, len(known))]:
        scorer.score(account_id)
    known_s, known_scores = _timed(known, scorer.score)
    batch = {s.account_id: s for s in store.get_scores(known)}
    p = np.array([s.fraud_probability for s in known_scores])
    bp = np.array([batch[a].fraud_probability for a in known])
    credit = np.array([s.social_credit for s in known_scores])
    bcredit = np.array([batch[a].social_credit for a in known])
    results["inductive_known"] = {
        "accounts": len(known),
        "fanouts": args.fanouts,
        "threads": args.score_threads,
        **_latency(known_s),
        "sampled_share": float(np.mean([s.sampled for s in known_scores])),
        "mean_abs_dp": float(np.abs(p - bp).mean()),
        "p99_abs_dp": float(np.quantile(np.abs(p - bp), 0.99)),
        "spearman_p": float(spearmanr(p, bp)[0]),
        "mean_abs_dcredit": float(np.abs(credit - bcredit).mean()),
        "spearman_credit": float(spearmanr(credit, bcredit)[0]),
    }
    say(f"score (known): {results['inductive_known']}")
    save()

    originals = [scorer.account_ids[i] for i in rng.choice(scorer.num_accounts, args.new, False)]
    clones = _add_clones(store, originals)
    for account_id in clones[: min(20, len(clones))]:
        scorer.score_new(account_id, store)
    new_s, new_scores = _timed(clones, lambda a: scorer.score_new(a, store))
    original_p = {s.account_id: s.fraud_probability for s in store.get_scores(originals)}
    diff = np.array(
        [
            abs(s.fraud_probability - original_p[o])
            for s, o in zip(new_scores, originals, strict=True)
        ]
    )
    results["inductive_new"] = {
        "accounts": len(clones),
        **_latency(new_s),
        "all_inductive": all(s.inductive for s in new_scores),
        "mean_abs_dp_vs_original": float(diff.mean()),
        "spearman_p_vs_original": float(
            spearmanr(
                [s.fraud_probability for s in new_scores], [original_p[o] for o in originals]
            )[0]
        ),
    }
    say(f"score_new (accounts added after the snapshot): {results['inductive_new']}")
    results["peak_rss_mib"] = max(s["peak_rss_mib"] for s in stages.values())
    save()
    store.close()
    print(json.dumps(results))
    return 0


def _import(data: Path, db: Path) -> dict[str, Any]:
    """The four files into a fresh embedded store; per kind rows and seconds, and peak RSS."""
    store = EmbeddedStore(db)
    store.apply_schema()
    out: dict[str, Any] = {}
    for kind in KINDS:
        report = import_file(store, kind, data / f"{kind}.csv")
        out[kind] = {"rows": report.rows, "seconds": round(report.validate_s + report.write_s, 1)}
        say(f"  imported {report.rows:,} {kind}")
    store.close()
    out["child_peak_rss_mib"] = _peak_rss_mib()
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--accounts", type=int, default=1_000_000, help="synthetic network size")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", type=Path, help="reuse this directory's four contract files")
    p.add_argument("--work", type=Path, default=Path("bench/out/train"), help="scratch space")
    p.add_argument("--config", type=Path, default=REPO / "training" / "default.toml")
    p.add_argument("--max-epochs", type=int, help="override the job's optim.max_epochs")
    p.add_argument(
        "--reuse-store", action="store_true", help="keep --work's imported store if present"
    )
    p.add_argument("--import-only", action="store_true", help="stop after synth and import")
    p.add_argument("--known", type=int, default=2_000, help="snapshot accounts to time")
    p.add_argument("--new", type=int, default=200, help="accounts added after the snapshot")
    p.add_argument("--fanouts", type=int, nargs="+", default=[15, 10])
    p.add_argument(
        "--threads", type=int, help="torch threads for retrain and batch scoring (default: torch's)"
    )
    p.add_argument("--score-threads", type=int, default=1, help="torch threads when scoring")
    p.add_argument("--allocator", choices=["jemalloc", "glibc"], default="jemalloc")
    return p


def _add_clones(store: EmbeddedStore, originals: list[str]) -> list[str]:
    """A new account per original, with its attributes and ties; returns the new ids."""
    clones = [f"NEW-{a}" for a in originals]
    accounts = [store.get_account(a) for a in originals]
    store.upsert_accounts(
        AccountColumns(
            clones,
            [a.created_at for a in accounts],
            [a.features for a in accounts],
            [a.properties for a in accounts],
        )
    )
    tx: dict[str, list[Any]] = {k: [] for k in ("id", "src", "dst", "amount", "ts")}
    links: dict[str, list[Any]] = {k: [] for k in ("src", "dst", "type")}
    now = time.time()
    for original, clone in zip(originals, clones, strict=True):
        for e in store.adjacent([original]):
            if e.relation == TRANSFER:
                src = clone if e.src == original else e.src
                dst = clone if e.dst == original else e.dst
                tx["id"].append(f"{clone}:{src}>{dst}")
                tx["src"].append(src)
                tx["dst"].append(dst)
                tx["amount"].append(e.total_amount)
                tx["ts"].append(now)
            else:
                other = e.dst if e.src == original else e.src
                a, b = sorted((clone, other))
                links["src"].append(a)
                links["dst"].append(b)
                links["type"].append(e.relation)
    n = len(tx["id"])
    store.upsert_transfers(
        TransferColumns(
            tx["id"], tx["src"], tx["dst"], tx["amount"], tx["ts"], [None] * n, [None] * n
        )
    )
    store.upsert_links(
        LinkColumns(links["src"], links["dst"], links["type"], [None] * len(links["src"]))
    )
    return clones


def _timed(items: list[str], fn: Callable[[str], T]) -> tuple[list[float], list[T]]:
    seconds, out = [], []
    for item in items:
        t0 = time.perf_counter()
        out.append(fn(item))
        seconds.append(time.perf_counter() - t0)
    return seconds, out


def _latency(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.quantile(ms, 0.5)), 3),
        "p99_ms": round(float(np.quantile(ms, 0.99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


@contextmanager
def stage(stages: dict[str, dict[str, Any]], name: str) -> Iterator[None]:
    """Time a stage and record its own peak RSS (the high-water mark is reset first)."""
    _reset_peak()
    say(f"{name} ...")
    t0 = time.perf_counter()
    stages[name] = {}
    yield
    stages[name]["seconds"] = round(time.perf_counter() - t0, 1)
    stages[name]["peak_rss_mib"] = _peak_rss_mib()
    say(f"{name}: {stages[name]['seconds']} s, peak RSS {stages[name]['peak_rss_mib']} MiB")


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0); where it cannot, peaks accumulate
    # and the largest stage figure is still the process's peak.
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def _preload() -> str:
    return os.environ.get("LD_PRELOAD", "")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


if __name__ == "__main__":
    # Training progress (one line per validated epoch) from creditgraph.ml.train.
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    sys.exit(main(sys.argv[1:]))
