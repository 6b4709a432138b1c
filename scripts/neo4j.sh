#!/usr/bin/env bash
# The project's own local Neo4j: fetch | start | stop | status | admin ARGS... (the CLI's
# `creditgraph neo4j`, one set of exit codes). Settings come from CREDITGRAPH_NEO4J_* (see
# src/creditgraph/config.py); status prints JSON and exits 0 (answering), 1 (running, not
# answering) or 3 (not running).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLI="$ROOT/.venv/bin/creditgraph"
[ -x "$CLI" ] || CLI="$(command -v creditgraph)"
exec "$CLI" neo4j "$@"
