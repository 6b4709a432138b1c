"""The ``creditgraph`` command line: thin commands that call one service each.

Library code raises ``CreditGraphError``; ``_run`` maps it to a message on stderr and the error's
exit code, once, here.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import torch
import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from creditgraph.api.app import create_app
from creditgraph.api.keys import create_key
from creditgraph.config import Settings
from creditgraph.domain import Ring
from creditgraph.errors import CreditGraphError
from creditgraph.ingest.csvfile import KINDS, Kind
from creditgraph.logs import configure_json_logging
from creditgraph.registry import ModelRegistry
from creditgraph.rings import DetectConfig
from creditgraph.services.bulkload import initial_load
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import promote_version, retrain
from creditgraph.services.rings import detect_rings, set_ring_status
from creditgraph.services.scoring import score_all
from creditgraph.store import neo4j_server
from creditgraph.store.base import GraphStore
from creditgraph.store.factory import open_store
from creditgraph.synth import generate
from creditgraph.training_config import TrainingConfig, load_training_config

app = typer.Typer(
    help="Graph-based social-credit and fraud analysis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
neo4j_app = typer.Typer(
    help="A local Neo4j server for development and tests.", no_args_is_help=True
)
schema_app = typer.Typer(help="The store's schema (constraints and indexes).", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
models_app = typer.Typer(help="Registered model versions and the champion.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(models_app, name="models")
keys_app = typer.Typer(help="API keys (only their hashes are stored).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

err = Console(stderr=True)
T = TypeVar("T")


def _run(fn: Callable[[], T]) -> T:
    """Call ``fn``; a CreditGraphError becomes a one-line message and its exit code."""
    try:
        return fn()
    except CreditGraphError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None


@contextmanager
def _store(settings: Settings) -> Iterator[GraphStore]:
    store = _run(lambda: open_store(settings))
    try:
        yield store
    finally:
        store.close()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """creditgraph: fraud risk and social credit from the relationship graph."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def synth(
    accounts: Annotated[int, typer.Option(help="Number of accounts.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 42,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out/synth"),
) -> None:
    """Write a synthetic social-payment network with planted fraud rings."""
    summary = _run(lambda: generate(accounts, seed, out, progress=lambda m: err.print(m)))
    typer.echo(
        json.dumps({k: v for k, v in asdict(summary).items() if k != "files"} | {"out": str(out)})
    )


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="accounts | transfers | links | labels")],
    file: Annotated[Path, typer.Argument(help="CSV file with a header row (UTF-8).")],
    create_missing_accounts: Annotated[
        bool,
        typer.Option(help="Create bare accounts for ids the file references but the store lacks."),
    ] = False,
    batch_size: Annotated[int | None, typer.Option(help="Rows per write batch.")] = None,
) -> None:
    """Validate a contract CSV file completely, then import it (idempotent)."""
    if kind not in KINDS:
        err.print(f"error: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        raise typer.Exit(2)
    settings = Settings()
    with _store(settings) as store, _progress() as progress:
        task = progress.add_task(f"{kind} ← {file.name}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = _run(
            lambda: import_file(
                store,
                _kind(kind),
                file,
                create_missing_accounts=create_missing_accounts,
                batch_size=batch_size or settings.import_batch_size,
                progress=advance,
            )
        )
    typer.echo(
        json.dumps(
            {
                "kind": report.kind,
                "file": str(report.path),
                "rows": report.rows,
                "changed": report.changed,
                "created_accounts": report.created_accounts,
                "validate_s": round(report.validate_s, 3),
                "write_s": round(report.write_s, 3),
                "store": store.backend,
            }
        )
    )


def _kind(kind: str) -> Kind:
    for k in KINDS:
        if k == kind:
            return k
    raise typer.BadParameter(kind)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts of the stored graph."""
    with _store(Settings()) as store:
        counts = _run(store.counts)
    data = asdict(counts)
    if as_json:
        typer.echo(json.dumps(data))
    else:
        for k, v in data.items():
            typer.echo(f"{k:>14}: {v}")


@schema_app.command("apply")
def schema_apply() -> None:
    """Create constraints and indexes (idempotent)."""
    with _store(Settings()) as store:
        for name in _run(store.apply_schema):
            typer.echo(f"applied {name}")


#: The retraining job the demo runs (short training, no baseline).
DEMO_CONFIG = Path(__file__).resolve().parents[2] / "training" / "demo.toml"


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(help="Size of the synthetic network.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    host: Annotated[str, typer.Option(help="Interface the API binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8000,
    serve_api: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API at the end.")
    ] = True,
) -> None:
    """The main job on the embedded store: synthesise, import, train, score, detect rings,
    then serve the API with a demo key and example calls."""
    settings = Settings()
    out = settings.data_dir / "demo-input"
    err.print(f"[bold]1/6[/] synthesising {accounts} accounts into {out}")
    _run(lambda: generate(accounts, seed, out))
    with _store(settings) as store:
        for kind in KINDS:
            path = out / f"{kind}.csv"
            err.print(f"[bold]2/6[/] importing {path} into the {store.backend} store")
            report = _run(partial(import_file, store, kind, path))
            err.print(f"    {report.rows} rows, {report.changed} changed, {report.write_s:.1f}s")
        err.print(f"[bold]3/6[/] training ({DEMO_CONFIG.name})")
        job = _run(lambda: load_training_config(DEMO_CONFIG))
        trained = _run(lambda: retrain(store, _registry(settings), job, force=True))
        err.print(f"    {trained.outcome}", highlight=False)
        err.print("[bold]4/6[/] scoring every account")
        scored = _run(lambda: score_all(store, _registry(settings)))
        err.print(f"    {scored.written} scores written ({scored.model_version})")
        err.print("[bold]5/6[/] detecting fraud rings (with the new scores)")
        rings = _run(lambda: detect_rings(store))
        err.print(f"    {rings.detected} rings: {rings.by_kind}", highlight=False)
        counts = _run(store.counts)
    typer.echo(json.dumps(asdict(counts) | {"model_version": scored.model_version}))
    key = _run(lambda: create_key(settings, "admin", "demo"))
    base = f"http://{host}:{port}"
    err.print(
        f"[bold]6/6[/] demo API key (admin, shown once): [bold]{key}[/]\n"
        f"  export KEY={key}\n"
        f"  curl -s {base}/readyz\n"
        f'  curl -s -X POST {base}/v1/risk/transfer -H "Authorization: Bearer $KEY" '
        "-H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' "
        '-d \'{"src": "A0000001", "dst": "A0000002", "amount": 120}\'\n'
        f'  curl -s {base}/v1/accounts/A0000001/score -H "Authorization: Bearer $KEY"\n'
        f"  open {base}/docs for every endpoint\n"
        f"  investigator page: {base}/ui/ (sign in with the key and a purpose)",
        highlight=False,
        markup=True,
        soft_wrap=True,
    )
    if serve_api:
        _serve(settings, host, port)


@neo4j_app.command("fetch")
def neo4j_fetch() -> None:
    """Resolve the Neo4j server jars with Maven into the cache (a no-op when present)."""
    typer.echo(str(_run(lambda: neo4j_server.fetch(Settings()))))


@neo4j_app.command("start")
def neo4j_start() -> None:
    """Start the local server and wait until RETURN 1 succeeds."""
    settings = Settings()
    _run(lambda: neo4j_server.start(settings))
    typer.echo(json.dumps(asdict(_run(lambda: neo4j_server.status(settings)))))


@neo4j_app.command("stop")
def neo4j_stop() -> None:
    """Stop the local server cleanly."""
    _run(lambda: neo4j_server.stop(Settings()))


@neo4j_app.command("status")
def neo4j_status() -> None:
    """Whether the local server runs and answers; exit code 1 when it does not."""
    status = _run(lambda: neo4j_server.status(Settings()))
    typer.echo(json.dumps(asdict(status)))
    if not status.responsive:
        raise typer.Exit(1)


@neo4j_app.command("bulk-load")
def neo4j_bulk_load(
    directory: Annotated[
        Path,
        typer.Argument(help="accounts.csv, and transfers.csv, links.csv, labels.csv if any."),
    ],
    force: Annotated[bool, typer.Option(help="Replace a database that holds data.")] = False,
) -> None:
    """Load a whole network into an empty database with neo4j-admin (offline: the server
    restarts, clients are cut off meanwhile)."""
    report = _run(lambda: initial_load(Settings(), directory, force=force))
    timings = ("validate_s", "convert_s", "import_s", "restart_s", "schema_s", "total_s")
    typer.echo(
        json.dumps(
            {"rows": report.rows, "counts": asdict(report.counts)}
            | {k: round(getattr(report, k), 3) for k in timings}
        )
    )


def _registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry(settings.data_dir / "models")


@app.command()
def train(
    config: Annotated[
        Path | None, typer.Option(help="Retraining job (TOML); default: training/default.toml.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Promote even if the gate refuses (recorded as forced).")
    ] = False,
) -> None:
    """Retrain: snapshot, train every candidate family, select on validation, gate, register."""
    settings = Settings()
    job = _run(lambda: load_training_config(config)) if config else TrainingConfig()
    with _store(settings) as store:
        report = _run(lambda: retrain(store, _registry(settings), job, force=force))
    err.print(report.outcome, highlight=False)
    typer.echo(
        json.dumps(
            {
                "version": report.version,
                "promoted": report.promoted,
                "forced": report.forced,
                "gate": asdict(report.gate),
                "metrics": report.metrics,
                "timings": report.timings,
            }
        )
    )


@app.command()
def score(
    out: Annotated[Path | None, typer.Option(help="Also write the scores to this CSV.")] = None,
) -> None:
    """Score every account with the champion and write the scores back to the store."""
    settings = Settings()
    with _store(settings) as store:
        report = _run(lambda: score_all(store, _registry(settings), out=out))
    typer.echo(json.dumps(asdict(report), default=str))


@models_app.command("list")
def models_list() -> None:
    """Registered model versions, oldest first; the champion is marked."""
    registry = _registry(Settings())
    champion = registry.champion_version()
    for record in _run(registry.records):
        typer.echo(
            json.dumps(
                {
                    "version": record.version,
                    "champion": record.version == champion,
                    "created_at": record.created_at,
                    "metrics": record.metrics,
                }
            )
        )


@models_app.command("show")
def models_show(version: Annotated[str, typer.Argument(help="e.g. v0003")]) -> None:
    """A version's record and its model card."""
    registry = _registry(Settings())
    record = _run(lambda: registry.get(version))
    typer.echo(json.dumps(asdict(record), indent=2, default=str))
    card = registry.path(version) / "model_card.md"
    if card.exists():
        typer.echo(card.read_text())


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="e.g. v0003")],
    reason: Annotated[str, typer.Option(help="Why, for the promotion history.")] = "manual",
) -> None:
    """Make a version the champion by hand (no gate); the reason is recorded."""
    record = _run(lambda: promote_version(_registry(Settings()), version, reason=reason))
    typer.echo(json.dumps({"champion": record.version}))


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="payment | investigator | admin")],
    name: Annotated[str, typer.Option(help="Who holds the key (shown in the audit log).")],
) -> None:
    """Create an API key and print it alone on stdout, once; only its hash is stored."""
    typer.echo(_run(lambda: create_key(Settings(), role, name)))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
) -> None:
    """Serve the API (risk decisions, scores, ingest, admin) with uvicorn, JSON logs."""
    _serve(Settings(), host, port, log_level)


def _serve(settings: Settings, host: str, port: int, log_level: str = "info") -> None:
    # One request scores one small neighbourhood: more threads only add contention.
    torch.set_num_threads(1)
    configure_json_logging(getattr(logging, log_level.upper(), logging.INFO))
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        log_level=log_level,
    )


# -- rings ---------------------------------------------------------------------------------------
rings_app = typer.Typer(
    help="Fraud rings: detection, export, the investigator workflow.", no_args_is_help=True
)
app.add_typer(rings_app, name="rings")


def _ring_json(ring: Ring) -> dict[str, object]:
    return {
        "ring_id": ring.ring_id,
        "score": ring.score,
        "kind": ring.kind,
        "status": ring.status,
        "note": ring.note,
        "members": ring.members,
        "evidence": ring.evidence,
        "detected_at": ring.detected_at,
    }


@rings_app.command("detect")
def rings_detect(
    use_scores: Annotated[
        bool, typer.Option("--scores/--no-scores", help="Use stored fraud probabilities.")
    ] = True,
    min_score: Annotated[
        float | None, typer.Option(help="Report rings scoring at least this (default 0.82).")
    ] = None,
) -> None:
    """Detect rings in the stored graph and write them back (ids stable across runs)."""
    config = DetectConfig() if min_score is None else DetectConfig(min_score=min_score)
    with _store(Settings()) as store:
        report = _run(lambda: detect_rings(store, config, use_scores=use_scores))
    typer.echo(json.dumps(asdict(report)))


@rings_app.command("export")
def rings_export(
    out: Annotated[Path, typer.Option(help="JSON file to write.")] = Path("rings.json"),
) -> None:
    """Write every stored ring (id, score, kind, members, evidence, status) as JSON."""
    with _store(Settings()) as store:
        rings = _run(store.list_rings)
    out.write_bytes(orjson.dumps([_ring_json(r) for r in rings], option=orjson.OPT_INDENT_2))
    typer.echo(json.dumps({"rings": len(rings), "out": str(out)}))


@rings_app.command("show")
def rings_show(ring_id: Annotated[str, typer.Argument(help="Ring id.")]) -> None:
    """One ring with its evidence."""
    with _store(Settings()) as store:
        ring = _run(lambda: store.get_ring(ring_id))
    typer.echo(orjson.dumps(_ring_json(ring), option=orjson.OPT_INDENT_2).decode())


@rings_app.command("status")
def rings_status(
    ring_id: Annotated[str, typer.Argument(help="Ring id.")],
    status: Annotated[str, typer.Option(help="new | investigating | confirmed | dismissed")],
    note: Annotated[str | None, typer.Option(help="Investigator's note (replaces it).")] = None,
) -> None:
    """Set a ring's status; confirmed / dismissed verdicts become training labels."""
    with _store(Settings()) as store:
        change = _run(lambda: set_ring_status(store, ring_id, status, note))
    typer.echo(
        json.dumps(
            {
                "ring_id": change.ring.ring_id,
                "status": change.ring.status,
                "note": change.ring.note,
                "labels_written": change.labels_written,
            }
        )
    )
