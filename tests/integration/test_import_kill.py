"""SIGKILL in the middle of an import, then a re-run, ends with exactly the file's content."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from creditgraph.config import Settings
from creditgraph.domain import TRANSFER
from creditgraph.services.ingest import import_file
from creditgraph.store.base import GraphStore

N_ACCOUNTS = 200
N_TRANSFERS = 6_000
BATCH = 200

# Runs the real CLI in a child process; the only instrumentation is a marker file written after
# the third committed batch, and a short pause per later batch so the kill lands mid-import.
CHILD = """
import pathlib, sys, time
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore

marker = pathlib.Path(sys.argv[1])
calls = [0]
for cls in (EmbeddedStore, Neo4jStore):
    def patched(self, batch, _orig=cls.upsert_transfers):
        n = _orig(self, batch)
        calls[0] += 1
        if calls[0] == 3:
            marker.write_text("3")
        if calls[0] >= 3:
            time.sleep(0.2)
        return n
    cls.upsert_transfers = patched

from creditgraph.cli import app
app(sys.argv[2:], prog_name="creditgraph")
"""


def write_files(tmp_path: Path) -> tuple[Path, Path, Counter[tuple[str, str]]]:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id\n" + "".join(f"K{i:04d}\n" for i in range(N_ACCOUNTS)))
    transfers = tmp_path / "transfers.csv"
    pairs: Counter[tuple[str, str]] = Counter()
    lines = ["transfer_id,src,dst,amount,timestamp"]
    for i in range(N_TRANSFERS):
        src, dst = f"K{i % N_ACCOUNTS:04d}", f"K{(i * 7 + 3) % N_ACCOUNTS:04d}"
        pairs[(src, dst)] += 1
        lines.append(f"X{i:06d},{src},{dst},{i % 97 + 0.5},2024-03-01T00:00:{i % 60:02d}Z")
    transfers.write_text("\n".join(lines) + "\n")
    return accounts, transfers, pairs


@pytest.mark.slow
def test_sigkill_mid_import_then_rerun_is_exact(
    store: GraphStore, settings: Settings, tmp_path: Path
) -> None:
    accounts, transfers, pairs = write_files(tmp_path)
    import_file(store, "accounts", accounts)
    marker = tmp_path / "marker"
    env = {
        **os.environ,
        "CREDITGRAPH_STORE": settings.store,
        "CREDITGRAPH_DATA_DIR": str(settings.data_dir),
    }
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(marker),
            "import",
            "transfers",
            str(transfers),
            "--batch-size",
            str(BATCH),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "import never reached its third batch"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL

    after_kill = store.counts().transfers
    if store.backend == "embedded":
        assert after_kill == 0  # one transaction per file: nothing half-applied
    else:
        assert 3 * BATCH <= after_kill < N_TRANSFERS  # batches committed: a partial import

    report = import_file(store, "transfers", transfers, batch_size=BATCH)
    assert report.changed == N_TRANSFERS - after_kill
    assert store.counts().transfers == N_TRANSFERS
    snap = store.snapshot()
    edges = snap.edges[TRANSFER]
    assert edges.count is not None
    got = {
        (snap.account_ids[s], snap.account_ids[d]): int(n)
        for s, d, n in zip(
            edges.src.tolist(), edges.dst.tolist(), edges.count.tolist(), strict=True
        )
    }
    assert got == dict(pairs)
    assert import_file(store, "transfers", transfers).changed == 0
