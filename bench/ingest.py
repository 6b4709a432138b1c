"""Ingest throughput, side by side in one run: embedded store, Neo4j incremental import,
Neo4j's own offline importer (the reference) and ``initial_load`` (our bulk path).

    .venv/bin/python bench/ingest.py --accounts 1000000 --seed 42

Generates the synthetic network (or reuses ``--data DIR``), then measures
(a) ``import_file`` of the four files into a fresh embedded store,
(b) ``import_file`` into an empty Neo4j database (``--neo4j-transfers-limit`` /
    ``--neo4j-links-limit`` measure on a prefix of those files when the whole takes too long),
(c) ``neo4j-admin database import full`` alone, on CSVs converted beforehand,
(d) ``devtools.bulkload.initial_load`` end to end (validate, convert, import, restart, schema).
Neo4j runs in its own home and ports (default ``~/.cache/creditgraph/neo4j-bench``, Bolt 7689,
HTTP 7476), whose data this script deletes at the start and whose server it stops at the end.
Prints figures and a closing JSON line; writes only under ``--work`` (gitignored by default).
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from creditgraph.config import Settings, default_cache_dir
from creditgraph.devtools import neo4j_server
from creditgraph.devtools.bulkload import initial_load, prepare_import
from creditgraph.ingest.csvfile import KINDS, Kind
from creditgraph.services.ingest import ImportReport, import_file
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore
from creditgraph.synth import generate

BENCH_MARKER = ".creditgraph-bench"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The driver reports every query on a label or property not created yet (an empty
    # database) as a warning; that is noise here.
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": _machine(), "argv": argv}

    data = _data(args, work)
    results["data"] = {"dir": str(data), "bytes": {k: _size(data / f"{k}.csv") for k in KINDS}}
    print(f"data: {data}")

    if not args.skip_embedded:
        results["embedded"] = _phase(lambda: _embedded(data, work / "embedded"))
    if not args.skip_neo4j:
        settings = _neo4j_settings(args)
        _fresh_neo4j(settings)
        try:
            results["neo4j_incremental"] = _phase(
                lambda: _neo4j_incremental(settings, data, work, args)
            )
            results["neo4j_admin"] = _phase(
                lambda: _neo4j_admin(settings, data, work / "admin-csv")
            )
            results["initial_load"] = _phase(lambda: _initial_load(settings, data))
        finally:
            neo4j_server.stop(settings)
        ratio = results["initial_load"]["total_s"] / results["neo4j_admin"]["import_s"]
        results["initial_load_vs_admin"] = round(ratio, 2)
        print(f"\n(d)/(c): initial_load end to end / neo4j-admin import alone = {ratio:.2f}x")
    # Resetting the peak per phase resets ru_maxrss too: the run's peak is the largest phase's.
    phases = [
        r["peak_rss_mib"] for r in results.values() if isinstance(r, dict) and "peak_rss_mib" in r
    ]
    results["peak_rss_mib"] = max(phases, default=None)
    print(f"peak RSS of this Python process over the whole run: {results['peak_rss_mib']} MiB")
    print(json.dumps(results))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--accounts", type=int, default=1_000_000, help="synthetic network size")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", type=Path, help="reuse this directory's four contract files")
    p.add_argument("--work", type=Path, default=Path("bench/out/ingest"), help="scratch space")
    p.add_argument("--neo4j-transfers-limit", type=int, help="(b) on the first N transfers")
    p.add_argument("--neo4j-links-limit", type=int, help="(b) on the first N links")
    p.add_argument("--skip-embedded", action="store_true")
    p.add_argument("--skip-neo4j", action="store_true")
    p.add_argument("--neo4j-home", type=Path, default=default_cache_dir() / "neo4j-bench")
    p.add_argument("--bolt-port", type=int, default=7689)
    p.add_argument("--http-port", type=int, default=7476)
    p.add_argument("--heap", default="2g", help="Neo4j server (and neo4j-admin) heap")
    p.add_argument("--pagecache", default="4g")
    return p


# -- data ---------------------------------------------------------------------------------------


def _data(args: argparse.Namespace, work: Path) -> Path:
    if args.data is not None:
        return Path(args.data).resolve()
    out = work / f"synth-{args.accounts}-{args.seed}"
    if not (out / "ground_truth.json").is_file():
        with _timed(f"synth {args.accounts:,} accounts, seed {args.seed}"):
            generate(args.accounts, args.seed, out)
    return out


def _prefix(src: Path, dst: Path, rows: int | None) -> Path:
    """The header and first ``rows`` data lines of ``src`` (``src`` itself when no limit)."""
    if rows is None:
        return src
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin, dst.open("wb") as fout:
        for i, line in enumerate(fin):
            if i > rows:
                break
            fout.write(line)
    return dst


# -- (a) embedded -------------------------------------------------------------------------------


def _embedded(data: Path, directory: Path) -> dict[str, Any]:
    print("\n(a) embedded store: import_file of each file into a fresh SQLite store")
    shutil.rmtree(directory, ignore_errors=True)
    store = EmbeddedStore(directory / "creditgraph.sqlite")
    try:
        out = _import_all(store, {k: data / f"{k}.csv" for k in KINDS})
    finally:
        store.close()
    out["db_bytes"] = sum(_size(p) for p in directory.iterdir())
    shutil.rmtree(directory, ignore_errors=True)
    return out


# -- (b) Neo4j incremental ----------------------------------------------------------------------


def _neo4j_incremental(
    settings: Settings, data: Path, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    limits: dict[Kind, int | None] = {
        "transfers": args.neo4j_transfers_limit,
        "links": args.neo4j_links_limit,
    }
    said = ", ".join(f"first {n:,} {k}" for k, n in limits.items() if n is not None)
    print(
        f"\n(b) Neo4j incremental: import_file into an empty database{f' ({said})' if said else ''}"
    )
    files = {
        k: _prefix(data / f"{k}.csv", work / "prefix" / f"{k}.csv", limits.get(k)) for k in KINDS
    }
    store = Neo4jStore.connect(settings)
    try:
        out = _import_all(store, files)
    finally:
        store.close()
    out["limits"] = limits
    shutil.rmtree(work / "prefix", ignore_errors=True)
    return out


def _import_all(store: GraphStore, files: dict[Kind, Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(
        f"  {'file':<10}{'rows':>12}{'validate s':>12}{'write s':>10}{'total s':>10}"
        f"{'rows/s':>11}{'write rows/s':>14}"
    )
    for kind, path in files.items():
        report = import_file(store, kind, path)
        out[kind] = _file_figures(report)
        f = out[kind]
        print(
            f"  {kind:<10}{f['rows']:>12,}{f['validate_s']:>12.1f}{f['write_s']:>10.1f}"
            f"{f['total_s']:>10.1f}{f['rows_per_s']:>11,.0f}{f['write_rows_per_s']:>14,.0f}"
        )
    return out


def _file_figures(r: ImportReport) -> dict[str, Any]:
    total = r.validate_s + r.write_s
    return {
        "rows": r.rows,
        "changed": r.changed,
        "validate_s": round(r.validate_s, 2),
        "write_s": round(r.write_s, 2),
        "total_s": round(total, 2),
        "rows_per_s": round(r.rows / total) if total else None,
        "write_rows_per_s": round(r.rows / r.write_s) if r.write_s else None,
    }


# -- (c) neo4j-admin alone, (d) initial_load ----------------------------------------------------


def _neo4j_admin(settings: Settings, data: Path, directory: Path) -> dict[str, Any]:
    print("\n(c) neo4j-admin database import full alone (CSV conversion and restart not timed)")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    prepared = prepare_import(data, directory)
    neo4j_server.stop(settings)
    t = time.perf_counter()
    proc = neo4j_server.admin(
        settings, prepared.admin_args(settings.neo4j_database, directory / "import.report")
    )
    import_s = time.perf_counter() - t
    neo4j_server.start(settings)
    # The importer's own account: its time without JVM start-up, and its peak memory.
    summary = [
        ln.strip()
        for ln in proc.stdout.splitlines()
        if "IMPORT DONE" in ln or "Peak memory usage" in ln
    ]
    relationships = prepared.rows.get("transfers", 0) + prepared.rows.get("links", 0)
    out = {
        "rows": prepared.rows,
        "prepare_validate_s": round(prepared.validate_s, 2),
        "prepare_convert_s": round(prepared.convert_s, 2),
        "import_s": round(import_s, 2),
        "transfers_per_s_equiv": round(prepared.rows.get("transfers", 0) / import_s),
        "relationships_per_s": round(relationships / import_s),
        "csv_bytes": sum(_size(p) for p in directory.iterdir()),
        "admin_says": " ".join(summary),
    }
    print(
        f"  (untimed: validate {prepared.validate_s:.1f} s, convert {prepared.convert_s:.1f} s)\n"
        f"  import {import_s:.1f} s for {prepared.rows} "
        f"({out['relationships_per_s']:,} relationships/s); {out['admin_says']}"
    )
    shutil.rmtree(directory, ignore_errors=True)
    return out


def _initial_load(settings: Settings, data: Path) -> dict[str, Any]:
    print("\n(d) initial_load end to end (the database holds (c)'s copy, hence force)")
    r = initial_load(settings, data, force=True)
    out = {
        "rows": r.rows,
        "validate_s": round(r.validate_s, 2),
        "convert_s": round(r.convert_s, 2),
        "import_s": round(r.import_s, 2),
        "restart_s": round(r.restart_s, 2),
        "schema_s": round(r.schema_s, 2),
        "total_s": round(r.total_s, 2),
        "transfers_per_s": round(r.rows.get("transfers", 0) / r.total_s),
        "counts": {
            "accounts": r.counts.accounts,
            "transfers": r.counts.transfers,
            "links": r.counts.links,
            "labels": r.counts.labels,
        },
    }
    print(
        "  "
        + ", ".join(
            f"{k} {out[k]} s"
            for k in ("validate_s", "convert_s", "import_s", "restart_s", "schema_s")
        )
    )
    print(
        f"  total {r.total_s:.1f} s = {out['transfers_per_s']:,} transfers/s end to end; "
        f"stored {out['counts']}"
    )
    return out


# -- Neo4j server for the bench -----------------------------------------------------------------


def _neo4j_settings(args: argparse.Namespace) -> Settings:
    return Settings(
        store="neo4j",
        neo4j_home=args.neo4j_home,
        neo4j_bolt_port=args.bolt_port,
        neo4j_http_port=args.http_port,
        neo4j_uri=f"bolt://127.0.0.1:{args.bolt_port}",
        neo4j_password=SecretStr("creditgraph-bench"),
        neo4j_database="neo4j",
        neo4j_heap=args.heap,
        neo4j_pagecache=args.pagecache,
        neo4j_start_timeout_s=300.0,
    )


def _fresh_neo4j(settings: Settings) -> None:
    """Stop the bench server, delete its data, start it empty. Only a home this script
    created (it holds the marker file) is ever emptied."""
    home = settings.neo4j_home.expanduser().resolve()
    marker = home / BENCH_MARKER
    if home.exists() and not marker.is_file():
        raise SystemExit(
            f"{home} exists but is not a bench home ({BENCH_MARKER} missing): "
            "refusing to delete its data; pass another --neo4j-home"
        )
    neo4j_server.stop(settings)
    shutil.rmtree(home / "data", ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    marker.touch()
    with _timed(f"start an empty Neo4j in {home}"):
        neo4j_server.start(settings)


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def _timed(what: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    print(f"{what}: {time.perf_counter() - t:.1f} s")


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _phase(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``'s figures plus the peak RSS of this process while it ran."""
    # Linux: writing 5 to clear_refs resets VmHWM (the peak), so each phase gets its own.
    Path("/proc/self/clear_refs").write_text("5")
    out = run()
    status = Path("/proc/self/status").read_text()
    kib = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:"))
    print(f"  peak RSS of this Python process in this phase: {kib // 1024:,} MiB")
    return out | {"peak_rss_mib": kib // 1024}


def _machine() -> dict[str, Any]:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
