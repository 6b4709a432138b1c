"""What every command shares: the error mapping, settings, the store, stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

from creditgraph.config import Settings, load_settings
from creditgraph.errors import CreditGraphError

if TYPE_CHECKING:
    from creditgraph.store.base import GraphStore

err = Console(stderr=True)
T = TypeVar("T")


def run(fn: Callable[[], T]) -> T:
    """Call ``fn``; a CreditGraphError becomes a one-line message and its exit code."""
    try:
        return fn()
    except CreditGraphError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None


def settings() -> Settings:
    """Settings from the environment; a bad value exits 2 with the variable named."""
    return run(load_settings)


@contextmanager
def store_of(s: Settings) -> Iterator[GraphStore]:
    """The store ``s`` selects (schema applied), closed on exit."""
    from creditgraph.store.factory import open_store  # numpy and a driver: only when used

    store = run(lambda: open_store(s))
    try:
        yield store
    finally:
        store.close()
