"""``creditgraph keys create|list|revoke|rotate``: API keys (only their hashes are stored).

A running server sees every change within a second (``api.keys.KeyRing``)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer

from creditgraph.api.keys import KeyInfo, create_key, list_keys, revoke_key, rotate_key
from creditgraph.cli.common import run, settings
from creditgraph.errors import InvalidInput

keys_app = typer.Typer(help="API keys (only their hashes are stored).", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")

ExpiresIn = Annotated[
    str | None, typer.Option(help="Valid for this long from now: 90s, 30m, 12h, 90d.")
]
ExpiresAt = Annotated[
    str | None, typer.Option(help="Valid until this ISO-8601 time (no zone means UTC).")
]


def _expiry(expires_in: str | None, expires_at: str | None) -> float | None:
    """UNIX seconds from ``--expires-in`` or ``--expires-at`` (not both); None = no expiry."""
    if expires_in is not None and expires_at is not None:
        raise InvalidInput("give --expires-in or --expires-at, not both")
    if expires_in is not None:
        m = _DURATION.match(expires_in)
        if m is None:
            raise InvalidInput(f"--expires-in {expires_in!r}: use a number and s, m, h or d")
        return time.time() + float(m.group(1)) * _UNITS[m.group(2)]
    if expires_at is not None:
        try:
            at = datetime.fromisoformat(expires_at)
        except ValueError:
            raise InvalidInput(f"--expires-at {expires_at!r} is not an ISO-8601 time") from None
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    return None


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _json(k: KeyInfo) -> str:
    return orjson.dumps(
        {
            "key_id": k.key_id,
            "name": k.name,
            "role": k.role,
            "status": k.status(),
            "created_at": _iso(k.created_at),
            "expires_at": _iso(k.expires_at),
            "revoked_at": _iso(k.revoked_at),
        }
    ).decode()


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="payment | investigator | admin")],
    name: Annotated[str, typer.Option(help="Who holds the key (shown in the audit log).")],
    expires_in: ExpiresIn = None,
    expires_at: ExpiresAt = None,
) -> None:
    """Create an API key and print it alone on stdout, once; only its hash is stored."""
    s = settings()
    typer.echo(run(lambda: create_key(s, role, name, expires_at=_expiry(expires_in, expires_at))))


@keys_app.command("list")
def keys_list() -> None:
    """Every key as one JSON line: id, name, role, status (active|revoked|expired), times."""
    for k in run(lambda: list_keys(settings())):
        typer.echo(_json(k))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (keys list).")]) -> None:
    """Revoke a key: refused by a running server within a second. Prints the key's record."""
    typer.echo(_json(run(lambda: revoke_key(settings(), key_id))))


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key's id (keys list).")],
    grace: Annotated[
        float, typer.Option(help="Seconds the old key keeps working (0: revoked at once).")
    ] = 0.0,
    expires_in: ExpiresIn = None,
    expires_at: ExpiresAt = None,
) -> None:
    """Replace a key by one of the same role and name, printed alone on stdout.

    The old key is revoked at once, or with --grace expires that many seconds later; its
    record goes to stderr."""
    s = settings()
    new, old = run(
        lambda: rotate_key(s, key_id, grace_s=grace, expires_at=_expiry(expires_in, expires_at))
    )
    typer.echo(_json(old), err=True)
    typer.echo(new)
