#!/usr/bin/env bash
# The project's own local Neo4j: fetch | start | stop | status | admin ARGS...
# Settings come from CREDITGRAPH_NEO4J_* (see src/creditgraph/config.py); status prints JSON
# and exits 0 (answering), 1 (running, not answering) or 3 (not running).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY="$(command -v python3)"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m creditgraph.store.neo4j_server "$@"
