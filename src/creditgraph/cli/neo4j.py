"""``creditgraph neo4j ...``: the project's own local Neo4j (``devtools``), one set of exit
codes. ``status`` exits 0 when the server runs and answers, 1 when it runs but does not
answer, 3 when it does not run (as Neo4j's own ``neo4j status``); other failures exit with
their error's code."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from creditgraph.cli.common import run, settings

neo4j_app = typer.Typer(
    help="A local Neo4j server for development and tests.", no_args_is_help=True
)


@neo4j_app.command("fetch")
def neo4j_fetch() -> None:
    """Resolve the Neo4j server jars with Maven into the cache (a no-op when present)."""
    from creditgraph.devtools import neo4j_server  # the Bolt driver: only when used

    s = settings()
    typer.echo(str(run(lambda: neo4j_server.fetch(s))))


@neo4j_app.command("start")
def neo4j_start() -> None:
    """Start the local server and wait until RETURN 1 succeeds."""
    from creditgraph.devtools import neo4j_server  # the Bolt driver: only when used

    s = settings()
    run(lambda: neo4j_server.start(s))
    typer.echo(json.dumps(asdict(run(lambda: neo4j_server.status(s)))))


@neo4j_app.command("stop")
def neo4j_stop() -> None:
    """Stop the local server cleanly."""
    from creditgraph.devtools import neo4j_server  # the Bolt driver: only when used

    s = settings()
    run(lambda: neo4j_server.stop(s))


@neo4j_app.command("status")
def neo4j_status() -> None:
    """Whether the local server answers (exit 0), runs but does not answer (1), or not (3)."""
    from creditgraph.devtools import neo4j_server  # the Bolt driver: only when used

    s = settings()
    status = run(lambda: neo4j_server.status(s))
    typer.echo(json.dumps(asdict(status)))
    if not status.running:
        raise typer.Exit(3)
    if not status.responsive:
        raise typer.Exit(1)


@neo4j_app.command(
    "admin", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def neo4j_admin(ctx: typer.Context) -> None:
    """Run neo4j-admin with the remaining arguments against the local server's home."""
    from creditgraph.devtools import neo4j_server  # the Bolt driver: only when used

    s = settings()
    proc = run(lambda: neo4j_server.admin(s, list(ctx.args), check=False))
    typer.echo(proc.stdout, nl=False)
    typer.echo(proc.stderr, nl=False, err=True)
    raise typer.Exit(proc.returncode)


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
    from creditgraph.devtools.bulkload import initial_load

    s = settings()
    report = run(lambda: initial_load(s, directory, force=force))
    timings = ("validate_s", "convert_s", "import_s", "restart_s", "schema_s", "ties_s", "total_s")
    typer.echo(
        json.dumps(
            {"rows": report.rows, "counts": asdict(report.counts)}
            | {k: round(getattr(report, k), 3) for k in timings}
        )
    )
