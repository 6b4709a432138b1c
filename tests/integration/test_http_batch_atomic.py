"""An HTTP batch is one transaction on every backend: a batch refused half-way (here by a
changed transfer) leaves none of its rows and none of the stub accounts it would create.
Before, Neo4j committed the stubs on their own first."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditgraph.errors import TransferConflict
from creditgraph.services.ingest import import_file, import_records
from creditgraph.store.base import GraphStore


def test_a_refused_batch_leaves_no_stub_accounts(store: GraphStore, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id\nA\nB\n")
    import_file(store, "accounts", accounts)
    transfers = tmp_path / "transfers.csv"
    transfers.write_text("transfer_id,src,dst,amount,timestamp\nT1,A,B,10,2024-03-01\n")
    import_file(store, "transfers", transfers)
    batch = [
        {"transfer_id": "T2", "src": "new-1", "dst": "A", "amount": "5", "timestamp": "2024-03-02"},
        {"transfer_id": "T3", "src": "B", "dst": "new-2", "amount": "7", "timestamp": "2024-03-02"},
        {"transfer_id": "T1", "src": "A", "dst": "B", "amount": "999", "timestamp": "2024-03-01"},
    ]
    with pytest.raises(TransferConflict):
        import_records(store, "transfers", batch, create_missing_accounts=True)
    assert sorted(store.missing_accounts(["new-1", "new-2"])) == ["new-1", "new-2"]
    counts = store.counts()
    assert (counts.accounts, counts.transfers) == (2, 1)
    # The same batch without the conflicting row goes through whole.
    done = import_records(store, "transfers", batch[:2], create_missing_accounts=True)
    assert (done.report.changed, done.report.created_accounts) == (2, 2)
    assert store.missing_accounts(["new-1", "new-2"]) == []
