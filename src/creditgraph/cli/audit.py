"""``creditgraph audit verify|export`` and ``creditgraph subject export|erase``.

``audit verify`` checks both hash chains (audit and decisions) line by line and exits 1
naming the first broken line (file:line and why); ``audit export`` writes the entries about
one account in a time window for an authority. ``subject export|erase`` are the
data-subject rights (``services.subjects``)."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from creditgraph.cli.common import err, run, settings, store_of
from creditgraph.errors import InvalidInput
from creditgraph.ledger import Ledger
from creditgraph.ledger.chain import verify
from creditgraph.ledger.core import STREAMS

audit_app = typer.Typer(
    help="The hash-chained audit and decision logs: verify, export.", no_args_is_help=True
)
subject_app = typer.Typer(help="Data-subject rights: export, erase.", no_args_is_help=True)

When = Annotated[
    str | None, typer.Option(help="ISO-8601 time or UNIX seconds (no zone means UTC).")
]
PurposeOpt = Annotated[str, typer.Option(help="The request this answers (kept in the audit log).")]


def _when(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--{name} {value!r} is not an ISO-8601 time or UNIX seconds") from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _who() -> dict[str, str | None]:
    return {"key_id": None, "key_name": f"cli:{getpass.getuser()}", "role": "admin"}


@audit_app.command("verify")
def audit_verify(
    stream: Annotated[str, typer.Option(help="audit | decisions | all")] = "all",
) -> None:
    """Prove each chain intact: one JSON line per log with its head (last seq and hash:
    keep it elsewhere to detect a cut tail later); exit 1 naming the first broken line."""
    s = settings()
    paths: dict[str, Path] = {"audit": s.audit_log_path, "decisions": s.decision_log_path}
    if stream != "all" and stream not in paths:
        err.print(f"error: unknown log {stream!r}; use audit, decisions or all")
        raise typer.Exit(2)
    broken = False
    for name in [n for n in STREAMS if stream in ("all", n)]:
        path = paths[name]
        v = run(lambda: verify(path))  # noqa: B023 (called at once)
        typer.echo(
            orjson.dumps(
                {
                    "log": name,
                    "ok": v.ok,
                    "files": v.files,
                    "lines": v.lines,
                    "first_seq": v.first_seq,
                    "last_seq": v.last_seq,
                    "head": v.head,
                    "broken": None if v.broken is None else str(v.broken),
                }
            ).decode()
        )
        if v.broken is not None:
            err.print(f"[bold red]broken:[/] {v.broken}", highlight=False)
            broken = True
    if broken:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    account: Annotated[str, typer.Option(help="The account the entries are about.")],
    since: When = None,
    until: When = None,
) -> None:
    """Every audit and decision entry about ``--account`` with ``since <= ts <= until``, as
    JSON lines on stdout (oldest first per log; other people stay pseudonyms)."""
    s = settings()
    lo, hi = run(lambda: (_when(since, "since"), _when(until, "until")))
    ledger = run(lambda: Ledger.from_settings(s))
    try:
        n = 0
        for e in run(lambda: list(ledger.about(account.strip(), since=lo, until=hi))):
            sys.stdout.write(orjson.dumps(e).decode() + "\n")
            n += 1
        ledger.append(
            "audit",
            {**_who(), "action": "audit.export", "target": account, "result": f"entries={n}"},
            accounts=[account.strip()],
        )
    finally:
        ledger.close()
    err.print(f"{n} entries", highlight=False)


@subject_app.command("export")
def subject_export(
    account: Annotated[str, typer.Argument(help="The person's account id.")],
    purpose: PurposeOpt = "data-subject access request",
) -> None:
    """Everything held about a person, as one JSON document on stdout."""
    from creditgraph.services import subjects

    s = settings()
    account = account.strip()
    with store_of(s) as store:
        ledger = run(lambda: Ledger.from_settings(s))
        try:
            out = run(lambda: subjects.export(store, ledger, account))
            ledger.append(
                "audit",
                {**_who(), "action": "subject.export", "target": account,
                 "result": f"transfers={out['transfers_total']}", "purpose": purpose},
                accounts=[account],
            )  # fmt: skip
        finally:
            ledger.close()
    typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


@subject_app.command("erase")
def subject_erase(
    account: Annotated[str, typer.Argument(help="The person's account id.")],
    purpose: PurposeOpt = "data-subject erasure request",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a person from the store (ties, labels, ring memberships, scores), unlink the
    log entries about them, and keep a tombstone so a re-import is refused unless forced.
    A running server drops them from memory within its probe interval."""
    from creditgraph.services import subjects

    account = account.strip()
    if not yes and not typer.confirm(f"Erase {account!r} for good?"):
        raise typer.Exit(1)
    s = settings()
    with store_of(s) as store:
        ledger = run(lambda: Ledger.from_settings(s))
        try:
            out = run(
                lambda: subjects.erase(
                    store, ledger, account, who=_who(), purpose=purpose, models_dir=s.models_dir
                )
            )
        finally:
            ledger.close()
    typer.echo(orjson.dumps(out).decode())
