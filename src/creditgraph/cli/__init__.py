"""The ``creditgraph`` command line: thin commands that call one service each.

Library code raises ``CreditGraphError``; ``cli.common.run`` maps it to a message on stderr
and the error's exit code, once. ``creditgraph neo4j ...`` lives in ``cli.neo4j``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from creditgraph.cli.audit import audit_app, subject_app
from creditgraph.cli.common import err, run, settings, store_of
from creditgraph.cli.credit import credit_app
from creditgraph.cli.keys import keys_app
from creditgraph.cli.neo4j import neo4j_app
from creditgraph.cli.transfers import evaluate_app, transfers_app
from creditgraph.config import Settings
from creditgraph.ingest.csvfile import IMPORT_KINDS, Kind
from creditgraph.registry import ModelRegistry

if TYPE_CHECKING:
    from creditgraph.domain import Ring
    from creditgraph.services.pipeline import Step

# The services (torch, LightGBM, scikit-learn, FastAPI) are imported inside the commands that
# use them: importing them all costs ~15 s of CPU here, which `--help`, `keys`, `stats` or
# `import` would otherwise pay on every call.

app = typer.Typer(
    help="Graph-based social-credit and fraud analysis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
schema_app = typer.Typer(help="The store's schema (constraints and indexes).", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
models_app = typer.Typer(help="Registered model versions and the champion.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(models_app, name="models")
app.add_typer(keys_app, name="keys")
app.add_typer(credit_app, name="credit")
app.add_typer(audit_app, name="audit")
app.add_typer(subject_app, name="subject")
app.add_typer(transfers_app, name="transfers")
app.add_typer(evaluate_app, name="evaluate")


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
    from creditgraph.synth import generate

    summary = run(lambda: generate(accounts, seed, out, progress=lambda m: err.print(m)))
    typer.echo(
        json.dumps({k: v for k, v in asdict(summary).items() if k != "files"} | {"out": str(out)})
    )


@app.command("import")
def import_(
    kind: Annotated[
        str,
        typer.Argument(
            help="accounts | transfers | links | labels | transfer_labels | obligations"
        ),
    ],
    file: Annotated[Path, typer.Argument(help="CSV file with a header row (UTF-8).")],
    create_missing_accounts: Annotated[
        bool,
        typer.Option(help="Create bare accounts for ids the file references but the store lacks."),
    ] = False,
    batch_size: Annotated[int | None, typer.Option(help="Rows per write batch.")] = None,
    allow_erased: Annotated[
        bool,
        typer.Option(help="Re-admit accounts erased on a data-subject request (else refused)."),
    ] = False,
) -> None:
    """Validate a contract CSV file completely, then import it (idempotent)."""
    from creditgraph.services.ingest import import_file

    if kind not in IMPORT_KINDS:
        err.print(f"error: unknown kind {kind!r}; use one of {', '.join(IMPORT_KINDS)}")
        raise typer.Exit(2)
    s = settings()
    with store_of(s) as store, _progress() as progress:
        task = progress.add_task(f"{kind} ← {file.name}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = run(
            lambda: import_file(
                store,
                _kind(kind),
                file,
                create_missing_accounts=create_missing_accounts,
                batch_size=batch_size or s.import_batch_size,
                progress=advance,
                allow_erased=allow_erased,
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
    for k in IMPORT_KINDS:
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
    with store_of(settings()) as store:
        counts = run(store.counts)
    data = asdict(counts)
    if as_json:
        typer.echo(json.dumps(data))
    else:
        for k, v in data.items():
            typer.echo(f"{k:>14}: {v}")


@schema_app.command("apply")
def schema_apply() -> None:
    """Create constraints and indexes (idempotent)."""
    with store_of(settings()) as store:
        for name in run(store.apply_schema):
            typer.echo(f"applied {name}")


#: The retraining job the demo runs (short training, no baseline), shipped as package data.
DEMO_JOB = "demo.toml"
#: Where the demo leaves its admin key (under the data directory, mode 0600).
DEMO_KEY_FILE = "demo-admin.key"
_DEMO_STEPS: dict[Step, int] = {"import": 2, "train": 3, "score": 4, "rings": 5, "transfers": 5}


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
    from creditgraph.resources import training_job
    from creditgraph.services.credit import demo_profiles, load_credit_model
    from creditgraph.services.pipeline import run_pipeline
    from creditgraph.synth import generate
    from creditgraph.training_config import load_training_config

    s = settings()
    out = s.data_dir / "demo-input"
    err.print(f"[bold]1/6[/] synthesising {accounts} accounts into {out}")
    run(lambda: generate(accounts, seed, out))
    job = run(lambda: load_training_config(training_job(DEMO_JOB)))

    def progress(step: Step, line: str) -> None:
        prefix = "" if line.startswith(" ") else f"[bold]{_DEMO_STEPS[step]}/6[/] "
        err.print(prefix + line, highlight=False, markup=bool(prefix))

    with store_of(s) as store:
        report = run(
            lambda: run_pipeline(
                store,
                _registry(s),
                out,
                job,
                force=True,
                progress=progress,
                transfers=s.risk,
                credit=s.credit,
            )
        )
        counts = run(store.counts)
        if report.credit is not None:
            model = run(lambda: load_credit_model(s.models_dir))
            for line in run(lambda: demo_profiles(store, model, s.credit)):
                err.print(line, highlight=False, markup=False, soft_wrap=True)
    scored = report.scored
    typer.echo(json.dumps(asdict(counts) | {"model_version": scored.model_version}))
    key_file = run(lambda: _write_demo_key(s))
    base = f"http://{host}:{port}"
    err.print(
        f"[bold]6/6[/] demo API key (admin) written to {key_file} (mode 0600)\n"
        f"  export KEY=$(cat {key_file})\n"
        f"  curl -s {base}/readyz\n"
        f'  curl -s -X POST {base}/v1/risk/transfer -H "Authorization: Bearer $KEY" '
        "-H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' "
        '-d \'{"src": "A0000001", "dst": "A0000002", "amount": 120}\'\n'
        # Every look-up by anyone but the payment service says why (audited).
        f'  curl -s {base}/v1/accounts/A0000001/score -H "Authorization: Bearer $KEY" '
        "-H 'X-Purpose: trying the demo'\n"
        f'  curl -s {base}/v1/accounts/A0000001/credit -H "Authorization: Bearer $KEY" '
        "-H 'X-Purpose: trying the demo'\n"
        f"  open {base}/docs for every endpoint\n"
        f"  investigator page: {base}/ui/ (sign in with the key and a purpose)",
        highlight=False,
        markup=True,
        soft_wrap=True,
    )
    if serve_api:
        _serve(s, host, port)


def _write_demo_key(s: Settings) -> Path:
    """A fresh admin key in a file only the owner can read: stderr is the server's log, and
    a key written there would sit in every log collector that reads it."""
    from creditgraph.api.keys import create_key

    path = s.data_dir / DEMO_KEY_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(create_key(s, "admin", "demo") + "\n")
    return path


def _registry(s: Settings) -> ModelRegistry:
    return ModelRegistry(s.models_dir)


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
    from creditgraph.services.retrain import retrain
    from creditgraph.services.snapshots import cache_path
    from creditgraph.training_config import TrainingConfig, load_training_config

    s = settings()
    job = run(lambda: load_training_config(config)) if config else TrainingConfig()
    with store_of(s) as store:
        report = run(
            lambda: retrain(
                store, _registry(s), job, force=force, snapshot_cache=cache_path(s.data_dir)
            )
        )
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
    from creditgraph.ledger import Ledger
    from creditgraph.ledger.decisions import DecisionLog
    from creditgraph.services.credit import (
        add_credit_columns,
        credit_model_exists,
        load_credit_model,
        log_credit_table,
        score_all_credit,
    )
    from creditgraph.services.scoring import score_all
    from creditgraph.services.snapshots import cache_path

    s = settings()
    with store_of(s) as store:
        report = run(
            lambda: score_all(store, _registry(s), out=out, snapshot_cache=cache_path(s.data_dir))
        )
        if out is not None and credit_model_exists(s.models_dir):
            model = run(lambda: load_credit_model(s.models_dir))
            table = run(lambda: score_all_credit(store, model, s.credit))
            # Logged before the file gains the columns, as the API logs before it answers.
            ledger = run(lambda: Ledger.from_settings(s))
            try:
                decisions = DecisionLog(ledger, ack=s.decision_ack)
                run(lambda: log_credit_table(decisions, table, s.credit))
            finally:
                ledger.close()
            add_credit_columns(out, table)
    typer.echo(json.dumps(asdict(report), default=str))


@models_app.command("list")
def models_list() -> None:
    """Registered model versions, oldest first; the champion is marked."""
    registry = _registry(settings())
    champion = registry.champion_version()
    for record in run(registry.records):
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
    registry = _registry(settings())
    record = run(lambda: registry.get(version))
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
    from creditgraph.services.retrain import promote_version

    record = run(lambda: promote_version(_registry(settings()), version, reason=reason))
    typer.echo(json.dumps({"champion": record.version}))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
) -> None:
    """Serve the API (risk decisions, scores, ingest, admin) with uvicorn, JSON logs."""
    _serve(settings(), host, port, log_level)


def _serve(s: Settings, host: str, port: int, log_level: str = "info") -> None:
    import uvicorn

    from creditgraph.api.app import create_app
    from creditgraph.logs import configure_json_logging
    from creditgraph.ml.threads import use_threads

    # One request scores one small neighbourhood: more threads only add contention.
    use_threads(1)
    configure_json_logging(getattr(logging, log_level.upper(), logging.INFO))
    uvicorn.run(
        create_app(s),
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
        float | None,
        typer.Option(help="Report rings scoring at least this (default 0.5, unsupervised 0.82)."),
    ] = None,
) -> None:
    """Detect rings in the stored graph and write them back (ids stable across runs)."""
    from creditgraph.rings import DetectConfig
    from creditgraph.services.rings import detect_rings

    config = DetectConfig() if min_score is None else DetectConfig(min_score=min_score)
    with store_of(settings()) as store:
        report = run(lambda: detect_rings(store, config, use_scores=use_scores))
    typer.echo(json.dumps(asdict(report)))


@rings_app.command("export")
def rings_export(
    out: Annotated[Path, typer.Option(help="JSON file to write.")] = Path("rings.json"),
) -> None:
    """Write every stored ring (id, score, kind, members, evidence, status) as JSON."""
    with store_of(settings()) as store:
        rings = run(store.list_rings)
    out.write_bytes(orjson.dumps([_ring_json(r) for r in rings], option=orjson.OPT_INDENT_2))
    typer.echo(json.dumps({"rings": len(rings), "out": str(out)}))


@rings_app.command("show")
def rings_show(ring_id: Annotated[str, typer.Argument(help="Ring id.")]) -> None:
    """One ring with its evidence."""
    with store_of(settings()) as store:
        ring = run(lambda: store.get_ring(ring_id))
    typer.echo(orjson.dumps(_ring_json(ring), option=orjson.OPT_INDENT_2).decode())


@rings_app.command("status")
def rings_status(
    ring_id: Annotated[str, typer.Argument(help="Ring id.")],
    status: Annotated[str, typer.Option(help="new | investigating | confirmed | dismissed")],
    note: Annotated[str | None, typer.Option(help="Investigator's note (replaces it).")] = None,
) -> None:
    """Set a ring's status; confirmed / dismissed verdicts become training labels."""
    from creditgraph.services.rings import set_ring_status

    with store_of(settings()) as store:
        change = run(lambda: set_ring_status(store, ring_id, status, note))
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
