"""The command line stays cheap to start: the heavy libraries load only in the commands
that use them (importing them all costs ~15 s of CPU on a 2-core machine)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "lightgbm", "sklearn", "scipy", "fastapi", "uvicorn", "neo4j", "igraph")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import sys; import creditgraph.cli; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_help_lists_every_command_group_without_loading_them() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "creditgraph.entry", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for group in ("neo4j", "keys", "audit", "subject", "transfers", "rings", "credit", "serve"):
        assert group in out
