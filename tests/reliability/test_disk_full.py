"""The disk filling up during an import: a clear error, exit code 5, nothing half-written.

A full disk is made real without root: the import runs as a child process under
``RLIMIT_FSIZE`` (``setrlimit`` in the child before it executes the CLI), so every write that
would grow a file past the limit fails with ``EFBIG``, as it fails with ``ENOSPC`` on a full
disk. SQLite sees a failed write either way (SQLITE_FULL / SQLITE_IOERR). ``SIGXFSZ`` is
ignored in the child so the write returns the error instead of killing the process.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from creditgraph.config import Settings
from creditgraph.services.ingest import import_file
from creditgraph.store.embedded import EmbeddedStore
from tests.reliability.procs import cli

pytestmark = pytest.mark.slow

N_ACCOUNTS = 300
N_TRANSFERS = 40_000


def _limited(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_an_import_that_fills_the_disk_fails_cleanly_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "account_id,age\n" + "".join(f"K{i:04d},{i % 70}\n" for i in range(N_ACCOUNTS))
    )
    transfers = tmp_path / "transfers.csv"
    transfers.write_text(
        "transfer_id,src,dst,amount,timestamp\n"
        + "".join(
            f"T{i:07d},K{i % N_ACCOUNTS:04d},K{(i * 7 + 3) % N_ACCOUNTS:04d},{i % 97 + 0.5},"
            f"2024-03-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z\n"
            for i in range(N_TRANSFERS)
        )
    )
    store = EmbeddedStore(settings.embedded_path)
    try:
        import_file(store, "accounts", accounts)
    finally:
        store.close()
    # Room for 256 KiB more in any one file: far less than 40,000 transfers need.
    limit = max(p.stat().st_size for p in data.iterdir() if p.is_file()) + 256 * 1024

    full = subprocess.run(
        [cli(), "import", "transfers", str(transfers)],
        env={**os.environ, "CREDITGRAPH_DATA_DIR": str(data), "CREDITGRAPH_STORE": "embedded"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=lambda: _limited(limit),  # setrlimit must run in the child
    )
    assert full.returncode == 5, full.stderr
    assert "Traceback" not in full.stderr
    message = " ".join(full.stderr.split())
    assert "cannot write the embedded store" in message
    assert "disk is full or a file size limit was reached" in message
    assert "nothing of it was written" in message

    # Nothing half-written: the store is intact, holds the accounts and no transfer at all.
    db = sqlite3.connect(settings.embedded_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM transfers").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM accounts").fetchone() == (N_ACCOUNTS,)
    finally:
        db.close()
    # With room again, the same import completes.
    store = EmbeddedStore(settings.embedded_path)
    try:
        assert store.counts().transfers == 0
        assert import_file(store, "transfers", transfers).changed == N_TRANSFERS
        assert store.counts().transfers == N_TRANSFERS
    finally:
        store.close()
