"""What keeping high-degree accounts' strongest ties on the node costs a Neo4j import.

    CREDITGRAPH_NEO4J_URI=bolt://127.0.0.1:P .venv/bin/python bench/neo4j_tie_lists.py \
        --accounts 10000 --min-degree 100

Side by side in one run, on the same synthetic network and an emptied database each time:
``creditgraph import`` of the four files as the store does it (the lists refreshed in every
transfer and link batch's transaction), and the same import with the refresh switched off
(what the writes cost without lists). Then one ``rebuild_ties`` (what a bulk load adds) and the
accounts that keep a list. ``--min-degree`` lowers the threshold (1,000 in the store) so a
small network has enough listed accounts to show the cost. Wipes the database it points at.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

from creditgraph.config import Settings
from creditgraph.ingest.csvfile import KINDS
from creditgraph.services.ingest import import_file
from creditgraph.store.neo4j import Neo4jStore
from creditgraph.synth import generate

# Relationships first: detaching a hub deletes all its relationships in one inner transaction.
WIPE = (
    "MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS",
    "MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 10000 ROWS",
)
LISTED = "MATCH (a:Account) WHERE a.ties_top IS NOT NULL RETURN count(a) AS n"


def run_import(store: Neo4jStore, net: Path) -> dict[str, float]:
    with store._driver.session(database=store._database) as s:
        for q in WIPE:
            s.run(q).consume()
    store.apply_schema()
    out: dict[str, float] = {}
    for kind in KINDS:
        t = time.perf_counter()
        import_file(store, kind, net / f"{kind}.csv")
        out[kind] = round(time.perf_counter() - t, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--min-degree", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        net = Path(tmp) / "net"
        summary = generate(args.accounts, args.seed, net)
        print(f"network: {summary}")
        store = Neo4jStore.connect(Settings(data_dir=Path(tmp) / "data"))
        store.tie_list_degree = args.min_degree
        try:
            with mock.patch("creditgraph.store.neo4j.refresh_ties", return_value=None):
                off = run_import(store, net)
            on = run_import(store, net)
            with store._driver.session(database=store._database) as s:
                listed = s.run(LISTED).single(strict=True)["n"]
            t = time.perf_counter()
            rebuilt = store.rebuild_ties()
            rebuild_s = time.perf_counter() - t
        finally:
            store.close()
    print(f"load {os.getloadavg()}")
    print("| import (s) | " + " | ".join(KINDS) + " | total |")
    print("|---|" + "---|" * (len(KINDS) + 1))
    for name, r in (("lists off", off), ("lists kept", on)):
        cells = " | ".join(str(r[k]) for k in KINDS)
        print(f"| {name} | {cells} | {round(sum(r.values()), 2)} |")
    print(f"accounts keeping a list: {listed} (min degree {args.min_degree})")
    print(f"rebuild_ties: {rebuilt} lists in {rebuild_s:.2f} s")


if __name__ == "__main__":
    main()
