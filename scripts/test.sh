#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, fetches and starts a
# private Neo4j (its own home and ports, so a development server is left alone), runs pytest,
# and stops Neo4j again whatever happens. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
ensure_venv
need_java
need_chromium

export CREDITGRAPH_NEO4J_HOME="${CREDITGRAPH_NEO4J_HOME:-$HOME/.cache/creditgraph/neo4j-test}"
export CREDITGRAPH_NEO4J_BOLT_PORT="${CREDITGRAPH_NEO4J_BOLT_PORT:-7688}"
export CREDITGRAPH_NEO4J_HTTP_PORT="${CREDITGRAPH_NEO4J_HTTP_PORT:-7475}"
export CREDITGRAPH_NEO4J_URI="bolt://127.0.0.1:${CREDITGRAPH_NEO4J_BOLT_PORT}"
export CREDITGRAPH_NEO4J_PASSWORD="${CREDITGRAPH_NEO4J_PASSWORD:-creditgraph-test}"
export CREDITGRAPH_NEO4J_HEAP="${CREDITGRAPH_NEO4J_HEAP:-1g}"
export CREDITGRAPH_NEO4J_PAGECACHE="${CREDITGRAPH_NEO4J_PAGECACHE:-1g}"

.venv/bin/creditgraph neo4j fetch
.venv/bin/creditgraph neo4j start
trap '.venv/bin/creditgraph neo4j stop' EXIT
# Every test (`-m ""` lifts the fast-suite default of pyproject.toml; a -m of yours still
# wins). The suite fails when no Neo4j test ran and passed (conftest checks this variable).
CREDITGRAPH_REQUIRE_NEO4J=1 .venv/bin/python -m pytest -m "" "$@"
